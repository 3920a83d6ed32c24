"""CXone credentials, discovery and OAuth (apis.md C1): where the tenant lives and how we log in.

    creds = CxoneCredentials(tenant_id="11eb...", client_id="...", client_secret=SecretStr("..."),
                             access_key_id="...", access_key_secret=SecretStr("..."))
    async with creds.get_client() as cx:      # discovers and logs in on the first call
        endpoints = await cx.endpoints()      # InvalidClient / InvalidCredentials carry the fix

This model is the one description of a CXone login: the config file's `cxone:` section is a
`CxoneCredentials` (models/config/connections.py extends it with how values are written in YAML),
so every rule about which settings go together lives here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Self

import httpx
import jwt
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator, model_validator

from presence_sync.connectors.credentials import CredentialsModel, config_problem
from presence_sync.connectors.cxone import SYSTEM, CxoneClient, CxoneEndpoints, CxoneToken
from presence_sync.connectors.errors import AuthenticationError, InvalidClient, InvalidCredentials, NotFound
from presence_sync.connectors.http import HttpSession, describe_error_body, endpoint_of, parse_json
from presence_sync.connectors.urls import api_version, base_url

logger = logging.getLogger(__name__)

DEFAULT_DISCOVERY_URL = "https://cxone.niceincontact.com"
_URL_EXAMPLE = "https://api-na1.niceincontact.com"


class CxoneCredentials(CredentialsModel):
    """How to reach and log in to one CXone tenant. Secrets are SecretStr and never printed.

        CxoneCredentials(tenant_id="11eb...", client_id="...", client_secret=SecretStr("..."),
                         access_key_id="...", access_key_secret=SecretStr("...")).get_client()

    Give `tenant_id` (the area's hosts are discovered at `discovery_url`) or both `auth_url` and
    `api_url` (hosts only, e.g. https://na1.nice-incontact.com and https://api-na1.niceincontact.com).
    """

    tenant_id: str | None = None
    discovery_url: str = DEFAULT_DISCOVERY_URL
    auth_url: str | None = None
    api_url: str | None = None
    api_version: str = "v33.0"
    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    access_key_id: str = Field(min_length=1)
    access_key_secret: SecretStr

    @field_validator("auth_url", "api_url", "discovery_url")
    @classmethod
    def _normalise_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        field = info.field_name or "url"
        value = base_url(value, field, _URL_EXAMPLE)
        if "/incontactapi" in value:
            raise ValueError(
                f"{field} is the host only (e.g. {_URL_EXAMPLE}); "
                "the /incontactapi/services/<version> path is added from api_version"
            )
        return value

    @field_validator("api_version")
    @classmethod
    def _normalise_api_version(cls, value: str) -> str:
        return api_version(value, "v33.0")

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

    @property
    def uses_discovery(self) -> bool:
        """True when the endpoints come from `{discovery_url}/.well-known/cxone-configuration`."""
        return self.tenant_id is not None

    def get_client(self, **options: Any) -> CxoneClient:
        """A CxoneClient for these credentials; `options` go to its constructor."""
        return CxoneClient(self, **options)

    def secret_values(self) -> list[str]:
        """Every secret these credentials hold (for scrubbing server text)."""
        return [self.client_secret.get_secret_value(), self.access_key_secret.get_secret_value()]

    async def discover(self, session: HttpSession) -> CxoneEndpoints:
        """The tenant's auth, API and token URLs: discovery (or the configured hosts), then OpenID configuration."""
        # Login requests are not bounded: see HttpSession.request.
        if self.auth_url is not None and self.api_url is not None:
            auth_url, api_url = self.auth_url, self.api_url
        else:
            url = f"{self.discovery_url}/.well-known/cxone-configuration"
            response = await session.request("GET", url, params={"tenantId": self.tenant_id or ""}, bounded=False)
            endpoint = endpoint_of(response)
            if not response.is_success:
                raise NotFound(
                    f"CXone discovery ({endpoint}, HTTP {response.status_code}) does not know tenant "
                    f"{self.tenant_id!r}: check cxone.tenant_id, or set cxone.auth_url and cxone.api_url.",
                    system=SYSTEM, endpoint=endpoint, status_code=response.status_code,
                )
            found: _Discovery = parse_json(
                response, _Discovery, system=SYSTEM, endpoint=endpoint, expected="the tenant's CXone configuration"
            )
            auth_url = base_url(found.auth_endpoint, "auth_endpoint", _URL_EXAMPLE)
            api_url = base_url(found.api_endpoint, "api_endpoint", _URL_EXAMPLE)
        response = await session.request("GET", f"{auth_url}/.well-known/openid-configuration", bounded=False)
        endpoint = endpoint_of(response)
        if not response.is_success:
            raise AuthenticationError(
                f"{auth_url} serves no OpenID configuration ({endpoint}, HTTP {response.status_code}): "
                "check cxone.auth_url (or the tenant id it was discovered from).",
                system=SYSTEM, endpoint=endpoint, status_code=response.status_code,
            )
        openid: _OpenIdConfiguration = parse_json(
            response, _OpenIdConfiguration, system=SYSTEM, endpoint=endpoint, expected="an OpenID configuration"
        )
        logger.info("CXone: auth at %s, API at %s", auth_url, api_url)
        return CxoneEndpoints(auth_url, api_url, openid.token_endpoint)

    async def fetch_token(
        self,
        session: HttpSession,
        token_url: str,
        previous: CxoneToken | None,
        *,
        clock: Callable[[], float],
        refresh_fraction: float,
    ) -> CxoneToken:
        """A new token: through the refresh token when there is one, else with the access key."""
        if previous is not None and previous.refresh_token is not None:
            refresh = {"grant_type": "refresh_token", "refresh_token": previous.refresh_token.get_secret_value()}
            try:
                return await self._request_token(session, token_url, refresh, clock, refresh_fraction)
            except AuthenticationError as error:
                logger.info("CXone refresh token refused (%s); logging in with the access key again", error.error_code)
        access_key = {
            "grant_type": "password",
            "username": self.access_key_id,
            "password": self.access_key_secret.get_secret_value(),
        }
        return await self._request_token(session, token_url, access_key, clock, refresh_fraction)

    async def _request_token(
        self,
        session: HttpSession,
        token_url: str,
        form: dict[str, str],
        clock: Callable[[], float],
        refresh_fraction: float,
    ) -> CxoneToken:
        requested_at = clock()
        # Asking for a token twice is harmless, so transient failures may be retried.
        response = await session.request(
            "POST",
            token_url,
            data=form,
            auth=(self.client_id, self.client_secret.get_secret_value()),
            idempotent=True,
            bounded=False,
        )
        if response.status_code != 200:
            raise _token_error(session, response)
        body: _TokenResponse = parse_json(
            response, _TokenResponse, system=SYSTEM, endpoint=endpoint_of(response), expected="an OAuth token response"
        )
        tenant_id = _tenant_from_id_token(body.id_token)
        if tenant_id and self.tenant_id and tenant_id != self.tenant_id:
            logger.warning(
                "CXone: the access key belongs to tenant %s, not the configured tenant_id %s",
                tenant_id, self.tenant_id,
            )
        logger.info("CXone: token obtained (%s grant, tenant %s)", form["grant_type"], tenant_id)
        return CxoneToken(
            access_token=body.access_token,
            refresh_token=body.refresh_token,
            refresh_at=requested_at + body.expires_in * refresh_fraction,
            tenant_id=tenant_id,
        )


class _Discovery(BaseModel):
    auth_endpoint: str = Field(min_length=1)
    api_endpoint: str = Field(min_length=1)


class _OpenIdConfiguration(BaseModel):
    token_endpoint: str = Field(pattern=r"^https?://")


class _TokenResponse(BaseModel):
    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)

    access_token: SecretStr
    expires_in: float = Field(gt=0)
    refresh_token: SecretStr | None = None
    id_token: SecretStr | None = None


def _token_error(session: HttpSession, response: httpx.Response) -> AuthenticationError:
    endpoint = endpoint_of(response)
    try:
        body = response.json()
    except ValueError:
        body = None
    code = str(body.get("error")) if isinstance(body, dict) and body.get("error") else None
    error_type: type[AuthenticationError]
    if code == "invalid_client":
        error_type, message = InvalidClient, (
            "CXone refused the client id/secret (invalid_client): the client id or secret is wrong, or "
            "the app is not approved for this tenant. Check cxone.client_id and cxone.client_secret, "
            "and ask your CXone administrator (or NICE) to approve the app for the tenant."
        )
    elif code == "invalid_grant":
        error_type, message = InvalidCredentials, (
            "CXone refused the access key (invalid_grant): the access key is wrong, revoked, or its "
            "user is inactive. Check cxone.access_key_id and cxone.access_key_secret; in CXone see "
            "Admin > Employees > the access key's user > Access Keys (generate a new key if it was "
            "revoked) and make sure that user is active."
        )
    else:
        said = describe_error_body(response)
        error_type, message = AuthenticationError, (
            f"CXone's token endpoint {endpoint} answered HTTP {response.status_code}"
            f"{': ' + session.redact(said) if said else ''}. Check cxone.tenant_id (or auth_url) and the "
            "app's OAuth settings."
        )
    return error_type(
        message, system=SYSTEM, endpoint=endpoint, status_code=response.status_code, error_code=code
    )


def _tenant_from_id_token(id_token: SecretStr | None) -> str | None:
    """The `tenantId` claim of the id_token, or None when there is none or it can't be read."""
    if id_token is None:
        return None
    try:
        # Signature not verified on purpose: the id_token came straight from the token endpoint over
        # our own TLS connection, so its origin is already established, and tenantId is only read to
        # show and cross-check the tenant, never to grant anything. Verifying would need the JWKS.
        claims = jwt.decode(id_token.get_secret_value(), options={"verify_signature": False})
    except jwt.PyJWTError:
        logger.warning("CXone: the id_token in the token response is not a readable JWT; tenant id unknown")
        return None
    tenant = claims.get("tenantId")
    return str(tenant) if tenant else None
