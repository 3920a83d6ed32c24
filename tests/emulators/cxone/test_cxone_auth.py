"""apis.md C1: discovery, OpenID configuration, the token endpoint and bearer checks on the API."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import jwt
import pytest

from presence_sync.emulators.cxone import CxoneEmulator, CxoneEmulatorOptions, create_app

API = "/incontactapi/services/v33.0"


def _password_form(creds: dict[str, str], **overrides: str) -> dict[str, str]:
    return {"grant_type": "password", "username": creds["access_key_id"], "password": creds["access_key_secret"]} | overrides


async def test_discovery_names_this_server_for_auth_and_api(http: httpx.AsyncClient, creds: dict[str, str]) -> None:
    response = await http.get("/.well-known/cxone-configuration", params={"tenantId": creds["tenant_id"]})
    assert response.status_code == 200
    body = response.json()
    assert body["auth_endpoint"] == body["api_endpoint"] == "http://cxone.test"
    assert body["tenantId"] == creds["tenant_id"]
    assert body["area"] == "na1" and body["domain"] == "niceincontact.com" and body["private"] is False
    assert {"ui_endpoint", "cluster"} <= body.keys()


async def test_discovery_uses_public_url_and_area_when_configured() -> None:
    app = create_app(CxoneEmulatorOptions(agents=0, area="na2", public_url="https://cxone.example.org/"))
    tenant_id = app.state.emulator.options.tenant_id
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://inside") as http:
        body = (await http.get("/.well-known/cxone-configuration", params={"tenantId": tenant_id})).json()
        openid = (await http.get("/.well-known/openid-configuration")).json()
    assert body["api_endpoint"] == body["auth_endpoint"] == "https://cxone.example.org"
    assert body["domain"] == "nicecxone-gov.com"
    assert openid["token_endpoint"] == "https://cxone.example.org/auth/token"


async def test_discovery_of_an_unknown_tenant_is_404_and_a_missing_id_400(http: httpx.AsyncClient) -> None:
    unknown = await http.get("/.well-known/cxone-configuration", params={"tenantId": "not-a-tenant"})
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "not_found"
    assert "not-a-tenant" in unknown.json()["error_description"]
    missing = await http.get("/.well-known/cxone-configuration")
    assert missing.status_code == 400
    assert "tenantId" in missing.json()["error_description"]


async def test_openid_configuration_points_at_the_token_endpoint(http: httpx.AsyncClient) -> None:
    body = (await http.get("/.well-known/openid-configuration")).json()
    assert body["issuer"] == "http://cxone.test"
    assert body["token_endpoint"] == "http://cxone.test/auth/token"
    assert "client_credentials" not in body["grant_types_supported"]


async def test_password_grant_answers_tokens_and_an_id_token_carrying_the_tenant(
    http: httpx.AsyncClient, tokens: dict[str, Any], creds: dict[str, str]
) -> None:
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 3600
    assert tokens["access_token"] and tokens["refresh_token"]
    jwks = jwt.PyJWKSet.from_dict((await http.get("/auth/jwks")).json())
    header = jwt.get_unverified_header(tokens["id_token"])
    key = next(k for k in jwks.keys if k.key_id == header["kid"])
    claims = jwt.decode(tokens["id_token"], key.key, algorithms=["RS256"], audience=creds["client_id"])
    assert claims["tenantId"] == creds["tenant_id"]
    assert claims["iss"] == "http://cxone.test"
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["sub"]


@pytest.mark.parametrize(
    ("authorization", "why"),
    [
        (None, "no Basic header"),
        ("Basic " + base64.b64encode(b"cxone-emulator-app:wrong").decode(), "wrong secret"),
        ("Basic " + base64.b64encode(b"other-app:cxone-emulator-app-secret").decode(), "unknown client"),
        ("Basic not-base64!", "garbage"),
    ],
)
async def test_bad_client_credentials_are_401_invalid_client(
    http: httpx.AsyncClient, creds: dict[str, str], authorization: str | None, why: str
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = await http.post("/auth/token", data=_password_form(creds), headers=headers)
    assert response.status_code == 401, why
    assert response.json()["error"] == "invalid_client"
    assert creds["client_secret"] not in response.text


async def test_an_unapproved_application_is_401_invalid_client(
    http: httpx.AsyncClient, creds: dict[str, str], basic: str
) -> None:
    assert (await http.put("/__emulator/credentials", json={"client_approved": False})).status_code == 200
    response = await http.post("/auth/token", data=_password_form(creds), headers={"Authorization": basic})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    ("policy", "form"),
    [
        ({}, {"password": "wrong-secret"}),
        ({}, {"username": "NOSUCHKEY"}),
        ({"access_key_active": False}, {}),
        ({"access_key_user_active": False}, {}),
    ],
)
async def test_a_wrong_or_revoked_key_or_inactive_user_is_400_invalid_grant(
    http: httpx.AsyncClient, creds: dict[str, str], basic: str, policy: dict[str, bool], form: dict[str, str]
) -> None:
    await http.put("/__emulator/credentials", json=policy)
    response = await http.post("/auth/token", data=_password_form(creds, **form), headers={"Authorization": basic})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert creds["access_key_secret"] not in response.text


async def test_other_grant_types_and_malformed_requests_are_rejected(
    http: httpx.AsyncClient, creds: dict[str, str], basic: str
) -> None:
    headers = {"Authorization": basic}
    cc = await http.post("/auth/token", data={"grant_type": "client_credentials"}, headers=headers)
    assert (cc.status_code, cc.json()["error"]) == (400, "unsupported_grant_type")
    no_grant = await http.post("/auth/token", data={"username": "x"}, headers=headers)
    assert (no_grant.status_code, no_grant.json()["error"]) == (400, "invalid_request")
    no_password = await http.post("/auth/token", data={"grant_type": "password", "username": "x"}, headers=headers)
    assert "password" in no_password.json()["error_description"]
    as_json = await http.post("/auth/token", json=_password_form(creds), headers=headers)
    assert as_json.status_code == 400
    assert "x-www-form-urlencoded" in as_json.json()["error_description"]


async def test_refresh_grant_gives_working_tokens_and_rejects_unknown_ones(
    http: httpx.AsyncClient, tokens: dict[str, Any], basic: str
) -> None:
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    refreshed = await http.post("/auth/token", data=form, headers={"Authorization": basic})
    assert refreshed.status_code == 200
    new = refreshed.json()
    assert new["access_token"] != tokens["access_token"] and new["id_token"]
    agents = await http.get(f"{API}/agents", headers={"Authorization": f"Bearer {new['access_token']}"})
    assert agents.status_code == 200
    bogus = await http.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": "nope"}, headers={"Authorization": basic}
    )
    assert (bogus.status_code, bogus.json()["error"]) == (400, "invalid_grant")


async def test_refresh_fails_once_the_key_is_revoked(http: httpx.AsyncClient, tokens: dict[str, Any], basic: str) -> None:
    await http.put("/__emulator/credentials", json={"access_key_active": False})
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    response = await http.post("/auth/token", data=form, headers={"Authorization": basic})
    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")


async def test_the_api_answers_401_without_or_with_a_bad_token(http: httpx.AsyncClient) -> None:
    missing = await http.get(f"{API}/agents")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    unknown = await http.get(f"{API}/agents", headers={"Authorization": "Bearer made-up"})
    assert unknown.status_code == 401
    assert unknown.json()["error"] == "invalid_token"


async def test_a_token_expires_after_its_lifetime(
    api: httpx.AsyncClient, emulator: CxoneEmulator, tokens: dict[str, Any]
) -> None:
    emulator.clock.advance(tokens["expires_in"] - 1)
    assert (await api.get("/teams")).status_code == 200
    emulator.clock.advance(1)
    expired = await api.get("/teams")
    assert expired.status_code == 401
    assert "expired" in expired.json()["error_description"]


async def test_faults_token_ttl_overrides_the_lifetime(
    http: httpx.AsyncClient, emulator: CxoneEmulator, creds: dict[str, str], basic: str
) -> None:
    await http.put("/__emulator/faults", json={"token_ttl_s": 5})
    body = (await http.post("/auth/token", data=_password_form(creds), headers={"Authorization": basic})).json()
    assert body["expires_in"] == 5
    emulator.clock.advance(5)
    response = await http.get(f"{API}/teams", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert response.status_code == 401


async def test_any_api_version_is_served_and_a_malformed_one_is_404(
    http: httpx.AsyncClient, tokens: dict[str, Any]
) -> None:
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert (await http.get("/incontactapi/services/v2.0/teams", headers=headers)).status_code == 200
    assert (await http.get("/incontactapi/services/v34.0/teams", headers=headers)).status_code == 200
    wrong = await http.get("/incontactapi/services/latest/teams", headers=headers)
    assert wrong.status_code == 404
    assert "v33.0" in wrong.json()["error_description"]


def test_options_keep_secrets_out_of_their_repr() -> None:
    options = CxoneEmulatorOptions()
    assert options.client_secret.get_secret_value() not in repr(options)
    assert options.access_key_secret.get_secret_value() not in repr(options)


def test_options_reject_a_public_url_without_scheme() -> None:
    with pytest.raises(ValueError, match="public_url"):
        CxoneEmulatorOptions(public_url="cxone.example.org")
