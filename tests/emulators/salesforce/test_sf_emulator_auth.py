"""The token endpoint's four grants and the sessions they open (apis.md S1, S2 401)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import httpx
import jwt
import pytest

from presence_sync.emulators.faults import FaultSettings
from presence_sync.emulators.salesforce import SalesforceEmulator, SalesforceEmulatorOptions, create_app

from sf_emulator_support import DATA, LOGIN_URL, MY_DOMAIN_URL, FrozenClock, password_form

TOKEN = "/services/oauth2/token"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


async def oauth_error(response: httpx.Response) -> tuple[str, str]:
    assert response.status_code == 400, response.text
    body = response.json()
    return body["error"], body["error_description"]


def client_credentials_form(creds: dict[str, str]) -> dict[str, str]:
    return {"grant_type": "client_credentials", "client_id": creds["client_id"],
            "client_secret": creds["client_secret"]}


def assertion(creds: dict[str, str], emulator: SalesforceEmulator, **claims: Any) -> str:
    payload = {"iss": creds["client_id"], "sub": creds["username"], "aud": "https://login.salesforce.com",
               "exp": int(emulator.clock.now().timestamp()) + 180}
    payload.update(claims)
    return jwt.encode(payload, creds["jwt_private_key_pem"], algorithm="RS256")


# -- password ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", [LOGIN_URL, MY_DOMAIN_URL])
async def test_password_grant_answers_salesforce_success_fields_on_either_host(
    http: httpx.AsyncClient, creds: dict[str, str], emulator: SalesforceEmulator, host: str
) -> None:
    response = await http.post(f"{host}{TOKEN}", data=password_form(creds))

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "instance_url", "id", "token_type", "issued_at", "signature"}
    integration = emulator.user_by_username("integration@example.com")
    assert integration is not None
    assert body["instance_url"] == MY_DOMAIN_URL
    assert body["id"] == f"{MY_DOMAIN_URL}/id/{creds['org_id']}/{integration.id}"
    assert body["token_type"] == "Bearer"
    assert body["issued_at"].isdigit() and len(body["issued_at"]) == 13
    expected = hmac.new(creds["client_secret"].encode(), (body["id"] + body["issued_at"]).encode(), hashlib.sha256)
    assert body["signature"] == base64.b64encode(expected.digest()).decode()


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"client_id": "3MVG9unknown"}, ("invalid_client_id", "client identifier invalid")),
        ({"client_secret": "nope"}, ("invalid_client", "invalid client credentials")),
        ({"password": "wrong"}, ("invalid_grant", "authentication failure")),
        ({"username": "nobody@example.com"}, ("invalid_grant", "authentication failure")),
        ({"username": "agent1@example.com"}, ("invalid_grant", "authentication failure")),
    ],
)
async def test_password_grant_errors(
    http: httpx.AsyncClient, creds: dict[str, str], overrides: dict[str, str], expected: tuple[str, str]
) -> None:
    assert await oauth_error(await http.post(TOKEN, data=password_form(creds, **overrides))) == expected


async def test_password_without_the_security_token_fails(http: httpx.AsyncClient, creds: dict[str, str]) -> None:
    response = await http.post(TOKEN, data=password_form(creds, password=creds["password"]))
    assert await oauth_error(response) == ("invalid_grant", "authentication failure")


async def test_blocked_flow_and_mfa_user_look_exactly_like_a_wrong_password(
    http: httpx.AsyncClient, creds: dict[str, str]
) -> None:
    wrong = await oauth_error(await http.post(TOKEN, data=password_form(creds, password="wrong")))

    await http.put("/__emulator/org", json={"block_username_password_flow": True})
    blocked = await oauth_error(await http.post(TOKEN, data=password_form(creds)))
    await http.put("/__emulator/org", json={"block_username_password_flow": False, "mfa_users": [creds["username"]]})
    mfa = await oauth_error(await http.post(TOKEN, data=password_form(creds)))
    await http.put("/__emulator/org", json={"mfa_users": []})
    works = await http.post(TOKEN, data=password_form(creds))

    assert wrong == blocked == mfa == ("invalid_grant", "authentication failure")
    assert works.status_code == 200


async def test_mfa_users_option_applies_from_the_start() -> None:
    app = create_app(SalesforceEmulatorOptions(agents=1, mfa_users=["INTEGRATION@example.com"]))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=LOGIN_URL) as http:
        creds = (await http.get("/__emulator/credentials")).json()
        assert await oauth_error(await http.post(TOKEN, data=password_form(creds))) == (
            "invalid_grant", "authentication failure")


async def test_unknown_or_missing_grant_type_is_not_supported(http: httpx.AsyncClient, creds: dict[str, str]) -> None:
    for form in ({"grant_type": "authorization_code"}, {}):
        response = await http.post(TOKEN, data=form)
        assert await oauth_error(response) == ("unsupported_grant_type", "grant type not supported")
    as_json = await http.post(TOKEN, json=password_form(creds))  # Salesforce reads only form bodies
    assert await oauth_error(as_json) == ("unsupported_grant_type", "grant type not supported")


async def test_the_other_environments_login_host_does_not_serve_the_org(creds: dict[str, str]) -> None:
    app = create_app(SalesforceEmulatorOptions(agents=1, environment="sandbox"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
        sandbox_creds = (await http.get("https://test.salesforce.com/__emulator/credentials")).json()
        wrong = await http.post("https://login.salesforce.com" + TOKEN, data=password_form(sandbox_creds))
        right = await http.post("https://test.salesforce.com" + TOKEN, data=password_form(sandbox_creds))
    assert await oauth_error(wrong) == ("unsupported_grant_type", "grant type not supported")
    assert right.status_code == 200
    assert right.json()["instance_url"] == "https://presence-demo--dev.sandbox.my.salesforce.com"
    assert sandbox_creds["my_domain_host"] == "presence-demo--dev.sandbox.my.salesforce.com"


# -- client credentials ------------------------------------------------------------------------------


async def test_client_credentials_runs_as_the_run_as_user_on_the_my_domain_only(
    http: httpx.AsyncClient, creds: dict[str, str], emulator: SalesforceEmulator
) -> None:
    form = client_credentials_form(creds)

    on_login_host = await http.post(f"{LOGIN_URL}{TOKEN}", data=form)
    on_my_domain = await http.post(f"{MY_DOMAIN_URL}{TOKEN}", data=form)
    public_my_domain = await http.post(f"https://acme.my.salesforce.com{TOKEN}", data=form)

    assert await oauth_error(on_login_host) == ("invalid_grant", "request not supported on this domain")
    assert on_my_domain.status_code == 200 and public_my_domain.status_code == 200
    body = on_my_domain.json()
    assert body["token_format"] == "opaque"
    run_as = emulator.user_by_username(creds["run_as_username"])
    assert run_as is not None and body["id"].endswith(f"/{run_as.id}")
    assert public_my_domain.json()["instance_url"] == "https://acme.my.salesforce.com"


async def test_client_credentials_with_a_wrong_secret(http: httpx.AsyncClient, creds: dict[str, str]) -> None:
    form = {"grant_type": "client_credentials", "client_id": creds["client_id"], "client_secret": "x"}
    assert await oauth_error(await http.post(TOKEN, data=form)) == ("invalid_client", "invalid client credentials")


async def test_a_configured_my_domain_host_is_the_only_local_my_domain() -> None:
    app = create_app(SalesforceEmulatorOptions(agents=1, my_domain_host="acme.local:9"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
        creds = (await http.get("http://localhost:9/__emulator/credentials")).json()
        form = client_credentials_form(creds)
        on_localhost = await http.post(f"http://localhost:9{TOKEN}", data=form)
        on_configured = await http.post(f"http://acme.local:9{TOKEN}", data=form)
    assert creds["my_domain_host"] == "acme.local:9"
    assert await oauth_error(on_localhost) == ("invalid_grant", "request not supported on this domain")
    assert on_configured.json()["instance_url"] == "http://acme.local:9"


# -- JWT bearer --------------------------------------------------------------------------------------


@pytest.mark.parametrize("audience", ["https://login.salesforce.com", LOGIN_URL])
async def test_jwt_bearer_with_the_seeded_key(
    http: httpx.AsyncClient, creds: dict[str, str], emulator: SalesforceEmulator, audience: str
) -> None:
    form = {"grant_type": JWT_GRANT, "assertion": assertion(creds, emulator, aud=audience)}
    response = await http.post(TOKEN, data=form)
    assert response.status_code == 200, response.text
    assert response.json()["instance_url"] == MY_DOMAIN_URL


async def test_jwt_bearer_errors(http: httpx.AsyncClient, creds: dict[str, str], emulator: SalesforceEmulator) -> None:
    # A signature over other claims: the payload of one valid assertion with the signature of another.
    header, _, signature = assertion(creds, emulator).split(".")
    _, payload, _ = assertion(creds, emulator, sub="supervisor1@example.com").split(".")
    tampered = f"{header}.{payload}.{signature}"
    now = int(emulator.clock.now().timestamp())
    claims = {"iss": creds["client_id"], "sub": creds["username"], "aud": "https://login.salesforce.com",
              "exp": now + 60}
    cases = {
        "not a jwt": ("invalid_grant", "invalid assertion"),
        tampered: ("invalid_grant", "invalid assertion"),
        jwt.encode(claims, "a-shared-secret-long-enough-for-hs256!", algorithm="HS256"): (
            "invalid_grant", "invalid assertion"),
        assertion(creds, emulator, iss="3MVG9other"): ("invalid_client_id", "client identifier invalid"),
        assertion(creds, emulator, aud=MY_DOMAIN_URL): ("invalid_grant", "audience is invalid"),
        assertion(creds, emulator, aud="https://test.salesforce.com"): ("invalid_grant", "audience is invalid"),
        assertion(creds, emulator, exp=now - 1): ("invalid_grant", "expired authorization code"),
        assertion(creds, emulator, sub="nobody@example.com"): ("invalid_grant", "user hasn't approved this consumer"),
        assertion(creds, emulator, sub="agent1@example.com"): ("invalid_grant", "user hasn't approved this consumer"),
    }
    for given, expected in cases.items():
        response = await http.post(TOKEN, data={"grant_type": JWT_GRANT, "assertion": given})
        assert await oauth_error(response) == expected, given


async def test_refresh_token_grant_never_succeeds_because_no_flow_issues_one(
    http: httpx.AsyncClient, creds: dict[str, str], token: dict[str, Any]
) -> None:
    form = {"grant_type": "refresh_token", "refresh_token": token["access_token"], "client_id": creds["client_id"],
            "client_secret": creds["client_secret"]}
    assert await oauth_error(await http.post(TOKEN, data=form)) == ("invalid_grant", "expired access/refresh token")


# -- sessions ----------------------------------------------------------------------------------------


async def unauthorized(response: httpx.Response) -> None:
    assert response.status_code == 401
    assert response.json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


async def test_unknown_or_missing_token_is_401_invalid_session(http: httpx.AsyncClient) -> None:
    await unauthorized(await http.get(f"{DATA}/limits", headers={"Authorization": "Bearer 00Dnope!AQxyz"}))
    await unauthorized(await http.get(f"{DATA}/limits"))


async def test_a_session_expires_after_the_timeout_without_use_and_lives_while_used(
    http: httpx.AsyncClient, emulator: SalesforceEmulator, token: dict[str, Any]
) -> None:
    auth = {"Authorization": f"Bearer {token['access_token']}"}
    timeout = emulator.options.session_timeout_s
    emulator.clock.advance(timeout * 0.75)
    assert (await http.get(f"{DATA}/limits", headers=auth)).status_code == 200
    emulator.clock.advance(timeout * 0.75)  # 1.5 timeouts since issue, 0.75 since last use
    oauth_scheme = {"Authorization": f"OAuth {token['access_token']}"}  # Salesforce's older scheme name works too
    assert (await http.get(f"{DATA}/limits", headers=oauth_scheme)).status_code == 200
    emulator.clock.advance(timeout)
    await unauthorized(await http.get(f"{DATA}/limits", headers=auth))
    await unauthorized(await http.get(f"{DATA}/limits", headers=auth))  # and it stays gone


async def test_token_ttl_fault_caps_a_tokens_age(
    frozen_clock: FrozenClock, http: httpx.AsyncClient, token: dict[str, Any]
) -> None:  # the clock freezes before the token is issued
    auth = {"Authorization": f"Bearer {token['access_token']}"}
    await http.put("/__emulator/faults", json=FaultSettings(token_ttl_s=60).model_dump())
    frozen_clock.advance(59)
    assert (await http.get(f"{DATA}/limits", headers=auth)).status_code == 200
    frozen_clock.advance(1)
    await unauthorized(await http.get(f"{DATA}/limits", headers=auth))
