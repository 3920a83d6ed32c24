"""Connections: how presence-sync logs in to Salesforce and reaches CXone."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator

from presence_sync.models.config.base import ApiVersion, BaseUrl, ConfigModel, Text, config_dir
from presence_sync.models.errors import ConfigError, ConfigProblem, Loc, config_problem, config_problems
from presence_sync.models.secrets import PrefectSecretStr, SecretValue

SALESFORCE_LOGIN_URLS = {"production": "https://login.salesforce.com", "sandbox": "https://test.salesforce.com"}
CXONE_DISCOVERY_URL = "https://cxone.niceincontact.com"


class SalesforceEnvironment(StrEnum):
    PRODUCTION = "production"
    SANDBOX = "sandbox"


class _SalesforceAuthModel(ConfigModel):
    """Shared by the auth flows: a setting that belongs to another flow is named as such."""

    @model_validator(mode="before")
    @classmethod
    def _no_settings_of_other_flows(cls, data: Any) -> Any:
        if isinstance(data, dict):
            flows = _SalesforceAuthModel.__subclasses__()
            others = {name for model in flows for name in model.model_fields} - set(cls.model_fields)
            misplaced = [key for key in data if key in others]
            if misplaced:
                flow = data.get("flow")
                raise config_problems(
                    *((key, f"'{key}' is not used by the {flow} flow", "remove it, or change flow") for key in misplaced)
                )
        return data


class PasswordAuth(_SalesforceAuthModel):
    """OAuth username-password flow (the seed's; Salesforce retires it on 2027-02-20)."""

    flow: Literal["password"]
    client_id: Text = Field(description="the connected app's Consumer Key")
    client_secret: SecretValue = Field(description="the connected app's Consumer Secret")
    username: Text = Field(description="the Salesforce username of the integration user")
    password: SecretValue = Field(description="that user's password")
    security_token: SecretValue | None = Field(
        default=None,
        description="appended to the password unless the org trusts your IP range",
    )

    def password_with_token(self) -> SecretStr:
        """The `password` form field: the password with the security token appended."""
        token = self.security_token.get_secret_value() if self.security_token else ""
        return SecretStr(self.password.get_secret_value() + token)


class ClientCredentialsAuth(_SalesforceAuthModel):
    """OAuth client-credentials flow: runs as the app's "Run As" user; My Domain host only."""

    flow: Literal["client_credentials"]
    client_id: Text = Field(description="the app's Consumer Key")
    client_secret: SecretValue = Field(description="the app's Consumer Secret")


class JwtAuth(_SalesforceAuthModel):
    """OAuth JWT bearer flow: an RS256 assertion signed with the app's private key."""

    flow: Literal["jwt"]
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
        if key is not None and not isinstance(key, PrefectSecretStr):
            text = key.get_secret_value()
            if "-----BEGIN" not in text or "PRIVATE KEY-----" not in text:
                raise config_problem(
                    "is not a PEM private key",
                    "include the -----BEGIN ... PRIVATE KEY----- lines, or use private_key_file",
                )
        return key

    @model_validator(mode="after")
    def _one_key(self) -> Self:
        if self.private_key is None and self.private_key_file is None:
            raise config_problem(
                "the jwt flow needs the app's private key",
                "set private_key_file: path/to/server.key or private_key: ${ENV_VAR}",
            )
        if self.private_key is not None and self.private_key_file is not None:
            raise config_problem(
                "both private_key and private_key_file are set",
                "keep one of them",
                at="private_key_file",
            )
        return self

    def signing_key(self) -> SecretStr:
        """The PEM private key, read from `private_key_file` when that is how it is given."""
        if self.private_key is not None:
            return self.private_key
        assert self.private_key_file is not None  # guaranteed by _one_key
        try:
            return SecretStr(self.private_key_file.read_text(encoding="utf-8"))
        except OSError as error:
            problem = f"can't read {self.private_key_file} ({error.strerror})"
            raise ConfigError(
                [ConfigProblem("salesforce.auth.private_key_file", problem, "check the file and its permissions")]
            ) from None


SalesforceAuth = Annotated[PasswordAuth | ClientCredentialsAuth | JwtAuth, Field(discriminator="flow")]


def _salesforce_host_environment(host: str) -> SalesforceEnvironment | None:
    """Which environment a Salesforce login host belongs to, when its name says so."""
    if host == "test.salesforce.com" or host.endswith(".sandbox.my.salesforce.com"):
        return SalesforceEnvironment.SANDBOX
    if host == "login.salesforce.com" or host.endswith(".my.salesforce.com"):
        return SalesforceEnvironment.PRODUCTION
    return None


class SalesforceConfig(ConfigModel):
    """Where and how presence-sync logs in to Salesforce."""

    environment: SalesforceEnvironment = Field(description="production or sandbox")
    login_url: BaseUrl | None = Field(
        default=None,
        description="your My Domain, e.g. https://acme.my.salesforce.com",
    )
    api_version: ApiVersion = "v62.0"
    auth: SalesforceAuth = Field(description="flow: password, client_credentials or jwt, with its fields")

    @property
    def environment_login_url(self) -> str:
        """login.salesforce.com or test.salesforce.com by environment (also the JWT audience)."""
        return SALESFORCE_LOGIN_URLS[self.environment]

    @property
    def login_base_url(self) -> str:
        """Where tokens are requested: `login_url` if set, else the environment's login host."""
        return self.login_url or self.environment_login_url

    @property
    def uses_my_domain(self) -> bool:
        """True when the login host is the org's own (My Domain, or an emulator), not login/test."""
        host = urlsplit(self.login_base_url).hostname or ""
        return host not in ("login.salesforce.com", "test.salesforce.com")

    @model_validator(mode="after")
    def _hosts_agree(self) -> Self:
        problems: list[tuple[Loc | str, str, str]] = []
        host = (urlsplit(self.login_url).hostname or "").lower() if self.login_url else ""
        host_environment = _salesforce_host_environment(host)
        if host_environment is not None and host_environment != self.environment:
            problem = f"{host} is a {host_environment} login host but environment is {self.environment}"
            problems.append(("login_url", problem, _HOST_MISMATCH_FIX[self.environment]))
        if self.auth.flow == "client_credentials" and not self.uses_my_domain:
            problems.append((
                "login_url",
                "the client_credentials flow only works on your org's My Domain",
                "set login_url: https://<your-domain>.my.salesforce.com (Setup -> My Domain); "
                "login/test.salesforce.com answer 'request not supported on this domain'",
            ))
        if problems:
            raise config_problems(*problems)
        return self


_HOST_MISMATCH_FIX = {
    SalesforceEnvironment.SANDBOX: "use https://test.salesforce.com or your sandbox My Domain "
    "(https://<company>--<sandbox>.sandbox.my.salesforce.com), or set environment: production",
    SalesforceEnvironment.PRODUCTION: "use https://login.salesforce.com or your My Domain "
    "(https://<company>.my.salesforce.com), or set environment: sandbox",
}


# --- CXone


class CxoneConfig(ConfigModel):
    """Where and how presence-sync reaches CXone: discovery by tenant id, or explicit endpoints."""

    tenant_id: Text | None = Field(
        default=None,
        description="your CXone tenant id (endpoints are discovered from it)",
    )
    discovery_url: BaseUrl = CXONE_DISCOVERY_URL
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

    @property
    def uses_discovery(self) -> bool:
        """True when the endpoints come from `{discovery_url}/.well-known/cxone-configuration`."""
        return self.tenant_id is not None

    @model_validator(mode="after")
    def _one_way_to_find_cxone(self) -> Self:
        explicit = [name for name in ("auth_url", "api_url") if getattr(self, name) is not None]
        if self.tenant_id is not None and explicit:
            raise config_problem(
                "both tenant_id and explicit endpoints are set",
                "keep tenant_id (discovery) or auth_url + api_url, not both",
                at="tenant_id",
            )
        if self.tenant_id is None and "discovery_url" in self.model_fields_set:
            raise config_problem(
                "is only used with tenant_id",
                "add tenant_id or remove discovery_url",
                at="discovery_url",
            )
        if self.tenant_id is None and len(explicit) == 1:
            missing = "api_url" if explicit == ["auth_url"] else "auth_url"
            raise config_problem(
                f"{explicit[0]} is set but {missing} is missing",
                f"add {missing} (or use tenant_id instead of both)",
                at=missing,
            )
        if self.tenant_id is None and not explicit:
            raise config_problem(
                "no way to find CXone",
                "set tenant_id (endpoints are discovered), or auth_url and api_url",
            )
        return self


