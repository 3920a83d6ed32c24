"""Console tokens: one user, one org, signed with the shared secret, short-lived, never leaked."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from presence_sync.connectors.console.protocol import CloseCode, salesforce_id_18
from presence_sync.connectors.console.tokens import TokenError, TokenVerifier, check_secret, mint_token

from tests.console.support import ORG, OTHER_SECRET, SECRET, USER_A, FakeClock

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def apex_style_token(claims: dict[str, object], secret: str) -> str:
    """What the Apex class builds: base64url(header).base64url(claims), HMAC-SHA256, base64url."""
    signing_input = _b64(b'{"alg":"HS256","typ":"JWT"}') + "." + _b64(json.dumps(claims).encode())
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + _b64(signature)


def verifier(**options: object) -> TokenVerifier:
    return TokenVerifier([SECRET], clock=FakeClock(NOW), **options)  # type: ignore[arg-type]


def test_a_minted_token_names_its_user_and_org() -> None:
    claims = verifier().verify(mint_token(SECRET, user_id=USER_A[:15], org_id=ORG, now=NOW))
    assert (claims.user_id, claims.org_id) == (USER_A, ORG)
    assert claims.expires_at - claims.issued_at == timedelta(minutes=15)
    assert len(claims.token_id) >= 16


def test_the_apex_construction_verifies() -> None:
    claims = {"sub": USER_A, "org": ORG, "aud": "presence-sync-gateway", "iat": int(NOW.timestamp()),
              "exp": int(NOW.timestamp()) + 900, "jti": "0123456789abcdef0123456789abcdef"}
    assert verifier().verify(apex_style_token(claims, SECRET.get_secret_value())).user_id == USER_A


@pytest.mark.parametrize(
    ("token", "code", "words"),
    [
        (lambda: mint_token(OTHER_SECRET, user_id=USER_A, org_id=ORG, now=NOW), CloseCode.TOKEN_INVALID, "signature"),
        (lambda: mint_token(SECRET, user_id=USER_A, org_id=ORG, now=NOW - timedelta(hours=1)),
         CloseCode.TOKEN_EXPIRED, "expired"),
        (lambda: mint_token(SECRET, user_id=USER_A, org_id=ORG, now=NOW + timedelta(minutes=5)),
         CloseCode.TOKEN_INVALID, "future"),
        (lambda: mint_token(SECRET, user_id=USER_A, org_id=ORG, now=NOW, lifetime=timedelta(days=1)),
         CloseCode.TOKEN_INVALID, "lifetime"),
        (lambda: mint_token(SECRET, user_id="0N5000000000001", org_id=ORG, now=NOW), CloseCode.TOKEN_INVALID, "005"),
        (lambda: "not.a.token", CloseCode.TOKEN_INVALID, "malformed"),
        (lambda: "x" * 5000, CloseCode.TOKEN_INVALID, "malformed"),
    ],
    ids=["forged", "expired", "future", "too-long-lived", "not-a-user", "garbage", "huge"],
)
def test_refused_tokens_say_why_with_their_close_code(token, code: CloseCode, words: str) -> None:
    with pytest.raises(TokenError) as refused:
        verifier().verify(token())
    assert refused.value.code == code
    assert words in refused.value.reason


def test_a_changed_claim_breaks_the_signature() -> None:
    header, payload, signature = mint_token(SECRET, user_id=USER_A, org_id=ORG, now=NOW).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = "005000000000002AAA"
    tampered = ".".join([header, _b64(json.dumps(claims).encode()), signature])
    with pytest.raises(TokenError, match="signature") as refused:
        verifier().verify(tampered)
    assert refused.value.code == CloseCode.TOKEN_INVALID


def test_alg_none_is_refused() -> None:
    claims = {"sub": USER_A, "org": ORG, "aud": "presence-sync-gateway", "iat": int(NOW.timestamp()),
              "exp": int(NOW.timestamp()) + 900, "jti": "0123456789abcdef"}
    unsigned = _b64(b'{"alg":"none","typ":"JWT"}') + "." + _b64(json.dumps(claims).encode()) + "."
    with pytest.raises(TokenError) as refused:
        verifier().verify(unsigned)
    assert refused.value.code == CloseCode.TOKEN_INVALID


def test_another_orgs_token_is_refused_when_the_gateway_names_its_org() -> None:
    token = mint_token(SECRET, user_id=USER_A, org_id="00D000000000009", now=NOW)
    with pytest.raises(TokenError, match="org"):
        verifier(org_ids={ORG}).verify(token)
    assert verifier().verify(token).org_id == salesforce_id_18("00D000000000009")


def test_the_previous_secret_still_verifies_during_a_rotation() -> None:
    rotating = TokenVerifier([OTHER_SECRET, SECRET], clock=FakeClock(NOW))
    assert rotating.verify(mint_token(SECRET, user_id=USER_A, org_id=ORG, now=NOW)).user_id == USER_A


def test_secrets_never_show() -> None:
    short = SecretStr("tiny-secret")
    with pytest.raises(ValueError) as refused:
        check_secret(short)
    assert "tiny-secret" not in str(refused.value)
    shown = repr(verifier()) + str(verifier())
    assert SECRET.get_secret_value() not in shown
    with pytest.raises(TokenError) as forged:
        verifier().verify(mint_token(OTHER_SECRET, user_id=USER_A, org_id=ORG, now=NOW))
    assert SECRET.get_secret_value() not in forged.value.reason


def test_salesforce_ids_gain_their_checksum() -> None:
    assert salesforce_id_18("001A0000006Vm9r") == "001A0000006Vm9rIAC"
    assert salesforce_id_18("001A0000006Vm9rIAC") == "001A0000006Vm9rIAC"
    with pytest.raises(ValueError):
        salesforce_id_18("005-bad")
