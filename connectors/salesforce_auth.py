"""Salesforce credentials and OAuth (apis.md S1): the four grants and what each refusal means.

    creds = SalesforceCredentials(login_url="https://acme.my.salesforce.com", flow="client_credentials",
                                  client_id="3MVG9...", client_secret=SecretStr("..."))
    auth = SalesforceAuth(creds, session)
    token = await auth.fetch(previous=None)     # raises InvalidCredentials etc. with the fix
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import httpx
import jwt
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from presence_sync.connectors.errors import (
    AuthenticationError,
    InvalidClient,
    InvalidCredentials,
    UnsupportedGrant,
)
from presence_sync.connectors.http import HttpSession, endpoint_label, parse_json
from presence_sync.connectors.urls import api_version, base_url

if TYPE_CHECKING:
    from presence_sync.connectors.salesforce import SalesforceClient

logger = logging.getLogger(__name__)

SYSTEM = "Salesforce"
PRODUCTION_LOGIN_URL = "https://login.salesforce.com"
SANDBOX_LOGIN_URL = "https://test.salesforce.com"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
JWT_LIFETIME_SECONDS = 180  # Salesforce accepts assertions that expire within 3 minutes
USERNAME_PASSWORD_RETIREMENT = "2027-02-20"

Flow = Literal["password", "client_credentials", "jwt"]

_IDENTITY_URL = re.compile(r"/id/(?P<org>[A-Za-z0-9]{15,18})/(?P<user>[A-Za-z0-9]{15,18})/?$")
_GENERIC_LOGIN_HOSTS = frozenset({"login.salesforce.com", "test.salesforce.com"})


def _is_generic_login_host(url: str) -> bool:
    return httpx.URL(url).host in _GENERIC_LOGIN_HOSTS


def jwt_audience(login_url: str) -> str:
    """The `aud` of a JWT-bearer assertion: the production or sandbox login host, per Salesforce's docs.

    A My Domain maps to the login host of its kind; any other host (the emulator, a proxy) is its own audience.
    """
    host = httpx.URL(login_url).host
    if host == "test.salesforce.com" or host.endswith(".sandbox.my.salesforce.com"):
        return SANDBOX_LOGIN_URL
    if host == "login.salesforce.com" or host.endswith(".my.salesforce.com"):
        return PRODUCTION_LOGIN_URL
    return login_url


class SalesforceCredentials(BaseModel):
    """How to reach and log in to one Salesforce org. Secrets are SecretStr and never printed.

        SalesforceCredentials(
            login_url="https://test.salesforce.com", flow="password", client_id="3MVG9...",
            client_secret=SecretStr("..."), username="integration@acme.com.uat",
            password=SecretStr("..."), security_token=SecretStr("..."),
        ).get_client()

    Flows and what each needs: `password` (client_secret, username, password, security_token unless
    the org trusts the caller's IP); `client_credentials` (client_secret; login_url must be the My
    Domain); `jwt` (username, private_key: the PEM key whose certificate is on the connected app).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    login_url: str = PRODUCTION_LOGIN_URL
    api_version: str = "v62.0"
    flow: Flow = "password"
    client_id: str = Field(min_length=1)
    client_secret: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    security_token: SecretStr | None = None
    private_key: SecretStr | None = None

    @field_validator("login_url")
    @classmethod
    def _normalise_login_url(cls, value: str) -> str:
        example = f"{PRODUCTION_LOGIN_URL}, {SANDBOX_LOGIN_URL} or https://<your-domain>.my.salesforce.com"
        return base_url(value, "login_url", example)

    @field_validator("api_version")
    @classmethod
    def _normalise_api_version(cls, value: str) -> str:
        return api_version(value, "v62.0")

    @model_validator(mode="after")
    def _check_flow_fields(self) -> SalesforceCredentials:
        needed = {
            "password": ("client_secret", "username", "password"),
            "client_credentials": ("client_secret",),
            "jwt": ("username", "private_key"),
        }[self.flow]
        missing = [name for name in needed if not _has_value(getattr(self, name))]
        if missing:
            raise ValueError(
                f"the {self.flow} flow needs {', '.join(needed)}; missing: {', '.join(missing)}"
            )
        if self.flow == "client_credentials" and _is_generic_login_host(self.login_url):
            raise ValueError(
                "the client_credentials flow only works on the org's My Domain: set login_url to "
                "https://<your-domain>.my.salesforce.com (Setup > My Domain shows it), "
                f"not {self.login_url}"
            )
        return self

    def get_client(self, **options: Any) -> SalesforceClient:
        """A SalesforceClient for these credentials; `options` go to its constructor."""
        from presence_sync.connectors.salesforce import SalesforceClient  # the client module imports this one

        return SalesforceClient(self, **options)

    def password_as_sent(self) -> str:
        """The password flow's `password` field: the password with the security token appended."""
        return _secret(self.password) + _secret(self.security_token)

    def secret_values(self) -> list[str]:
        """Every secret these credentials hold, as sent on the wire (for scrubbing server text)."""
        return [
            _secret(self.client_secret),
            _secret(self.password),
            _secret(self.security_token),
            self.password_as_sent(),
            _secret(self.private_key),
        ]


def _has_value(value: str | SecretStr | None) -> bool:
    if isinstance(value, SecretStr):
        return bool(value.get_secret_value())
    return bool(value)


@dataclass(frozen=True, slots=True)
class SalesforceIdentity:
    """Who we are logged in as, from the token response."""

    instance_url: str
    org_id: str
    user_id: str


@dataclass(frozen=True, slots=True)
class SalesforceToken:
    """What a successful login gives: the bearer token, who we are, and a refresh token if issued."""

    access_token: SecretStr
    identity: SalesforceIdentity
    refresh_token: SecretStr | None


class _TokenResponse(BaseModel):
    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)

    access_token: SecretStr
    instance_url: str = Field(pattern=r"^https?://[^/\s]+")
    id: str = Field(pattern=_IDENTITY_URL.pattern)
    refresh_token: SecretStr | None = None


class SalesforceAuth:
    """Obtains tokens for one set of credentials; `redact` scrubs server text before it is quoted."""

    def __init__(
        self, credentials: SalesforceCredentials, session: HttpSession, redact: Callable[[str], str] = str
    ) -> None:
        self.credentials = credentials
        self._http = session
        self._redact = redact

    async def fetch(self, previous: SalesforceToken | None) -> SalesforceToken:
        """A new token: through the refresh token when one was issued, else the configured flow."""
        if previous is not None and previous.refresh_token is not None:
            try:
                return await self._request_token(self._refresh_form(previous.refresh_token), "refresh_token")
            except AuthenticationError as error:
                logger.info("Salesforce refresh token refused (%s); logging in again", error.error_code)
        return await self._request_token(self._grant_form(), self.credentials.flow)

    def _grant_form(self) -> dict[str, str]:
        creds = self.credentials
        if creds.flow == "password":
            return {
                "grant_type": "password",
                "client_id": creds.client_id,
                "client_secret": _secret(creds.client_secret),
                "username": creds.username or "",
                "password": creds.password_as_sent(),
            }
        if creds.flow == "client_credentials":
            return {
                "grant_type": "client_credentials",
                "client_id": creds.client_id,
                "client_secret": _secret(creds.client_secret),
            }
        return {"grant_type": JWT_BEARER_GRANT, "assertion": self._jwt_assertion()}

    def _refresh_form(self, refresh_token: SecretStr) -> dict[str, str]:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token.get_secret_value(),
            "client_id": self.credentials.client_id,
        }
        if self.credentials.client_secret is not None:
            form["client_secret"] = self.credentials.client_secret.get_secret_value()
        return form

    def _jwt_assertion(self) -> str:
        creds = self.credentials
        claims = {
            "iss": creds.client_id,
            "sub": creds.username,
            "aud": jwt_audience(creds.login_url),
            "exp": int(time.time()) + JWT_LIFETIME_SECONDS,
        }
        try:
            return jwt.encode(claims, _secret(creds.private_key), algorithm="RS256")
        except (ValueError, TypeError, jwt.PyJWTError):
            # `from None`: the underlying error may quote the key material.
            raise InvalidCredentials(
                "the JWT private key can't be used: give the PEM RSA private key (-----BEGIN PRIVATE "
                "KEY----- or -----BEGIN RSA PRIVATE KEY-----) whose certificate is uploaded to the "
                "connected app ('Use digital signatures').",
                system=SYSTEM,
                endpoint="JWT assertion",
            ) from None

    async def _request_token(self, form: dict[str, str], grant: str) -> SalesforceToken:
        url = f"{self.credentials.login_url}/services/oauth2/token"
        endpoint = endpoint_label("POST", url)
        # Asking for a token twice is harmless, so transient failures may be retried.
        response = await self._http.request("POST", url, data=form, idempotent=True)
        if response.status_code != 200:
            raise self._token_error(response, endpoint, grant)
        body: _TokenResponse = parse_json(
            response, _TokenResponse, system=SYSTEM, endpoint=endpoint, expected="an OAuth token response"
        )
        ids = _IDENTITY_URL.search(body.id)
        assert ids is not None  # the model's pattern guarantees it
        identity = SalesforceIdentity(body.instance_url.rstrip("/"), ids["org"], ids["user"])
        logger.info(
            "Salesforce: authenticated with the %s flow (org %s, user %s, instance %s)",
            grant, identity.org_id, identity.user_id, identity.instance_url,
        )
        return SalesforceToken(body.access_token, identity, body.refresh_token)

    def _token_error(self, response: httpx.Response, endpoint: str, grant: str) -> AuthenticationError:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or "error" not in body:
            return AuthenticationError(
                f"the Salesforce token endpoint {endpoint} at {self.credentials.login_url} answered HTTP "
                f"{response.status_code} without an OAuth error: check login_url ({PRODUCTION_LOGIN_URL}, "
                f"{SANDBOX_LOGIN_URL} or https://<your-domain>.my.salesforce.com).",
                system=SYSTEM,
                endpoint=endpoint,
                status_code=response.status_code,
            )
        code = str(body.get("error"))
        description = self._redact(str(body.get("error_description") or ""))
        said = f"{code}: {description}" if description else code
        error_type, message = _explain_token_error(code, description, grant, self.credentials.login_url)
        return error_type(
            f"Salesforce refused the {grant} login ({said}). {message}",
            system=SYSTEM,
            endpoint=endpoint,
            status_code=response.status_code,
            error_code=code,
        )


def _explain_token_error(
    code: str, description: str, grant: str, login_url: str
) -> tuple[type[AuthenticationError], str]:
    """The exception type and the admin-facing explanation of an OAuth error (apis.md S1)."""
    if code == "invalid_grant" and "not supported on this domain" in description:
        return UnsupportedGrant, (
            "This flow only works on your org's My Domain: set login_url to your My Domain URL "
            "https://<domain>.my.salesforce.com (Setup > My Domain shows it; a sandbox's is "
            f"https://<company>--<sandbox>.sandbox.my.salesforce.com), not {login_url}."
        )
    if code == "invalid_grant" and grant == "password":
        return InvalidCredentials, (
            "Salesforce gives this same answer for three different causes; check each:\n"
            "  1. Wrong username, password or security token: check them in the config (presence-sync "
            "appends the security token to the password; reset it under your avatar > Settings > "
            "Reset My Security Token).\n"
            "  2. The org blocks this flow: Setup > OAuth and OpenID Connect Settings > turn on "
            "'Allow OAuth Username-Password Flows' (off by default in orgs created since Summer '23).\n"
            "  3. MFA is enforced on this user: the username-password flow can't do MFA; use the "
            "client_credentials or jwt flow instead (neither needs MFA off nor that setting).\n"
            f"Note: Salesforce retires the username-password flow on {USERNAME_PASSWORD_RETIREMENT}; "
            "move to client_credentials or jwt before then."
        )
    if code == "invalid_grant" and grant == "jwt":
        return InvalidCredentials, (
            "Check that the connected app is pre-approved for this user (Manage > Edit Policies > "
            "'Admin approved users are pre-authorized', and the user's profile or permission set is "
            "added to the app), that the certificate on the app matches the private key, and that "
            "the username exists in this org (production vs sandbox)."
        )
    if code == "invalid_grant" and grant == "client_credentials":
        return InvalidCredentials, (
            "Set the app's Run As user (App Manager > the app > Manage > Edit Policies > Client "
            "Credentials Flow > Run As) to an active user with API access."
        )
    if code == "invalid_grant":
        return InvalidCredentials, "The grant was refused; log in again with the configured flow."
    if code == "invalid_client_id":
        return InvalidClient, (
            "Salesforce does not know this consumer key (client_id): copy the Consumer Key from "
            "Setup > App Manager > the app > View > Manage Consumer Details; check that login_url is "
            "the org the app lives in (production vs sandbox); a new app can take up to 10 minutes to work."
        )
    if code == "invalid_client":
        return InvalidClient, (
            "The consumer secret (client_secret) is wrong: copy the Consumer Secret from Setup > App "
            "Manager > the app > View > Manage Consumer Details."
        )
    if code == "unsupported_grant_type":
        return UnsupportedGrant, (
            "This flow is not enabled for the app or this host: for client_credentials enable "
            "'Enable Client Credentials Flow' on the app and use the My Domain URL; for jwt enable "
            "'Use digital signatures'; for password turn on Setup > OAuth and OpenID Connect Settings > "
            "'Allow OAuth Username-Password Flows'."
        )
    return AuthenticationError, "See Salesforce's message above and the connected app's OAuth policies."


def _secret(value: SecretStr | None) -> str:
    return value.get_secret_value() if value is not None else ""
