"""CXone authentication (apis.md C1): the application, the access key, tokens and the id_token's keys.

The token endpoint takes the application's id and secret in HTTP Basic and an access key as the
password grant's username/password; it answers an opaque access token, a refresh token and an RS256
`id_token` whose claims carry `tenantId`. The `/__emulator/credentials` control can revoke the key,
deactivate its user, un-approve the application or narrow the teams the key's user may act for.

    authority = CxoneAuthority(options, clock, faults)
    grant = authority.password_grant(basic_header, key_id, key_secret, issuer="http://127.0.0.1:8081")
    authority.verify_bearer(f"Bearer {grant['access_token']}")
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any
from urllib.parse import unquote

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from presence_sync.emulators.cxone.errors import InvalidClient, InvalidGrant, Unauthorized
from presence_sync.emulators.cxone.options import CxoneEmulatorOptions
from presence_sync.emulators.faults import EmulatorClock, FaultInjector

SIGNING_KEY_ID = "cxone-emulator-1"


@cache
def _signing_key() -> rsa.RSAPrivateKey:
    # One key per process: generating RSA keys is slow, and nothing depends on it being per app.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass(frozen=True, slots=True)
class Grant:
    """What an access or refresh token stands for."""

    user: str
    client_id: str
    expires_at: datetime | None


@dataclass(slots=True)
class AccessPolicy:
    """The switches `PUT /__emulator/credentials` flips; the defaults let everything through."""

    client_approved: bool = True
    access_key_active: bool = True
    access_key_user_active: bool = True
    agent_scope_team_ids: frozenset[int] | None = None
    """Teams whose agents the key's user may join or log out; None: every team."""


class CxoneAuthority:
    """Issues and checks tokens for the one application and access key the tenant is seeded with. Thread-safe."""

    def __init__(self, options: CxoneEmulatorOptions, clock: EmulatorClock, faults: FaultInjector) -> None:
        self._options = options
        self._clock = clock
        self._faults = faults
        self._lock = threading.Lock()
        self._access_tokens: dict[str, Grant] = {}
        self._refresh_tokens: dict[str, Grant] = {}
        self.user_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"cxone-emulator:{options.tenant_id}:{options.access_key_user}"))
        self.policy = AccessPolicy()

    def reset(self) -> None:
        """Back to the seeded policy. Issued tokens stay valid: the credentials behind them did not change."""
        with self._lock:
            self.policy = AccessPolicy()

    def credentials(self) -> dict[str, str]:
        """The seeded (fake) credentials, in clear: what `GET /__emulator/credentials` shows."""
        o = self._options
        return {
            "tenant_id": o.tenant_id,
            "client_id": o.client_id,
            "client_secret": o.client_secret.get_secret_value(),
            "access_key_id": o.access_key_id,
            "access_key_secret": o.access_key_secret.get_secret_value(),
            "access_key_user": o.access_key_user,
        }

    # ------------------------------------------------------------------ token endpoint

    def password_grant(self, authorization: str | None, key_id: str, key_secret: str, *, issuer: str) -> dict[str, Any]:
        """`grant_type=password` with the access key as username/password."""
        client_id = self._authenticate_client(authorization)
        o = self._options
        key_matches = hmac.compare_digest(key_id.encode(), o.access_key_id.encode()) and hmac.compare_digest(
            key_secret.encode(), o.access_key_secret.get_secret_value().encode()
        )
        if not key_matches:
            raise InvalidGrant("the access key id or secret is wrong: copy both from the user's Access Keys tab")
        self._check_key_usable()
        return self._issue(client_id, issuer=issuer)

    def refresh_grant(self, authorization: str | None, refresh_token: str, *, issuer: str) -> dict[str, Any]:
        """`grant_type=refresh_token`: a new access and refresh token; the old refresh token stays valid."""
        client_id = self._authenticate_client(authorization)
        with self._lock:
            grant = self._refresh_tokens.get(refresh_token)
        if grant is None or grant.client_id != client_id:
            raise InvalidGrant("the refresh token is unknown or was issued to another application: log in again")
        self._check_key_usable()
        return self._issue(client_id, issuer=issuer)

    def verify_bearer(self, authorization: str | None) -> Grant:
        """The grant behind an `Authorization: Bearer` header; 401 when missing, unknown or expired."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("send 'Authorization: Bearer <access_token>' (get one from POST /auth/token)")
        with self._lock:
            grant = self._access_tokens.get(token.strip())
        if grant is None:
            raise Unauthorized("the access token is not valid: get a new one from POST /auth/token")
        if grant.expires_at is not None and self._clock.now() >= grant.expires_at:
            raise Unauthorized("the access token has expired: refresh it (grant_type=refresh_token) and retry")
        return grant

    def jwks(self) -> dict[str, Any]:
        """The public key that verifies `id_token`s (served at the OpenID `jwks_uri`)."""
        jwk = RSAAlgorithm.to_jwk(_signing_key().public_key(), as_dict=True)
        return {"keys": [{**jwk, "kid": SIGNING_KEY_ID, "use": "sig", "alg": "RS256"}]}

    # ------------------------------------------------------------------ internals

    def _authenticate_client(self, authorization: str | None) -> str:
        scheme, _, encoded = (authorization or "").partition(" ")
        if scheme.lower() != "basic" or not encoded.strip():
            raise InvalidClient("send the application's client id and secret as 'Authorization: Basic base64(id:secret)'")
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidClient("the Basic credentials are not valid base64 of 'client_id:client_secret'") from None
        raw_id, sep, raw_secret = decoded.partition(":")
        client_id, client_secret = unquote(raw_id), unquote(raw_secret)
        o = self._options
        if not sep or not (
            hmac.compare_digest(client_id.encode(), o.client_id.encode())
            and hmac.compare_digest(client_secret.encode(), o.client_secret.get_secret_value().encode())
        ):
            raise InvalidClient("the client id or client secret is wrong: use the values of the registered application")
        if not self.policy.client_approved:
            raise InvalidClient("the application is not approved for this tenant: ask NICE to approve the client id")
        return client_id

    def _check_key_usable(self) -> None:
        if not self.policy.access_key_active:
            raise InvalidGrant("the access key is revoked (inactive): create a new access key for the user")
        if not self.policy.access_key_user_active:
            raise InvalidGrant(f"the access key's user {self._options.access_key_user!r} is inactive: activate the user")

    def _issue(self, client_id: str, *, issuer: str) -> dict[str, Any]:
        now = self._clock.now()
        ttl = self._faults.settings.token_ttl_s or self._options.token_ttl_s
        user = self._options.access_key_user
        access_token, refresh_token = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self._lock:
            self._access_tokens[access_token] = Grant(user, client_id, now + timedelta(seconds=ttl))
            self._refresh_tokens[refresh_token] = Grant(user, client_id, None)
        claims = {
            "iss": issuer,
            "sub": self.user_id,
            "aud": client_id,
            "iat": int(now.timestamp()),
            "exp": int(now.timestamp()) + ttl,
            "tenantId": self._options.tenant_id,
            "name": user,
        }
        id_token = jwt.encode(claims, _signing_key(), algorithm="RS256", headers={"kid": SIGNING_KEY_ID})
        return {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": ttl,
            "refresh_token": refresh_token,
            "id_token": id_token,
        }
