"""Salesforce credentials and OAuth (apis.md S1): the three flows, the token request and what each refusal means.

    creds = SalesforceCredentials(
        login_url="https://acme.my.salesforce.com",
        auth=ClientCredentialsFlow(client_id="3MVG9...", client_secret=SecretStr("...")),
    )
    async with creds.get_client() as sf:     # logs in on the first call: InvalidCredentials etc. carry the fix
        ...

These models are the one description of a Salesforce login: the config file's `salesforce:` section
is a `SalesforceCredentials` (models/config/connections.py extends them with how values are written
in YAML), so every rule about which settings go together lives here. A new flow is one more model
with its `grant_form`, added to `SalesforceFlow`.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self

import httpx
import jwt
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from presence_sync.connectors.credentials import CredentialsModel, config_problem, config_problems
from presence_sync.connectors.errors import AuthenticationError, InvalidClient, InvalidCredentials, UnsupportedGrant
from presence_sync.connectors.http import HttpSession, endpoint_label, parse_json
from presence_sync.connectors.salesforce import SYSTEM, SalesforceClient, SalesforceIdentity, SalesforceToken
from presence_sync.connectors.urls import api_version, base_url

logger = logging.getLogger(__name__)

PRODUCTION_LOGIN_URL = "https://login.salesforce.com"
SANDBOX_LOGIN_URL = "https://test.salesforce.com"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
JWT_LIFETIME_SECONDS = 180  # Salesforce accepts assertions that expire within 3 minutes
USERNAME_PASSWORD_RETIREMENT = "2027-02-20"

_IDENTITY_URL = re.compile(r"/id/(?P<org>[A-Za-z0-9]{15,18})/(?P<user>[A-Za-z0-9]{15,18})/?$")
_GENERIC_LOGIN_HOSTS = frozenset(httpx.URL(url).host for url in (PRODUCTION_LOGIN_URL, SANDBOX_LOGIN_URL))


def generic_login_url(login_url: str) -> str | None:
    """The generic login host of the org kind `login_url` belongs to: production or sandbox.

    login/test.salesforce.com are their own; a My Domain maps to the one of its kind; None for any
    other host (the emulator, a proxy), whose kind its name does not tell.
    """
    host = httpx.URL(login_url).host
    if host == httpx.URL(SANDBOX_LOGIN_URL).host or host.endswith(".sandbox.my.salesforce.com"):
        return SANDBOX_LOGIN_URL
    if host == httpx.URL(PRODUCTION_LOGIN_URL).host or host.endswith(".my.salesforce.com"):
        return PRODUCTION_LOGIN_URL
    return None


def jwt_audience(login_url: str) -> str:
    """The `aud` of a JWT-bearer assertion: the production or sandbox login host, per Salesforce's docs.

    A host whose kind its name does not tell (the emulator, a proxy) is its own audience.
    """
    return generic_login_url(login_url) or login_url


# --- the flows


class _Flow(CredentialsModel):
    """What every OAuth flow has: its name and the connected app's consumer key (client_id)."""

    flow: str
    client_id: str = Field(min_length=1)
    # Salesforce answers this flow only on the org's My Domain ("request not supported on this domain").
    needs_my_domain: ClassVar[bool] = False

    @model_validator(mode="before")
    @classmethod
    def _no_settings_of_other_flows(cls, data: Any) -> Any:
        if isinstance(data, dict):
            others = {name for flow in _Flow.__subclasses__() for name in flow.model_fields} - set(cls.model_fields)
            misplaced = [key for key in data if key in others]
            if misplaced:
                flow = data.get("flow")
                raise config_problems(
                    *((key, f"'{key}' is not used by the {flow} flow", "remove it, or change flow") for key in misplaced)
                )
        return data

    def grant_form(self, login_url: str) -> dict[str, str]:
        """The token request's form for this flow."""
        raise NotImplementedError

    def refresh_form(self, refresh_token: SecretStr) -> dict[str, str]:
        """The form that trades a refresh token for a new access token."""
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token.get_secret_value(), "client_id": self.client_id}
        client_secret: SecretStr | None = getattr(self, "client_secret", None)
        if client_secret is not None:
            form["client_secret"] = client_secret.get_secret_value()
        return form

    def secret_values(self) -> list[str]:
        """Every secret this flow holds, as sent on the wire (for scrubbing server text)."""
        return [value.get_secret_value() for value in self.__dict__.values() if isinstance(value, SecretStr)]


class PasswordFlow(_Flow):
    """OAuth username-password flow (the seed's; Salesforce retires it on 2027-02-20).

    `security_token` is appended to the password unless the org trusts the caller's IP range.
    """

    flow: Literal["password"] = "password"
    client_secret: SecretStr
    username: str = Field(min_length=1)
    password: SecretStr
    security_token: SecretStr | None = None

    def password_with_token(self) -> SecretStr:
        """The `password` form field: the password with the security token appended."""
        token = self.security_token.get_secret_value() if self.security_token else ""
        return SecretStr(self.password.get_secret_value() + token)

    def grant_form(self, login_url: str) -> dict[str, str]:
        return {
            "grant_type": "password",
            "client_id": self.client_id,
            "client_secret": self.client_secret.get_secret_value(),
            "username": self.username,
            "password": self.password_with_token().get_secret_value(),
        }

    def secret_values(self) -> list[str]:
        return [*super().secret_values(), self.password_with_token().get_secret_value()]


class ClientCredentialsFlow(_Flow):
    """OAuth client-credentials flow: runs as the app's "Run As" user; My Domain host only."""

    flow: Literal["client_credentials"] = "client_credentials"
    client_secret: SecretStr
    needs_my_domain: ClassVar[bool] = True

    def grant_form(self, login_url: str) -> dict[str, str]:
        return {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.client_secret.get_secret_value(),
        }


class JwtFlow(_Flow):
    """OAuth JWT bearer flow: an RS256 assertion signed with the app's private key.

    The key is given as `private_key` (PEM text) or `private_key_file` (read when signing).
    """

    flow: Literal["jwt"] = "jwt"
    username: str = Field(min_length=1)
    private_key: SecretStr | None = None
    private_key_file: Path | None = None

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
            raise InvalidCredentials(
                f"can't read the JWT private key file {self.private_key_file} ({error.strerror}): "
                "check the file and its permissions.",
                system=SYSTEM,
                endpoint="JWT assertion",
            ) from None

    def grant_form(self, login_url: str) -> dict[str, str]:
        claims = {
            "iss": self.client_id,
            "sub": self.username,
            "aud": jwt_audience(login_url),
            "exp": int(time.time()) + JWT_LIFETIME_SECONDS,
        }
        try:
            assertion = jwt.encode(claims, self.signing_key().get_secret_value(), algorithm="RS256")
        except (ValueError, TypeError, jwt.PyJWTError):
            # `from None`: the underlying error may quote the key material.
            raise InvalidCredentials(
                "the JWT private key can't be used: give the PEM RSA private key (-----BEGIN PRIVATE "
                "KEY----- or -----BEGIN RSA PRIVATE KEY-----) whose certificate is uploaded to the "
                "connected app ('Use digital signatures').",
                system=SYSTEM,
                endpoint="JWT assertion",
            ) from None
        return {"grant_type": JWT_BEARER_GRANT, "assertion": assertion}

    def secret_values(self) -> list[str]:
        try:
            return [self.signing_key().get_secret_value()]
        except InvalidCredentials:
            return []


SalesforceFlow = Annotated[PasswordFlow | ClientCredentialsFlow | JwtFlow, Field(discriminator="flow")]


# --- the credentials


class SalesforceCredentials(CredentialsModel):
    """How to reach and log in to one Salesforce org. Secrets are SecretStr and never printed.

        SalesforceCredentials(
            login_url="https://test.salesforce.com",
            auth=PasswordFlow(client_id="3MVG9...", client_secret=SecretStr("..."), username="integration@acme.com.uat",
                              password=SecretStr("..."), security_token=SecretStr("...")),
        ).get_client()
    """

    login_url: str = PRODUCTION_LOGIN_URL
    api_version: str = "v62.0"
    auth: SalesforceFlow

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
    def _my_domain_when_the_flow_needs_it(self) -> Self:
        if self.auth.needs_my_domain and not self.uses_my_domain:
            raise config_problem(
                f"the {self.auth.flow} flow only works on your org's My Domain",
                "set login_url: https://<your-domain>.my.salesforce.com (Setup -> My Domain); "
                "login/test.salesforce.com answer 'request not supported on this domain'",
                at="login_url",
            )
        return self

    @property
    def uses_my_domain(self) -> bool:
        """True when the login host is the org's own (My Domain, or an emulator), not login/test."""
        return httpx.URL(self.login_url).host not in _GENERIC_LOGIN_HOSTS

    def get_client(self, **options: Any) -> SalesforceClient:
        """A SalesforceClient for these credentials; `options` go to its constructor."""
        return SalesforceClient(self, **options)

    def secret_values(self) -> list[str]:
        """Every secret these credentials hold, as sent on the wire (for scrubbing server text)."""
        return self.auth.secret_values()

    async def fetch_token(self, session: HttpSession, previous: SalesforceToken | None) -> SalesforceToken:
        """A new token: through the refresh token when one was issued, else the configured flow."""
        if previous is not None and previous.refresh_token is not None:
            try:
                return await self._request_token(session, self.auth.refresh_form(previous.refresh_token), "refresh_token")
            except AuthenticationError as error:
                logger.info("Salesforce refresh token refused (%s); logging in again", error.error_code)
        return await self._request_token(session, self.auth.grant_form(self.login_url), self.auth.flow)

    async def _request_token(self, session: HttpSession, form: dict[str, str], grant: str) -> SalesforceToken:
        url = f"{self.login_url}/services/oauth2/token"
        endpoint = endpoint_label("POST", url)
        # Asking for a token twice is harmless, so transient failures may be retried.
        response = await session.request("POST", url, data=form, idempotent=True, bounded=False)
        if response.status_code != 200:
            raise self._token_error(session, response, endpoint, grant)
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

    def _token_error(
        self, session: HttpSession, response: httpx.Response, endpoint: str, grant: str
    ) -> AuthenticationError:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or "error" not in body:
            return AuthenticationError(
                f"the Salesforce token endpoint {endpoint} at {self.login_url} answered HTTP "
                f"{response.status_code} without an OAuth error: check login_url ({PRODUCTION_LOGIN_URL}, "
                f"{SANDBOX_LOGIN_URL} or https://<your-domain>.my.salesforce.com).",
                system=SYSTEM,
                endpoint=endpoint,
                status_code=response.status_code,
            )
        code = str(body.get("error"))
        description = session.redact(str(body.get("error_description") or ""))
        said = f"{code}: {description}" if description else code
        error_type, message = _explain_token_error(code, description, grant, self.login_url)
        return error_type(
            f"Salesforce refused the {grant} login ({said}). {message}",
            system=SYSTEM,
            endpoint=endpoint,
            status_code=response.status_code,
            error_code=code,
        )


class _TokenResponse(BaseModel):
    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)

    access_token: SecretStr
    instance_url: str = Field(pattern=r"^https?://[^/\s]+")
    id: str = Field(pattern=_IDENTITY_URL.pattern)
    refresh_token: SecretStr | None = None


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
