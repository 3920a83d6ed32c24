"""Console tokens: short-lived, single-use proof that a console belongs to one Salesforce user.

Our Apex class `PresenceSyncGatewayToken.mint()` (salesforce/force-app/main/default/classes/) mints
one for the running user; the gateway verifies it here. A token is a JWT signed with HMAC-SHA256
(`Crypto.generateMac('hmacSHA256', ...)` in Apex) under a secret the admin shares between the org
and the gateway; its claims:

| claim | value |
|---|---|
| `sub` | the Salesforce User Id (18 characters) the console runs as |
| `org` | the org Id (18 characters) |
| `aud` | `presence-sync-gateway` |
| `iat`, `exp` | issued at, expires at (seconds since the epoch); minted with a lifetime of 15 minutes |
| `jti` | a random id: the gateway accepts each token once (replay protection, shared through the broker) |

The gateway accepts the current secret and, during a rotation, the previous one. Secrets are
`SecretStr` and never appear in logs, errors or reprs.

    secret = SecretStr("<at least 32 characters>")
    token = mint_token(secret, user_id="005...", org_id="00D...")            # tests and emulators
    claims = TokenVerifier([secret]).verify(token)                          # the gateway
"""

from __future__ import annotations

import secrets as random_source
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from pydantic import SecretStr

from presence_sync.connectors.console.protocol import CloseCode, ProtocolViolation, salesforce_id_18

AUDIENCE = "presence-sync-gateway"
ALGORITHM = "HS256"
MIN_SECRET_LENGTH = 32
DEFAULT_LIFETIME = timedelta(minutes=15)
MAX_LIFETIME = timedelta(hours=1)
CLOCK_LEEWAY = timedelta(seconds=30)
MAX_TOKEN_LENGTH = 2048

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class TokenError(ProtocolViolation):
    """A token the gateway refuses; `code` is the close code (4001 expired, 4003 invalid, 4004 replayed)."""


def check_secret(secret: SecretStr, *, name: str = "the gateway secret") -> SecretStr:
    """A secret long enough for HMAC-SHA256, or a ValueError saying how to make one (never the value)."""
    if len(secret.get_secret_value()) < MIN_SECRET_LENGTH:
        raise ValueError(
            f"{name} is too short: use at least {MIN_SECRET_LENGTH} random characters, e.g. "
            "`python -c \"import secrets; print(secrets.token_urlsafe(32))\"`"
        )
    return secret


@dataclass(frozen=True)
class TokenClaims:
    """What a verified token says: this connection acts for `user_id` in `org_id` until `expires_at`."""

    user_id: str
    org_id: str
    token_id: str
    issued_at: datetime
    expires_at: datetime


def mint_token(
    secret: SecretStr,
    *,
    user_id: str,
    org_id: str,
    lifetime: timedelta = DEFAULT_LIFETIME,
    now: datetime | None = None,
    token_id: str | None = None,
) -> str:
    """A token for one user, as the Apex class mints it (for tests, the emulator's consoles, benchmarks)."""
    issued = (now or utc_now()).astimezone(UTC)
    payload = {
        "sub": salesforce_id_18(user_id),
        "org": salesforce_id_18(org_id),
        "aud": AUDIENCE,
        "iat": int(issued.timestamp()),
        "exp": int((issued + lifetime).timestamp()),
        "jti": token_id or random_source.token_hex(16),
    }
    return jwt.encode(payload, check_secret(secret).get_secret_value(), algorithm=ALGORITHM, headers={"typ": "JWT"})


class TokenVerifier:
    """Checks a console token's signature and claims; replay is checked by the caller (the broker).

    Example:
        verifier = TokenVerifier([current, previous], org_ids={"00D000000000001AAA"})
        claims = verifier.verify(token)      # TokenError(code=4001/4003) when refused
    """

    def __init__(
        self,
        secrets: Sequence[SecretStr],
        *,
        org_ids: Collection[str] | None = None,
        max_lifetime: timedelta = MAX_LIFETIME,
        leeway: timedelta = CLOCK_LEEWAY,
        clock: Clock = utc_now,
    ) -> None:
        if not secrets:
            raise ValueError("the gateway needs its secret (PRESENCE_SYNC_GATEWAY_SECRET) to verify tokens")
        self._keys = [check_secret(secret).get_secret_value() for secret in secrets]
        self._org_ids = frozenset(salesforce_id_18(org) for org in org_ids) if org_ids else None
        self._max_lifetime = max_lifetime
        self._leeway = leeway
        self._clock = clock

    def __repr__(self) -> str:
        return f"TokenVerifier(secrets=<{len(self._keys)} hidden>, org_ids={sorted(self._org_ids or [])})"

    def verify(self, token: str) -> TokenClaims:
        if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
            raise TokenError(CloseCode.TOKEN_INVALID, "malformed token")
        payload = self._signed_payload(token)
        try:
            user_id = salesforce_id_18(str(payload["sub"]))
            org_id = salesforce_id_18(str(payload["org"]))
            issued_at = datetime.fromtimestamp(int(payload["iat"]), UTC)
            expires_at = datetime.fromtimestamp(int(payload["exp"]), UTC)
            token_id = str(payload["jti"])
        except (KeyError, TypeError, ValueError, OverflowError):
            raise TokenError(CloseCode.TOKEN_INVALID, "token claims missing or malformed (sub, org, iat, exp, jti)") from None
        if not user_id.startswith("005") or not org_id.startswith("00D"):
            raise TokenError(CloseCode.TOKEN_INVALID, "token is not for a Salesforce user (005...) of an org (00D...)")
        if not 8 <= len(token_id) <= 64:
            raise TokenError(CloseCode.TOKEN_INVALID, "token id (jti) must be 8 to 64 characters")
        if self._org_ids is not None and org_id not in self._org_ids:
            raise TokenError(CloseCode.TOKEN_INVALID, "token from an org this gateway does not serve")
        if expires_at - issued_at > self._max_lifetime:
            raise TokenError(CloseCode.TOKEN_INVALID, f"token lifetime over {int(self._max_lifetime.total_seconds())} s")
        now = self._clock()
        if issued_at > now + self._leeway:
            raise TokenError(CloseCode.TOKEN_INVALID, "token issued in the future (check the clocks)")
        if expires_at <= now - self._leeway:
            raise TokenError(CloseCode.TOKEN_EXPIRED, "token expired")
        return TokenClaims(user_id=user_id, org_id=org_id, token_id=token_id, issued_at=issued_at, expires_at=expires_at)

    def _signed_payload(self, token: str) -> dict[str, object]:
        for key in self._keys:
            try:
                return jwt.decode(
                    token,
                    key,
                    algorithms=[ALGORITHM],
                    audience=AUDIENCE,
                    # Time is checked above against our clock, after the signature.
                    options={"verify_exp": False, "verify_iat": False, "verify_nbf": False,
                             "require": ["sub", "org", "aud", "iat", "exp", "jti"]},
                )
            except jwt.InvalidSignatureError:
                continue
            except jwt.InvalidAudienceError:
                raise TokenError(CloseCode.TOKEN_INVALID, "token for another audience") from None
            except jwt.MissingRequiredClaimError as error:
                raise TokenError(CloseCode.TOKEN_INVALID, f"token without the {error.claim!r} claim") from None
            except jwt.InvalidTokenError:
                raise TokenError(CloseCode.TOKEN_INVALID, "malformed token") from None
        raise TokenError(CloseCode.TOKEN_INVALID, "token signature does not match the gateway secret")
