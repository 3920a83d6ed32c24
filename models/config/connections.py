"""Connections: how presence-sync logs in to Salesforce and reaches CXone.

The `salesforce:` and `cxone:` sections ARE the connectors' credentials models
(connectors/salesforce_auth.py, connectors/cxone_auth.py), which hold every rule about which settings
go together, so `config.salesforce.get_client()` needs no mapping. What this module adds is what only
a config file has: how values are written in it (secrets as `${ENV_VAR}` or `prefect-secret:`
references, text and URLs as the YAML checks them, a JWT key file next to the config), a description
of each setting for the problem reports, the Salesforce environment, and the CXone access key's user.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator

from presence_sync.connectors.cxone_auth import DEFAULT_DISCOVERY_URL, CxoneCredentials
from presence_sync.connectors.salesforce_auth import (
    PRODUCTION_LOGIN_URL,
    SANDBOX_LOGIN_URL,
    ClientCredentialsFlow,
    JwtFlow,
    PasswordFlow,
    SalesforceCredentials,
    generic_login_url,
)
from presence_sync.models.config.base import ApiVersion, BaseUrl, Text, config_dir
from presence_sync.models.errors import config_problem
from presence_sync.models.secrets import PrefectSecretStr, SecretValue


class SalesforceEnvironment(StrEnum):
    PRODUCTION = "production"
    SANDBOX = "sandbox"


SALESFORCE_LOGIN_URLS = {SalesforceEnvironment.PRODUCTION: PRODUCTION_LOGIN_URL, SalesforceEnvironment.SANDBOX: SANDBOX_LOGIN_URL}


class PasswordAuth(PasswordFlow):
    """OAuth username-password flow (the seed's; Salesforce retires it on 2027-02-20)."""

    client_id: Text = Field(description="the connected app's Consumer Key")
    client_secret: SecretValue = Field(description="the connected app's Consumer Secret")
    username: Text = Field(description="the Salesforce username of the integration user")
    password: SecretValue = Field(description="that user's password")
    security_token: SecretValue | None = Field(
        default=None,
        description="appended to the password unless the org trusts your IP range",
    )


class ClientCredentialsAuth(ClientCredentialsFlow):
    """OAuth client-credentials flow: runs as the app's "Run As" user; My Domain host only."""

    client_id: Text = Field(description="the app's Consumer Key")
    client_secret: SecretValue = Field(description="the app's Consumer Secret")


class JwtAuth(JwtFlow):
    """OAuth JWT bearer flow: an RS256 assertion signed with the app's private key."""

    client_id: Text = Field(description="the app's Consumer Key (the JWT issuer)")
    username: Text = Field(description="the Salesforce username the JWT is issued for")
    private_key: SecretValue | None = Field(
        default=None,
        description="the PEM private key, e.g. ${PRESENCE_SYNC_SF_PRIVATE_KEY}",
    )
    private_key_file: Path | None = Field(
        default=None,
        description="a PEM key file, relative to the config file's folder",
    )

    @field_validator("private_key_file")
    @classmethod
    def _key_file_exists(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        if path is None:
            return None
        path = config_dir(info) / path.expanduser()
        if not path.is_file():
            raise config_problem(
                f"file not found: {path}",
                "check the path (a relative path starts at the config file's folder)",
            )
        return path

    @field_validator("private_key")
    @classmethod
    def _looks_like_pem(cls, key: SecretStr | None) -> SecretStr | None:
        # A Prefect block is read when the key is used, not at load.
        if key is not None and not isinstance(key, PrefectSecretStr):
            text = key.get_secret_value()
            if "-----BEGIN" not in text or "PRIVATE KEY-----" not in text:
                raise config_problem(
                    "is not a PEM private key",
                    "include the -----BEGIN ... PRIVATE KEY----- lines, or use private_key_file",
                )
        return key


SalesforceAuth = Annotated[PasswordAuth | ClientCredentialsAuth | JwtAuth, Field(discriminator="flow")]


class SalesforceConfig(SalesforceCredentials):
    """Where and how presence-sync logs in to Salesforce; `login_url` defaults to the environment's login host."""

    environment: SalesforceEnvironment = Field(description="production or sandbox")
    login_url: BaseUrl = Field(
        default=PRODUCTION_LOGIN_URL,
        description="your My Domain, e.g. https://acme.my.salesforce.com",
    )
    api_version: ApiVersion = "v62.0"
    auth: SalesforceAuth = Field(description="flow: password, client_credentials or jwt, with its fields")

    @model_validator(mode="before")
    @classmethod
    def _login_url_of_the_environment(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("login_url") is None and data.get("environment") in SALESFORCE_LOGIN_URLS:
            return {**data, "login_url": SALESFORCE_LOGIN_URLS[data["environment"]]}
        return data

    @model_validator(mode="after")
    def _host_of_the_environment(self) -> Self:
        kind = generic_login_url(self.login_url)
        if kind is not None and kind != SALESFORCE_LOGIN_URLS[self.environment]:
            host = urlsplit(self.login_url).hostname
            host_environment = next(name for name, url in SALESFORCE_LOGIN_URLS.items() if url == kind)
            raise config_problem(
                f"{host} is a {host_environment} login host but environment is {self.environment}",
                _HOST_MISMATCH_FIX[self.environment],
                at="login_url",
            )
        return self


_HOST_MISMATCH_FIX = {
    SalesforceEnvironment.SANDBOX: "use https://test.salesforce.com or your sandbox My Domain "
    "(https://<company>--<sandbox>.sandbox.my.salesforce.com), or set environment: production",
    SalesforceEnvironment.PRODUCTION: "use https://login.salesforce.com or your My Domain "
    "(https://<company>.my.salesforce.com), or set environment: sandbox",
}


class CxoneConfig(CxoneCredentials):
    """Where and how presence-sync reaches CXone: discovery by tenant id, or explicit endpoints."""

    tenant_id: Text | None = Field(
        default=None,
        description="your CXone tenant id (endpoints are discovered from it)",
    )
    discovery_url: BaseUrl = DEFAULT_DISCOVERY_URL
    auth_url: BaseUrl | None = Field(
        default=None,
        description="the auth host, e.g. https://na1.nice-incontact.com",
    )
    api_url: BaseUrl | None = Field(
        default=None,
        description="the API host, e.g. https://api-na1.niceincontact.com",
    )
    api_version: ApiVersion = "v33.0"
    client_id: Text = Field(description="the registered app's client id")
    client_secret: SecretValue = Field(description="the registered app's client secret")
    access_key_id: Text = Field(description="the access key id of the user below")
    access_key_secret: SecretValue = Field(description="that access key's secret")
    access_key_user: Text = Field(description="the CXone user whose access key this is")
