"""The OAuth 2.0 token endpoint's four grants (apis.md S1) and the sessions they open.

A session lives while it is used: each data API call restarts its inactivity timeout
(`session_timeout_s`), as Salesforce does. The fault control `token_ttl_s` additionally caps a token's
age, to exercise clients' re-authentication.

    body = issue_token(org, sessions, {"grant_type": "password", ...}, hosts, now)
    session = sessions.authenticate(body["access_token"], now, timeout_s=7200, ttl_s=None)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import jwt

from presence_sync.emulators.salesforce.errors import OAuthError, session_invalid
from presence_sync.emulators.salesforce.hosts import RequestHosts
from presence_sync.emulators.salesforce.org import ConnectedApp, SalesforceOrg

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"



def _authentication_failure() -> OAuthError:
    return OAuthError("invalid_grant", "authentication failure")


def _invalid_assertion() -> OAuthError:
    return OAuthError("invalid_grant", "invalid assertion")


@dataclass
class Session:
    token: str = field(repr=False)
    user_id: str
    issued_at: datetime
    last_used: datetime


class SessionStore:
    def __init__(self, org_id: str) -> None:
        self._org_id = org_id
        self._sessions: dict[str, Session] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def issue(self, user_id: str, now: datetime) -> Session:
        token = f"{self._org_id[:15]}!AQ{secrets.token_urlsafe(72)}"
        session = self._sessions[token] = Session(token, user_id, now, now)
        return session

    def authenticate(self, token: str | None, now: datetime, timeout_s: int, ttl_s: int | None) -> Session:
        """The live session for `token` (its inactivity clock restarted) or 401 INVALID_SESSION_ID."""
        session = self._sessions.get(token or "")
        if session is None:
            raise session_invalid()
        idle = (now - session.last_used).total_seconds()
        age = (now - session.issued_at).total_seconds()
        if idle >= timeout_s or (ttl_s is not None and age >= ttl_s):
            del self._sessions[session.token]
            raise session_invalid()
        session.last_used = now
        return session


def issue_token(org: SalesforceOrg, sessions: SessionStore, form: dict[str, str], hosts: RequestHosts,
                now: datetime) -> dict[str, Any]:
    """Run the grant in `form`; returns the success body or raises `OAuthError`."""
    grant = _GRANTS.get(form.get("grant_type", ""))
    if grant is None or hosts.is_other_environments_login_host:
        raise OAuthError("unsupported_grant_type", "grant type not supported")
    app = org.connected_app
    if app is None:
        raise OAuthError("invalid_client_id", "client identifier invalid")
    user_id, extra = grant(org, app, form, hosts, now)
    session = sessions.issue(user_id, now)
    identity = f"{hosts.instance_url}/id/{org.org_id}/{user_id}"
    issued_at = str(int(now.timestamp() * 1000))
    digest = hmac.new(app.client_secret.encode(), (identity + issued_at).encode(), hashlib.sha256).digest()
    return {
        "access_token": session.token,
        "instance_url": hosts.instance_url,
        "id": identity,
        "token_type": "Bearer",
        "issued_at": issued_at,
        "signature": base64.b64encode(digest).decode(),
        **extra,
    }


Grant = Callable[[SalesforceOrg, ConnectedApp, dict[str, str], RequestHosts, datetime], tuple[str, dict[str, str]]]


def _same(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def _check_client(app: ConnectedApp, form: dict[str, str]) -> None:
    if not _same(form.get("client_id"), app.client_id):
        raise OAuthError("invalid_client_id", "client identifier invalid")
    if not _same(form.get("client_secret"), app.client_secret):
        raise OAuthError("invalid_client", "invalid client credentials")


def _password(org: SalesforceOrg, app: ConnectedApp, form: dict[str, str], hosts: RequestHosts,
              now: datetime) -> tuple[str, dict[str, str]]:
    _check_client(app, form)
    # Salesforce answers the same for a wrong password, a blocked flow and an MFA user.
    if org.settings.block_username_password_flow:
        raise _authentication_failure()
    username = form.get("username", "")
    user = org.user_by_username(username)
    if user is None or not user["IsActive"] or username.lower() in org.settings.mfa_users:
        raise _authentication_failure()
    login = org.logins.get(user["Id"])
    if login is None or not _same(form.get("password"), login.password + login.security_token):
        raise _authentication_failure()
    return user["Id"], {}


def _client_credentials(org: SalesforceOrg, app: ConnectedApp, form: dict[str, str], hosts: RequestHosts,
                        now: datetime) -> tuple[str, dict[str, str]]:
    if not hosts.is_my_domain:
        raise OAuthError("invalid_grant", "request not supported on this domain")
    _check_client(app, form)
    run_as = org.get("User", app.run_as_user_id)
    if run_as is None or not run_as["IsActive"]:
        raise OAuthError("invalid_grant", "no client credentials user enabled")
    return run_as["Id"], {"token_format": "opaque"}


def _jwt_bearer(org: SalesforceOrg, app: ConnectedApp, form: dict[str, str], hosts: RequestHosts,
                now: datetime) -> tuple[str, dict[str, str]]:
    assertion = form.get("assertion", "")
    try:
        header = jwt.get_unverified_header(assertion)
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise _invalid_assertion() from exc
    if claims.get("iss") != app.client_id:
        raise OAuthError("invalid_client_id", "client identifier invalid")
    if header.get("alg") != "RS256":
        raise _invalid_assertion()
    try:
        jwt.decode(
            assertion, app.jwt_public_key_pem, algorithms=["RS256"],
            options={"verify_aud": False, "verify_exp": False, "verify_iat": False, "verify_nbf": False},
        )
    except jwt.PyJWTError as exc:
        raise _invalid_assertion() from exc
    audiences = claims.get("aud")
    audiences = audiences if isinstance(audiences, list) else [audiences]
    if not {hosts.canonical_login_url, hosts.login_url} & {a for a in audiences if isinstance(a, str)}:
        raise OAuthError("invalid_grant", "audience is invalid")
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or exp <= now.timestamp():
        raise OAuthError("invalid_grant", "expired authorization code")
    user = org.user_by_username(str(claims.get("sub", "")))
    if user is None or not user["IsActive"] or user["ProfileId"] not in app.preapproved_profile_ids:
        raise OAuthError("invalid_grant", "user hasn't approved this consumer")
    return user["Id"], {}


def _refresh_token(org: SalesforceOrg, app: ConnectedApp, form: dict[str, str], hosts: RequestHosts,
                   now: datetime) -> tuple[str, dict[str, str]]:
    _check_client(app, form)
    # None of the supported flows issues a refresh token, so no refresh token is valid.
    raise OAuthError("invalid_grant", "expired access/refresh token")


_GRANTS: dict[str, Grant] = {
    "password": _password,
    "client_credentials": _client_credentials,
    JWT_BEARER_GRANT: _jwt_bearer,
    "refresh_token": _refresh_token,
}
