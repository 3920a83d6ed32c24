"""Acceptance check: `presence-sync emulate` serves both systems on loopback, and an independent client
written only from apis.md (plain httpx and pyjwt; nothing imported from the project) can authenticate
with each grant, query, create, page, and get each documented error.

Every test starts from freshly reset emulators (see conftest.py); the section of apis.md a test
proves is named in its docstring.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import jwt
import pytest

if TYPE_CHECKING:
    from tests.contract.conftest import Emulate

API_VERSION = "v62.0"
CXONE_API_VERSION = "v33.0"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_PATH = "/services/oauth2/token"
LIMIT_INFO = re.compile(r"api-usage=(\d+)/(\d+)")
AGENT_PROFILE = "Contact Center Agent"


# ================================================================================ Salesforce helpers


def sf_credentials(http: httpx.Client, emulate: Emulate) -> dict[str, Any]:
    answer = http.get(f"{emulate.sf_login_url}/__emulator/credentials")
    assert answer.status_code == 200, answer.text
    return answer.json()


def password_form(creds: dict[str, Any], **changes: str) -> dict[str, str]:
    form = {
        "grant_type": "password",
        "client_id": creds["client_id"],
        "client_secret": creds["client_secret"],
        "username": creds["username"],
        "password": creds["password"] + creds["security_token"],
    }
    return {**form, **changes}


def client_credentials_form(creds: dict[str, Any]) -> dict[str, str]:
    return {"grant_type": "client_credentials", "client_id": creds["client_id"],
            "client_secret": creds["client_secret"]}


def token_request(http: httpx.Client, host_url: str, form: dict[str, str],
                  headers: dict[str, str] | None = None) -> httpx.Response:
    return http.post(f"{host_url}{TOKEN_PATH}", data=form, headers=headers or {})


def assert_token_body(body: dict[str, Any], emulate: Emulate) -> None:
    """apis.md S1 success body: no expires_in, issued_at epoch ms as a string, My Domain instance_url."""
    for key in ("access_token", "instance_url", "id", "token_type", "issued_at", "signature"):
        assert key in body, key
    assert body["token_type"] == "Bearer"
    assert isinstance(body["issued_at"], str) and body["issued_at"].isdigit()
    assert abs(int(body["issued_at"]) / 1000 - time.time()) < 300
    assert body["instance_url"] == emulate.sf_my_domain_url
    assert "expires_in" not in body
    assert "refresh_token" not in body  # none of password, client_credentials, jwt-bearer issues one


def assert_oauth_error(answer: httpx.Response, error: str, description: str) -> None:
    assert answer.status_code == 400, answer.text
    assert answer.json() == {"error": error, "error_description": description}


def assert_api_error(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """apis.md S2: data API errors are a JSON array of {message, errorCode, fields?}."""
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert isinstance(body, list) and body, body
    assert body[0]["errorCode"] == code, body
    assert isinstance(body[0]["message"], str) and body[0]["message"]
    return body[0]


def api_usage(answer: httpx.Response) -> tuple[int, int]:
    match = LIMIT_INFO.fullmatch(answer.headers.get("Sforce-Limit-Info", ""))
    assert match, f"no Sforce-Limit-Info on {answer.request.method} {answer.request.url}: {answer.headers}"
    return int(match.group(1)), int(match.group(2))


class SalesforceApi:
    """The REST data API under `{instance_url}/services/data/v62.0`, with a Bearer token."""

    def __init__(self, http: httpx.Client, token: dict[str, Any]) -> None:
        self.http = http
        self.instance_url = token["instance_url"]
        self.base = f"{self.instance_url}/services/data/{API_VERSION}"
        self.headers = {"Authorization": f"Bearer {token['access_token']}"}

    def get(self, path: str, **params: str) -> httpx.Response:
        return self.http.get(f"{self.base}{path}", params=params, headers=self.headers)

    def post(self, path: str, body: Any) -> httpx.Response:
        return self.http.post(f"{self.base}{path}", json=body, headers=self.headers)

    def patch(self, path: str, body: Any) -> httpx.Response:
        return self.http.patch(f"{self.base}{path}", json=body, headers=self.headers)

    def delete(self, path: str) -> httpx.Response:
        return self.http.delete(f"{self.base}{path}", headers=self.headers)

    def query(self, soql: str) -> httpx.Response:
        return self.get("/query", q=soql)

    def records(self, soql: str) -> list[dict[str, Any]]:
        answer = self.query(soql)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["done"] is True, "use pages() for queries that need more than one page"
        return body["records"]

    def pages(self, soql: str) -> Iterator[dict[str, Any]]:
        answer = self.query(soql)
        while True:
            assert answer.status_code == 200, answer.text
            page = answer.json()
            yield page
            if page["done"]:
                return
            next_url = page["nextRecordsUrl"]
            assert next_url.startswith("/services/data/"), next_url  # relative to the instance
            answer = self.http.get(f"{self.instance_url}{next_url}", headers=self.headers)

    def create(self, sobject: str, body: dict[str, Any]) -> str:
        answer = self.post(f"/sobjects/{sobject}/", body)
        assert answer.status_code == 201, answer.text
        return answer.json()["id"]


def sf_login(http: httpx.Client, emulate: Emulate) -> SalesforceApi:
    answer = token_request(http, emulate.sf_login_url, password_form(sf_credentials(http, emulate)))
    assert answer.status_code == 200, answer.text
    return SalesforceApi(http, answer.json())


def sf_org(http: httpx.Client, emulate: Emulate, **settings: Any) -> dict[str, Any]:
    answer = http.put(f"{emulate.sf_login_url}/__emulator/org", json=settings)
    assert answer.status_code == 200, answer.text
    return answer.json()


def set_faults(http: httpx.Client, url: str, **faults: Any) -> None:
    answer = http.put(f"{url}/__emulator/faults", json=faults)
    assert answer.status_code == 200, answer.text


def user_id(api: SalesforceApi, username: str) -> str:
    (user,) = api.records(f"SELECT Id FROM User WHERE Username = '{username}'")
    return user["Id"]


def status_with_access(api: SalesforceApi, developer_name: str, label: str, channel: str | None = None) -> str:
    """A presence status the agent profile may use (apis.md S3): the status, its channel, its access row."""
    status_id = api.create("ServicePresenceStatus", {"DeveloperName": developer_name, "MasterLabel": label})
    if channel is not None:
        (found,) = api.records(f"SELECT Id FROM ServiceChannel WHERE DeveloperName = '{channel}'")
        api.create("ServiceChannelStatus", {"ServicePresenceStatusId": status_id, "ServiceChannelId": found["Id"]})
    (permission_set,) = api.records(
        f"SELECT Id FROM PermissionSet WHERE Profile.Name = '{AGENT_PROFILE}' AND IsOwnedByProfile = true"
    )
    api.create("SetupEntityAccess", {"ParentId": permission_set["Id"], "SetupEntityId": status_id})
    return status_id


def sf_clock(http: httpx.Client, emulate: Emulate) -> str:
    return http.get(f"{emulate.sf_login_url}/__emulator/stats").json()["clock"]


def wait_for(predicate: Any, timeout_s: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        result = predicate()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.05)


# ================================================================================ Salesforce S1: OAuth


def test_sf_credentials_control_gives_the_seeded_credentials(http: httpx.Client, emulate: Emulate) -> None:
    """Controls: GET /__emulator/credentials; loopback My Domain `localhost:{port}`, login `127.0.0.1:{port}`."""
    creds = sf_credentials(http, emulate)
    for key in ("client_id", "client_secret", "username", "password", "security_token", "my_domain_host"):
        assert isinstance(creds[key], str) and creds[key], key
    assert creds["my_domain_host"] == f"localhost:{emulate.salesforce_port}"
    assert "BEGIN PRIVATE KEY" in creds["jwt_private_key_pem"]
    assert "BEGIN PUBLIC KEY" in creds["jwt_public_key_pem"]


def test_sf_password_grant_gives_a_my_domain_session(http: httpx.Client, emulate: Emulate) -> None:
    """S1 password grant on the login host; the token opens the data API on the My Domain."""
    answer = token_request(http, emulate.sf_login_url, password_form(sf_credentials(http, emulate)))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert_token_body(body, emulate)
    assert "token_format" not in body
    assert body["id"].startswith(f"{emulate.sf_my_domain_url}/id/")
    # Salesforce documents the signature as Base64(HMAC-SHA256(client_secret, id + issued_at)).
    secret = sf_credentials(http, emulate)["client_secret"].encode()
    digest = hmac.new(secret, (body["id"] + body["issued_at"]).encode(), hashlib.sha256).digest()
    assert body["signature"] == base64.b64encode(digest).decode()
    api = SalesforceApi(http, body)
    assert api.query("SELECT Id FROM Profile").status_code == 200


def test_sf_password_grant_also_works_on_the_my_domain(http: httpx.Client, emulate: Emulate) -> None:
    answer = token_request(http, emulate.sf_my_domain_url, password_form(sf_credentials(http, emulate)))
    assert answer.status_code == 200, answer.text
    assert_token_body(answer.json(), emulate)


def test_sf_client_credentials_works_only_on_the_my_domain(http: httpx.Client, emulate: Emulate) -> None:
    """S1: client_credentials on My Domain adds token_format opaque; on the login host 400 invalid_grant."""
    creds = sf_credentials(http, emulate)
    form = client_credentials_form(creds)
    my_domain = f"http://{creds['my_domain_host']}"

    answer = token_request(http, my_domain, form)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert_token_body(body, emulate)
    assert body["token_format"] == "opaque"
    api = SalesforceApi(http, body)
    (me,) = api.records(f"SELECT Username FROM User WHERE Id = '{body['id'].rsplit('/', 1)[1]}'")
    assert me["Username"] == creds["username"]  # runs as the app's Run-As user

    assert_oauth_error(token_request(http, emulate.sf_login_url, form),
                       "invalid_grant", "request not supported on this domain")


@pytest.mark.parametrize("my_domain", ["acme.my.salesforce.com", "acme--dev.sandbox.my.salesforce.com"])
def test_sf_a_my_salesforce_com_host_is_the_my_domain(http: httpx.Client, emulate: Emulate, my_domain: str) -> None:
    """Controls: a Host ending in `.my.salesforce.com` is the org's My Domain (client_credentials works)."""
    creds = sf_credentials(http, emulate)
    form = client_credentials_form(creds)
    answer = token_request(http, emulate.sf_login_url, form, headers={"Host": my_domain})
    assert answer.status_code == 200, answer.text
    assert answer.json()["token_format"] == "opaque"
    assert answer.json()["instance_url"].endswith(f"://{my_domain}")


@pytest.mark.parametrize("audience", ["https://login.salesforce.com", "login host"])
def test_sf_jwt_bearer_grant_with_the_seeded_key_pair(http: httpx.Client, emulate: Emulate, audience: str) -> None:
    """S1 jwt-bearer: RS256 assertion, iss=consumer key, sub=username, aud=login host, short exp."""
    creds = sf_credentials(http, emulate)
    aud = emulate.sf_login_url if audience == "login host" else audience
    assertion = jwt.encode(
        {"iss": creds["client_id"], "sub": creds["username"], "aud": aud, "exp": int(time.time()) + 180},
        creds["jwt_private_key_pem"], algorithm="RS256",
    )
    answer = token_request(http, emulate.sf_login_url, {"grant_type": JWT_BEARER_GRANT, "assertion": assertion})
    assert answer.status_code == 200, answer.text
    assert_token_body(answer.json(), emulate)
    assert SalesforceApi(http, answer.json()).query("SELECT Id FROM User LIMIT 1").status_code == 200


def test_sf_jwt_bearer_needs_the_app_pre_approved_for_the_user(http: httpx.Client, emulate: Emulate) -> None:
    """S1 jwt-bearer needs the app pre-approved: an agent (a profile the app is not approved for) cannot use it."""
    creds = sf_credentials(http, emulate)
    claims = {"iss": creds["client_id"], "sub": "agent1@example.com", "aud": "https://login.salesforce.com",
              "exp": int(time.time()) + 180}
    assertion = jwt.encode(claims, creds["jwt_private_key_pem"], algorithm="RS256")
    answer = token_request(http, emulate.sf_login_url, {"grant_type": JWT_BEARER_GRANT, "assertion": assertion})
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


def test_sf_refresh_token_grant_has_no_token_to_refresh(http: httpx.Client, emulate: Emulate) -> None:
    """S1: refresh_token only where one was issued; none of the supported grants issues one, so any
    refresh token is refused as Salesforce refuses an unknown one (400 invalid_grant)."""
    creds = sf_credentials(http, emulate)
    issued = token_request(http, emulate.sf_login_url, password_form(creds)).json()
    assert "refresh_token" not in issued
    for candidate in ("5Aep861made.up.refresh.token", issued["access_token"]):
        answer = token_request(http, emulate.sf_login_url, {
            "grant_type": "refresh_token", "refresh_token": candidate,
            "client_id": creds["client_id"], "client_secret": creds["client_secret"],
        })
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"] == "invalid_grant"
        assert "access_token" not in answer.json()


@pytest.mark.parametrize("cause", ["bad password", "unknown username", "flow blocked in the org", "MFA user"])
def test_sf_password_grant_authentication_failure(http: httpx.Client, emulate: Emulate, cause: str) -> None:
    """S1: a bad password, the org blocking the flow and an MFA user all answer the same invalid_grant."""
    creds = sf_credentials(http, emulate)
    form = password_form(creds)
    if cause == "bad password":
        form = password_form(creds, password="wrong" + creds["security_token"])
    elif cause == "unknown username":
        form = password_form(creds, username="nobody@example.com")
    elif cause == "flow blocked in the org":
        assert sf_org(http, emulate, block_username_password_flow=True)["block_username_password_flow"] is True
    else:
        sf_org(http, emulate, mfa_users=[creds["username"]])
    assert_oauth_error(token_request(http, emulate.sf_login_url, form), "invalid_grant", "authentication failure")


def test_sf_password_without_the_security_token_fails(http: httpx.Client, emulate: Emulate) -> None:
    creds = sf_credentials(http, emulate)
    answer = token_request(http, emulate.sf_login_url, password_form(creds, password=creds["password"]))
    assert_oauth_error(answer, "invalid_grant", "authentication failure")


def test_sf_org_block_can_be_lifted_again(http: httpx.Client, emulate: Emulate) -> None:
    creds = sf_credentials(http, emulate)
    sf_org(http, emulate, block_username_password_flow=True)
    assert token_request(http, emulate.sf_login_url, password_form(creds)).status_code == 400
    sf_org(http, emulate, block_username_password_flow=False)
    assert token_request(http, emulate.sf_login_url, password_form(creds)).status_code == 200


@pytest.mark.parametrize("grant", ["password", "client_credentials", "jwt-bearer"])
def test_sf_unknown_client_id(http: httpx.Client, emulate: Emulate, grant: str) -> None:
    """S1: unknown client id -> invalid_client_id / client identifier invalid."""
    creds = sf_credentials(http, emulate)
    unknown = "3MVG9NotARealConsumerKey"
    if grant == "password":
        form = password_form(creds, client_id=unknown)
    elif grant == "client_credentials":
        form = {"grant_type": grant, "client_id": unknown, "client_secret": creds["client_secret"]}
    else:
        assertion = jwt.encode({"iss": unknown, "sub": creds["username"], "aud": "https://login.salesforce.com",
                                "exp": int(time.time()) + 180}, creds["jwt_private_key_pem"], algorithm="RS256")
        form = {"grant_type": JWT_BEARER_GRANT, "assertion": assertion}
    answer = token_request(http, emulate.sf_my_domain_url, form)
    assert_oauth_error(answer, "invalid_client_id", "client identifier invalid")


@pytest.mark.parametrize("grant", ["password", "client_credentials"])
def test_sf_wrong_client_secret(http: httpx.Client, emulate: Emulate, grant: str) -> None:
    """S1: wrong secret -> invalid_client / invalid client credentials."""
    creds = sf_credentials(http, emulate)
    if grant == "password":
        form = password_form(creds, client_secret="0" * 64)
    else:
        form = {"grant_type": grant, "client_id": creds["client_id"], "client_secret": "0" * 64}
    answer = token_request(http, emulate.sf_my_domain_url, form)
    assert_oauth_error(answer, "invalid_client", "invalid client credentials")


def test_sf_unsupported_grant_type(http: httpx.Client, emulate: Emulate) -> None:
    """S1: a grant type that is not enabled, or the other environment's login host for this (production)
    org -> unsupported_grant_type / grant type not supported."""
    creds = sf_credentials(http, emulate)
    answer = token_request(http, emulate.sf_login_url, password_form(creds, grant_type="urn:example:not-a-grant"))
    assert_oauth_error(answer, "unsupported_grant_type", "grant type not supported")

    sandbox_login = {"Host": "test.salesforce.com"}
    answer = token_request(http, emulate.sf_login_url, password_form(creds), headers=sandbox_login)
    assert_oauth_error(answer, "unsupported_grant_type", "grant type not supported")


# ================================================================================ Salesforce S2: data API


@pytest.mark.parametrize("authorization", [None, "Bearer 00Dnot!a.real.session", "Basic Zm9vOmJhcg=="])
def test_sf_data_api_without_a_valid_session(http: httpx.Client, emulate: Emulate, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    answer = http.get(f"{emulate.sf_my_domain_url}/services/data/{API_VERSION}/query",
                      params={"q": "SELECT Id FROM User"}, headers=headers)
    error = assert_api_error(answer, 401, "INVALID_SESSION_ID")
    assert error["message"] == "Session expired or invalid"
    # The session is checked before the resource is looked up, as at Salesforce.
    unknown = http.get(f"{emulate.sf_my_domain_url}/services/data/{API_VERSION}/no/such/resource", headers=headers)
    assert_api_error(unknown, 401, "INVALID_SESSION_ID")


def test_sf_expired_token_gives_401_then_a_new_token_works(http: httpx.Client, emulate: Emulate) -> None:
    """S2: 401 INVALID_SESSION_ID on an expired token -> get a new token, retry once (fault token_ttl_s)."""
    set_faults(http, emulate.sf_login_url, token_ttl_s=1)
    api = sf_login(http, emulate)
    assert api.query("SELECT Id FROM Profile").status_code == 200
    time.sleep(1.1)
    error = assert_api_error(api.query("SELECT Id FROM Profile"), 401, "INVALID_SESSION_ID")
    assert error["message"] == "Session expired or invalid"
    assert sf_login(http, emulate).query("SELECT Id FROM Profile").status_code == 200


def test_sf_query_shape_with_nested_relationship_fields(http: httpx.Client, emulate: Emulate) -> None:
    """S2 query: totalSize, done, records with attributes {type, url}; relationship fields nested."""
    api = sf_login(http, emulate)
    answer = api.query(f"SELECT Id, Username, Name, IsActive, Profile.Name FROM User "
                       f"WHERE Username = 'agent1@example.com'")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["totalSize"] == 1 and body["done"] is True and "nextRecordsUrl" not in body
    (user,) = body["records"]
    assert user["attributes"]["type"] == "User"
    assert user["attributes"]["url"] == f"/services/data/{API_VERSION}/sobjects/User/{user['Id']}"
    assert user["Id"].startswith("005") and len(user["Id"]) == 18
    assert user["Username"] == "agent1@example.com" and user["IsActive"] is True
    assert user["Profile"]["attributes"]["type"] == "Profile"
    assert user["Profile"]["Name"] == AGENT_PROFILE
    assert "ProfileId" not in user  # only what was selected


def test_sf_soql_subset_conditions_order_and_limit(http: httpx.Client, emulate: Emulate) -> None:
    """S2 SOQL subset: =, !=, <, >, <=, >=, IN, AND/OR, ORDER BY ASC/DESC, LIMIT, literals."""
    api = sf_login(http, emulate)
    names = [r["Username"] for r in api.records(
        "SELECT Username FROM User WHERE Username IN ('agent1@example.com', 'agent2@example.com', "
        "'agent3@example.com') ORDER BY Username DESC")]
    assert names == ["agent3@example.com", "agent2@example.com", "agent1@example.com"]

    limited = api.query("SELECT Id FROM User ORDER BY Username ASC LIMIT 3").json()
    assert len(limited["records"]) == 3

    either = api.records("SELECT Username FROM User WHERE Username = 'agent1@example.com' "
                         "OR Username = 'supervisor1@example.com' ORDER BY Username")
    assert [r["Username"] for r in either] == ["agent1@example.com", "supervisor1@example.com"]

    both = api.records(f"SELECT Name FROM Profile WHERE Name != '{AGENT_PROFILE}' AND Name != null ORDER BY Name")
    assert AGENT_PROFILE not in [r["Name"] for r in both] and both

    future = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert api.records(f"SELECT Id FROM Profile WHERE CreatedDate > {future}") == []
    assert len(api.records(f"SELECT Id FROM Profile WHERE CreatedDate <= {future}")) >= 3
    assert api.records("SELECT Id FROM User WHERE IsActive = false") == []
    assert api.query("SELECT Id FROM User WHERE IsActive >= true LIMIT 1").status_code == 200
    assert api.query(f"SELECT Id FROM Profile WHERE CreatedDate < {future} LIMIT 1").status_code == 200


def test_sf_query_pages_through_next_records_url(http: httpx.Client, emulate: Emulate) -> None:
    """S2: at most 2,000 records a page; nextRecordsUrl is a path relative to the instance."""
    api = sf_login(http, emulate)
    pages = list(api.pages("SELECT Id, Username FROM User"))
    assert len(pages) >= 2
    assert all(len(p["records"]) <= 2000 for p in pages)
    assert [p["done"] for p in pages] == [False] * (len(pages) - 1) + [True]
    assert "nextRecordsUrl" not in pages[-1]
    ids = [r["Id"] for p in pages for r in p["records"]]
    # Every 50th agent has no Salesforce user; add the integration user and two supervisors.
    assert len(ids) == len(set(ids)) == pages[0]["totalSize"] == emulate.agents - emulate.agents // 50 + 3
    assert pages[0]["totalSize"] > 2000


def test_sf_create_retrieve_update_delete(http: httpx.Client, emulate: Emulate) -> None:
    """S2 create 201 {id, success, errors: []}; update PATCH 204; delete 204; then NOT_FOUND."""
    api = sf_login(http, emulate)
    created = api.post("/sobjects/ServicePresenceStatus/", {"DeveloperName": "On_Break", "MasterLabel": "On Break"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["success"] is True and body["errors"] == []
    status_id = body["id"]
    assert status_id.startswith("0N5") and len(status_id) == 18

    fetched = api.get(f"/sobjects/ServicePresenceStatus/{status_id}")
    assert fetched.status_code == 200 and fetched.json()["DeveloperName"] == "On_Break"

    updated = api.patch(f"/sobjects/ServicePresenceStatus/{status_id}", {"MasterLabel": "Short Break"})
    assert updated.status_code == 204 and not updated.content
    (row,) = api.records(f"SELECT Id, MasterLabel FROM ServicePresenceStatus WHERE Id = '{status_id}'")
    assert row["MasterLabel"] == "Short Break"

    deleted = api.delete(f"/sobjects/ServicePresenceStatus/{status_id}")
    assert deleted.status_code == 204 and not deleted.content
    assert_api_error(api.get(f"/sobjects/ServicePresenceStatus/{status_id}"), 404, "NOT_FOUND")
    assert_api_error(api.delete(f"/sobjects/ServicePresenceStatus/{status_id}"), 404, "NOT_FOUND")
    assert api.records(f"SELECT Id FROM ServicePresenceStatus WHERE Id = '{status_id}'") == []


def test_sf_setup_objects_of_s3(http: httpx.Client, emulate: Emulate) -> None:
    """S3: channels, profiles, permission sets (one per profile), channel links, access rows."""
    api = sf_login(http, emulate)
    channels = api.records("SELECT Id, DeveloperName, MasterLabel, RelatedEntity FROM ServiceChannel")
    assert channels and all(c["Id"].startswith("0N9") for c in channels)
    profiles = api.records("SELECT Id, Name FROM Profile")
    assert all(p["Id"].startswith("00e") for p in profiles)
    owned = api.records("SELECT Id, Name, ProfileId FROM PermissionSet WHERE IsOwnedByProfile = true")
    assert sorted(p["ProfileId"] for p in owned) == sorted(p["Id"] for p in profiles)
    assert all(p["Id"].startswith("0PS") for p in owned)

    status_id = status_with_access(api, "Available_for_Chats", "Available for Chats", channel="sfdc_chat")
    links = api.records("SELECT Id, ServicePresenceStatusId, ServiceChannel.DeveloperName FROM ServiceChannelStatus "
                        f"WHERE ServicePresenceStatusId = '{status_id}'")
    assert [link["ServiceChannel"]["DeveloperName"] for link in links] == ["sfdc_chat"]
    (access,) = api.records(f"SELECT Id, ParentId, SetupEntityId, SetupEntityType FROM SetupEntityAccess "
                            f"WHERE SetupEntityId = '{status_id}'")
    assert access["SetupEntityType"] == "ServicePresenceStatus"
    # SetupEntityAccess: create, query, delete; no update.
    assert api.patch(f"/sobjects/SetupEntityAccess/{access['Id']}", {"ParentId": access["ParentId"]}).status_code >= 400
    assert api.delete(f"/sobjects/SetupEntityAccess/{access['Id']}").status_code == 204


@pytest.mark.parametrize("case", ["REQUIRED_FIELD_MISSING", "DUPLICATE_VALUE", "INVALID_FIELD", "bad DeveloperName"])
def test_sf_create_errors_are_json_arrays(http: httpx.Client, emulate: Emulate, case: str) -> None:
    """S2 errors: 400 REQUIRED_FIELD_MISSING, DUPLICATE_VALUE, INVALID_FIELD; S3 DeveloperName rules."""
    api = sf_login(http, emulate)
    api.create("ServicePresenceStatus", {"DeveloperName": "Lunch", "MasterLabel": "Lunch"})
    body = {
        "REQUIRED_FIELD_MISSING": {"DeveloperName": "Case_Work"},
        "DUPLICATE_VALUE": {"DeveloperName": "Lunch", "MasterLabel": "Lunch again"},
        "INVALID_FIELD": {"DeveloperName": "Case_Work", "MasterLabel": "Case Work", "NoSuchField__c": 1},
        "bad DeveloperName": {"DeveloperName": "Case__Work_", "MasterLabel": "Case Work"},
    }[case]
    answer = api.post("/sobjects/ServicePresenceStatus/", body)
    assert answer.status_code == 400, answer.text
    error = answer.json()[0]
    assert set(error) >= {"message", "errorCode"}
    if case != "bad DeveloperName":
        assert error["errorCode"] == case
    if case == "REQUIRED_FIELD_MISSING":
        assert error["fields"] == ["MasterLabel"]
    assert len(api.records("SELECT Id FROM ServicePresenceStatus")) == 1


@pytest.mark.parametrize("name", ["1Lunch", "Lunch_", "Lu__nch", "Lunch Break", "Lunch-Break", "L" * 81])
def test_sf_developer_name_rules(http: httpx.Client, emulate: Emulate, name: str) -> None:
    """S3: letters, digits and underscores, starts with a letter, no `__`, no trailing `_`, <= 80 characters."""
    api = sf_login(http, emulate)
    answer = api.post("/sobjects/ServicePresenceStatus/", {"DeveloperName": name, "MasterLabel": "Lunch"})
    assert answer.status_code == 400, answer.text
    assert isinstance(answer.json(), list) and answer.json()[0]["errorCode"]
    assert api.records("SELECT Id FROM ServicePresenceStatus") == []
    longest = api.post("/sobjects/ServicePresenceStatus/", {"DeveloperName": "L" * 80, "MasterLabel": "Long"})
    assert longest.status_code == 201, longest.text


def test_sf_update_to_a_duplicate_developer_name(http: httpx.Client, emulate: Emulate) -> None:
    api = sf_login(http, emulate)
    api.create("ServicePresenceStatus", {"DeveloperName": "Lunch", "MasterLabel": "Lunch"})
    other = api.create("ServicePresenceStatus", {"DeveloperName": "Break", "MasterLabel": "Break"})
    assert_api_error(api.patch(f"/sobjects/ServicePresenceStatus/{other}", {"DeveloperName": "Lunch"}),
                     400, "DUPLICATE_VALUE")
    assert api.patch(f"/sobjects/ServicePresenceStatus/{other}", {"DeveloperName": "Break"}).status_code == 204


@pytest.mark.parametrize(("soql", "code"), [
    ("SELEC Id FROM User", "MALFORMED_QUERY"),
    ("SELECT Id FROM User WHERE", "MALFORMED_QUERY"),
    ("SELECT Id FROM User WHERE Username = 'a' AND", "MALFORMED_QUERY"),
    ("SELECT NoSuchField FROM User", "INVALID_FIELD"),
    ("SELECT Id, NoSuchRel.Name FROM User", "INVALID_FIELD"),
    ("SELECT Id FROM User WHERE IsActive = 'yes'", "INVALID_FIELD"),
])
def test_sf_query_errors_are_json_arrays(http: httpx.Client, emulate: Emulate, soql: str, code: str) -> None:
    api = sf_login(http, emulate)
    answer = api.query(soql)
    assert_api_error(answer, 400, code)
    api_usage(answer)  # error answers carry the budget header too


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/sobjects/User/005000000000000AAA"),
    ("GET", "/sobjects/NoSuchObject__c/a00000000000000AAA"),
    ("POST", "/sobjects/NoSuchObject__c/"),
    ("PATCH", "/sobjects/ServicePresenceStatus/0N5000000000000AAA"),
    ("DELETE", "/sobjects/ServicePresenceStatus/0N5000000000000AAA"),
    ("GET", "/no/such/resource"),
])
def test_sf_not_found_is_a_json_array(http: httpx.Client, emulate: Emulate, method: str, path: str) -> None:
    api = sf_login(http, emulate)
    body = {"MasterLabel": "x"} if method in ("POST", "PATCH") else None
    answer = http.request(method, f"{api.base}{path}", json=body, headers=api.headers)
    assert_api_error(answer, 404, "NOT_FOUND")
    api_usage(answer)


def test_sf_collections_create_up_to_200_records(http: httpx.Client, emulate: Emulate) -> None:
    """S2 collections: at most 200 records, per-record results; 201 records -> 400 EXCEEDED_ID_LIMIT."""
    api = sf_login(http, emulate)

    def statuses(n: int, prefix: str) -> list[dict[str, Any]]:
        return [{"attributes": {"type": "ServicePresenceStatus"}, "DeveloperName": f"{prefix}_{i}",
                 "MasterLabel": f"{prefix} {i}"} for i in range(n)]

    answer = api.post("/composite/sobjects", {"allOrNone": False, "records": statuses(200, "Bulk")})
    assert answer.status_code == 200, answer.text
    results = answer.json()
    assert len(results) == 200 and all(r["success"] is True and r["errors"] == [] for r in results)
    assert len({r["id"] for r in results}) == 200

    too_many = api.post("/composite/sobjects", {"allOrNone": False, "records": statuses(201, "More")})
    assert_api_error(too_many, 400, "EXCEEDED_ID_LIMIT")
    assert len(list(api.pages("SELECT Id FROM ServicePresenceStatus"))[0]["records"]) == 200


def test_sf_collections_report_a_failed_record_without_an_id(http: httpx.Client, emulate: Emulate) -> None:
    api = sf_login(http, emulate)
    records = [
        {"attributes": {"type": "ServicePresenceStatus"}, "DeveloperName": "Lunch", "MasterLabel": "Lunch"},
        {"attributes": {"type": "ServicePresenceStatus"}, "DeveloperName": "No_Label"},
        {"attributes": {"type": "ServicePresenceStatus"}, "DeveloperName": "Lunch", "MasterLabel": "Lunch 2"},
    ]
    answer = api.post("/composite/sobjects", {"allOrNone": False, "records": records})
    assert answer.status_code == 200, answer.text
    ok, missing, duplicate = answer.json()
    assert ok["success"] is True and ok["id"].startswith("0N5") and ok["errors"] == []
    for failed, code in ((missing, "REQUIRED_FIELD_MISSING"), (duplicate, "DUPLICATE_VALUE")):
        assert failed["success"] is False and "id" not in failed
        (error,) = failed["errors"]
        assert error["statusCode"] == code and set(error) == {"statusCode", "message", "fields"}


def test_sf_collections_do_not_mix_setup_and_other_objects(http: httpx.Client, emulate: Emulate) -> None:
    """S2: setup objects may not be mixed with other object types in one call."""
    api = sf_login(http, emulate)
    agent = user_id(api, "agent1@example.com")
    records = [
        {"attributes": {"type": "ServicePresenceStatus"}, "DeveloperName": "Lunch", "MasterLabel": "Lunch"},
        {"attributes": {"type": "Presence_Sync_Command__e"}, "UserId__c": agent, "StatusId__c": "0",
         "CommandId__c": "mixed-1"},
    ]
    answer = api.post("/composite/sobjects", {"allOrNone": False, "records": records})
    if answer.status_code == 200:
        results = answer.json()
        assert not all(r["success"] for r in results), results
        for failed in (r for r in results if not r["success"]):
            assert "id" not in failed and failed["errors"][0]["statusCode"] == "MIXED_DML_OPERATION"
    else:
        assert_api_error(answer, 400, "MIXED_DML_OPERATION")


def test_sf_every_data_api_answer_carries_the_limit_info(http: httpx.Client, emulate: Emulate) -> None:
    """S2: Sforce-Limit-Info: api-usage=USED/LIMIT, one request of the budget per call."""
    api = sf_login(http, emulate)
    used, limit = api_usage(api.query("SELECT Id FROM Profile"))
    assert 0 < used < limit
    created = api.post("/sobjects/ServicePresenceStatus/", {"DeveloperName": "Lunch", "MasterLabel": "Lunch"})
    assert api_usage(created) == (used + 1, limit)
    failed = api.get("/sobjects/ServicePresenceStatus/0N5000000000000AAA")
    assert failed.status_code == 404 and api_usage(failed) == (used + 2, limit)
    collection = api.post("/composite/sobjects", {"allOrNone": False, "records": []})
    assert api_usage(collection) == (used + 3, limit)


def test_sf_daily_budget_running_out_gives_403(http: httpx.Client, emulate: Emulate) -> None:
    """S2: 403 REQUEST_LIMIT_EXCEEDED once the org's API budget is spent (PUT /__emulator/org api_daily_limit)."""
    api = sf_login(http, emulate)
    used, _ = api_usage(api.query("SELECT Id FROM Profile"))
    assert sf_org(http, emulate, api_daily_limit=used + 1)["api_daily_limit"] == used + 1
    last = api.query("SELECT Id FROM Profile")
    assert last.status_code == 200 and api_usage(last) == (used + 1, used + 1)
    for _ in range(2):
        spent = api.query("SELECT Id FROM Profile")
        assert_api_error(spent, 403, "REQUEST_LIMIT_EXCEEDED")
        assert api_usage(spent) == (used + 1, used + 1)  # refused calls are not counted
    sf_org(http, emulate, api_daily_limit=used + 10)
    assert api.query("SELECT Id FROM Profile").status_code == 200


# ================================================================================ Salesforce S4: presence


def test_sf_user_service_presence_is_read_only(http: httpx.Client, emulate: Emulate) -> None:
    """S4: UserServicePresence: query, retrieve, delete; no create, no update."""
    api = sf_login(http, emulate)
    status_with_access(api, "On_Break", "On Break")
    agent = user_id(api, "agent1@example.com")
    changed = http.put(f"{emulate.sf_login_url}/__emulator/users/{agent}/presence", json={"status": "On_Break"})
    assert changed.status_code == 200, changed.text
    (spell,) = api.records("SELECT Id, UserId, ServicePresenceStatusId, ServicePresenceStatus.DeveloperName, "
                           "StatusStartDate, StatusEndDate, IsCurrentState, IsAway, CreatedDate "
                           f"FROM UserServicePresence WHERE UserId = '{agent}'")
    assert spell["Id"].startswith("0Hn")
    assert spell["ServicePresenceStatus"]["DeveloperName"] == "On_Break"
    assert spell["IsCurrentState"] is True and spell["StatusEndDate"] is None and spell["IsAway"] is True
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000", spell["StatusStartDate"])

    refused_create = api.post("/sobjects/UserServicePresence/", {"UserId": agent})
    assert refused_create.status_code == 400 and isinstance(refused_create.json(), list)
    refused_update = api.patch(f"/sobjects/UserServicePresence/{spell['Id']}", {"IsCurrentState": False})
    assert refused_update.status_code == 400 and isinstance(refused_update.json(), list)
    assert api.get(f"/sobjects/UserServicePresence/{spell['Id']}").json()["IsCurrentState"] is True
    assert api.delete(f"/sobjects/UserServicePresence/{spell['Id']}").status_code == 204
    assert api.records(f"SELECT Id FROM UserServicePresence WHERE UserId = '{agent}'") == []


def test_sf_presence_spells_and_the_documented_poll(http: httpx.Client, emulate: Emulate) -> None:
    """S4: a status change ends the current spell and starts a new one; logging out only ends it;
    the documented watermark poll sees both."""
    api = sf_login(http, emulate)
    status_with_access(api, "Available", "Available", channel="sfdc_phone")
    status_with_access(api, "Lunch", "Lunch")
    agent = user_id(api, "agent2@example.com")
    watermark = sf_clock(http, emulate)
    time.sleep(0.005)
    presence = f"{emulate.sf_login_url}/__emulator/users/{agent}/presence"
    for status in ("Available", "Lunch", None):
        assert http.put(presence, json={"status": status}).status_code == 200
        time.sleep(0.005)
    rows = api.records(
        "SELECT Id, UserId, ServicePresenceStatus.DeveloperName, StatusStartDate, StatusEndDate, IsCurrentState, "
        f"IsAway FROM UserServicePresence WHERE StatusStartDate > {watermark} OR StatusEndDate > {watermark} "
        "ORDER BY StatusStartDate")
    assert [(r["ServicePresenceStatus"]["DeveloperName"], r["IsCurrentState"], r["IsAway"]) for r in rows] == [
        ("Available", False, False), ("Lunch", False, True)]
    assert all(r["StatusEndDate"] is not None and r["UserId"] == agent for r in rows)
    assert rows[0]["StatusEndDate"] == rows[1]["StatusStartDate"]


def test_sf_presence_control_refuses_a_status_without_access(http: httpx.Client, emulate: Emulate) -> None:
    """Controls: PUT /__emulator/users/{id}/presence answers 409 when the user has no access."""
    api = sf_login(http, emulate)
    api.create("ServicePresenceStatus", {"DeveloperName": "Secret", "MasterLabel": "Secret"})
    agent = user_id(api, "agent1@example.com")
    answer = http.put(f"{emulate.sf_login_url}/__emulator/users/{agent}/presence", json={"status": "Secret"})
    assert answer.status_code == 409, answer.text


def test_sf_presence_command_publish_is_enqueued_and_applied(http: httpx.Client, emulate: Emulate) -> None:
    """S4: publishing Presence_Sync_Command__e answers success true with OPERATION_ENQUEUED; the applier
    of an open console applies it; a closed console loses it."""
    api = sf_login(http, emulate)
    lunch = status_with_access(api, "Lunch", "Lunch")
    agent1, agent2, agent3 = (user_id(api, f"agent{i}@example.com") for i in (1, 2, 3))
    closed = http.put(f"{emulate.sf_login_url}/__emulator/users/{agent3}/console", json={"open": False})
    assert closed.status_code == 200, closed.text
    watermark = sf_clock(http, emulate)

    published = api.post("/sobjects/Presence_Sync_Command__e/", {
        "UserId__c": agent1, "StatusId__c": lunch, "CommandId__c": "cmd-1", "Reason__c": "contract test"})
    assert published.status_code == 201, published.text
    body = published.json()
    assert body["success"] is True and body["id"]
    (note,) = body["errors"]
    assert note["statusCode"] == "OPERATION_ENQUEUED" and note["fields"] == [] and isinstance(note["message"], str)

    records = [{"attributes": {"type": "Presence_Sync_Command__e"}, "UserId__c": user, "StatusId__c": lunch,
                "CommandId__c": f"cmd-{user}"} for user in (agent2, agent3)]
    many = api.post("/composite/sobjects", {"allOrNone": False, "records": records})
    assert many.status_code == 200, many.text
    for result in many.json():
        assert result["success"] is True
        assert [e["statusCode"] for e in result["errors"]] == ["OPERATION_ENQUEUED"]

    soql = ("SELECT Id, UserId, ServicePresenceStatus.DeveloperName, StatusStartDate, StatusEndDate, IsCurrentState "
            f"FROM UserServicePresence WHERE StatusStartDate > {watermark} OR StatusEndDate > {watermark} "
            "ORDER BY StatusStartDate")
    rows = wait_for(lambda: (found := api.records(soql)) and len({r["UserId"] for r in found}) >= 2 and found)
    assert rows, "the applier never applied the published commands"
    assert sorted(r["UserId"] for r in rows) == sorted([agent1, agent2])  # agent3's console is closed
    assert all(r["ServicePresenceStatus"]["DeveloperName"] == "Lunch" and r["IsCurrentState"] for r in rows)

    offline = api.post("/sobjects/Presence_Sync_Command__e/", {"UserId__c": agent1, "StatusId__c": "0",
                                                                "CommandId__c": "cmd-offline"})
    assert offline.status_code == 201 and offline.json()["success"] is True
    ended = wait_for(lambda: [r for r in api.records(soql) if r["UserId"] == agent1 and not r["IsCurrentState"]])
    assert ended and ended[0]["StatusEndDate"] is not None
    assert [r for r in api.records(soql) if r["UserId"] == agent1 and r["IsCurrentState"]] == []


def test_sf_platform_event_is_not_queryable_or_retrievable(http: httpx.Client, emulate: Emulate) -> None:
    api = sf_login(http, emulate)
    assert api.query("SELECT Id FROM Presence_Sync_Command__e").status_code == 400
    missing = api.post("/sobjects/Presence_Sync_Command__e/", {"UserId__c": user_id(api, "agent1@example.com")})
    assert_api_error(missing, 400, "REQUIRED_FIELD_MISSING")


# ================================================================================ Salesforce controls


def test_sf_reset_empties_what_the_api_created(http: httpx.Client, emulate: Emulate) -> None:
    api = sf_login(http, emulate)
    api.create("ServicePresenceStatus", {"DeveloperName": "Lunch", "MasterLabel": "Lunch"})
    sf_org(http, emulate, block_username_password_flow=True)
    answer = http.post(f"{emulate.sf_login_url}/__emulator/reset", json={})
    assert answer.status_code == 200, answer.text
    assert http.get(f"{emulate.sf_login_url}/__emulator/org").json()["block_username_password_flow"] is False
    api = sf_login(http, emulate)
    assert api.records("SELECT Id FROM ServicePresenceStatus") == []
    assert len(list(api.pages("SELECT Id FROM User"))[0]["records"]) == 2000  # seeded again


def test_sf_stats_count_requests_by_route_template(http: httpx.Client, emulate: Emulate) -> None:
    api = sf_login(http, emulate)
    first, second = (api.create("ServicePresenceStatus", {"DeveloperName": n, "MasterLabel": n})
                     for n in ("Lunch", "Break"))
    assert api.get(f"/sobjects/ServicePresenceStatus/{first}").status_code == 200
    assert api.get(f"/sobjects/ServicePresenceStatus/{second}").status_code == 200
    stats = http.get(f"{emulate.sf_login_url}/__emulator/stats").json()
    requests = stats["requests"]
    assert requests[f"POST {TOKEN_PATH}"] >= 1
    retrieves = [n for key, n in requests.items() if key.startswith("GET ") and "sobjects" in key]
    assert retrieves == [2], requests  # one route template, not one key per record id
    assert all(first not in key and second not in key for key in requests)
    assert "errors_injected" in stats and datetime.fromisoformat(stats["clock"].replace("Z", "+00:00"))


@pytest.mark.parametrize("status", [503, 500])
def test_sf_injected_errors_look_like_salesforce(http: httpx.Client, emulate: Emulate, status: int) -> None:
    """Faults: error_rate/error_status; S2: 5xx / 503 SERVER_UNAVAILABLE are transient, as a JSON array."""
    api = sf_login(http, emulate)
    set_faults(http, emulate.sf_login_url, error_rate=1.0, error_status=status)
    answer = api.query("SELECT Id FROM Profile")
    assert answer.status_code == status and isinstance(answer.json(), list)
    if status == 503:
        assert answer.json()[0]["errorCode"] == "SERVER_UNAVAILABLE"
    stats = http.get(f"{emulate.sf_login_url}/__emulator/stats").json()
    assert sum(stats["errors_injected"].values()) >= 1
    set_faults(http, emulate.sf_login_url)
    assert api.query("SELECT Id FROM Profile").status_code == 200


def test_sf_latency_and_dropped_connections(http: httpx.Client, emulate: Emulate) -> None:
    api = sf_login(http, emulate)
    set_faults(http, emulate.sf_login_url, latency_ms=250)
    started = time.monotonic()
    assert api.query("SELECT Id FROM Profile").status_code == 200
    assert time.monotonic() - started >= 0.25
    set_faults(http, emulate.sf_login_url, drop_rate=1.0)
    with pytest.raises(httpx.TransportError):
        api.query("SELECT Id FROM Profile")


def test_sf_org_settings_control(http: httpx.Client, emulate: Emulate) -> None:
    """Controls: PUT /__emulator/org with the four documented settings."""
    settings = sf_org(http, emulate, block_username_password_flow=True, api_daily_limit=1234,
                      mfa_users=["agent1@example.com"], connected_app_creation_enabled=True)
    assert settings["block_username_password_flow"] is True and settings["api_daily_limit"] == 1234
    assert settings["mfa_users"] == ["agent1@example.com"] and settings["connected_app_creation_enabled"] is True


@pytest.mark.parametrize("system", ["salesforce", "cxone"])
def test_faults_are_deterministic_for_a_given_seed(http: httpx.Client, emulate: Emulate, system: str) -> None:
    """Controls: faults are injected per request, deterministic for a given seed (POST reset {"seed"})."""
    url = emulate.sf_login_url if system == "salesforce" else emulate.cxone_url

    def run(seed: int) -> list[int]:
        assert http.post(f"{url}/__emulator/reset", json={"seed": seed}).status_code == 200
        if system == "salesforce":
            api: Any = sf_login(http, emulate)
            call = lambda: api.query("SELECT Id FROM Profile")  # noqa: E731
        else:
            api = cx_login(http, emulate)
            call = lambda: api.get("/teams")  # noqa: E731
        set_faults(http, url, error_rate=0.5, error_status=503)
        return [call().status_code for _ in range(12)]

    first = run(11)
    assert set(first) == {200, 503}
    assert run(11) == first
    http.post(f"{url}/__emulator/reset", json={"seed": emulate.seed})


def test_sf_control_users_profiles_and_console(http: httpx.Client, emulate: Emulate) -> None:
    """Controls: POST /__emulator/profiles, /__emulator/users -> {id}; PUT console."""
    profile = http.post(f"{emulate.sf_login_url}/__emulator/profiles", json={"name": "Night Shift"})
    assert profile.status_code in (200, 201), profile.text
    created = http.post(f"{emulate.sf_login_url}/__emulator/users", json={
        "username": "night1@example.com", "email": "night1@example.com", "name": "Night One", "profile": "Night Shift"})
    assert created.status_code in (200, 201), created.text
    new_id = created.json()["id"]
    api = sf_login(http, emulate)
    (user,) = api.records(f"SELECT Id, Username, Email, Name, Profile.Name, IsActive FROM User WHERE Id = '{new_id}'")
    assert (user["Username"], user["Name"], user["Profile"]["Name"], user["IsActive"]) == (
        "night1@example.com", "Night One", "Night Shift", True)
    console = http.put(f"{emulate.sf_login_url}/__emulator/users/{new_id}/console",
                       json={"open": False, "apply_delay_ms": 0})
    assert console.status_code == 200, console.text


# ================================================================================ CXone helpers


def cx_credentials(http: httpx.Client, emulate: Emulate) -> dict[str, Any]:
    answer = http.get(f"{emulate.cxone_url}/__emulator/credentials")
    assert answer.status_code == 200, answer.text
    return answer.json()


def basic(client_id: str, client_secret: str) -> dict[str, str]:
    encoded = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
    return {"Authorization": f"Basic {encoded}", "Accept": "application/json"}


def discover(http: httpx.Client, emulate: Emulate, tenant_id: str) -> dict[str, Any]:
    answer = http.get(f"{emulate.cxone_url}/.well-known/cxone-configuration", params={"tenantId": tenant_id})
    assert answer.status_code == 200, answer.text
    return answer.json()


def token_endpoint(http: httpx.Client, config: dict[str, Any]) -> str:
    answer = http.get(f"{config['auth_endpoint']}/.well-known/openid-configuration")
    assert answer.status_code == 200, answer.text
    return answer.json()["token_endpoint"]


def cx_token(http: httpx.Client, emulate: Emulate, creds: dict[str, Any] | None = None,
             **form: str) -> httpx.Response:
    creds = creds or cx_credentials(http, emulate)
    endpoint = token_endpoint(http, discover(http, emulate, creds["tenant_id"]))
    body = {"grant_type": "password", "username": creds["access_key_id"], "password": creds["access_key_secret"],
            **form}
    return http.post(endpoint, data=body, headers=basic(creds["client_id"], creds["client_secret"]))


class CxoneApi:
    """`{api_endpoint}/incontactapi/services/v33.0`, Bearer auth."""

    def __init__(self, http: httpx.Client, api_endpoint: str, tokens: dict[str, Any]) -> None:
        self.http = http
        self.base = f"{api_endpoint}/incontactapi/services/{CXONE_API_VERSION}"
        self.headers = {"Authorization": f"Bearer {tokens['access_token']}", "Accept": "application/json"}

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.http.get(f"{self.base}{path}", params=params, headers=self.headers)

    def post(self, path: str, body: Any = None) -> httpx.Response:
        return self.http.post(f"{self.base}{path}", json=body, headers=self.headers)

    def ok(self, path: str, **params: Any) -> dict[str, Any]:
        answer = self.get(path, **params)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def join(self, agent_id: int) -> str:
        answer = self.post("/agent-sessions/join", {"asAgentId": agent_id})
        assert answer.status_code in (200, 202), answer.text
        return answer.json()["sessionId"]

    def set_state(self, session_id: str, state: str, reason: str | None = None) -> httpx.Response:
        body: dict[str, Any] = {"state": state}
        if reason is not None:
            body["reason"] = reason
        return self.post(f"/agent-sessions/{session_id}/state", body)

    def states_since(self, since: str) -> dict[int, dict[str, Any]]:
        """Every agent state changed since `since` (all pages), by agentId."""
        found: dict[int, dict[str, Any]] = {}
        skip = 0
        while True:
            page = self.ok("/agents/states", updatedSince=since, skip=skip, top=500)
            found.update({s["agentId"]: s for s in page["agentStates"]})
            skip += len(page["agentStates"])
            if not page["agentStates"] or skip >= page["totalRecords"]:
                return found

    def poll_time(self) -> str:
        return self.ok("/agents/states", top=1)["lastPollTime"]


def cx_login(http: httpx.Client, emulate: Emulate) -> CxoneApi:
    creds = cx_credentials(http, emulate)
    config = discover(http, emulate, creds["tenant_id"])
    answer = cx_token(http, emulate, creds)
    assert answer.status_code == 200, answer.text
    return CxoneApi(http, config["api_endpoint"], answer.json())


def agents_of_team(api: CxoneApi, team_name: str) -> list[dict[str, Any]]:
    return [a for a in api.ok("/agents", top=40)["agents"] if a["teamName"] == team_name]


def cx_control(http: httpx.Client, emulate: Emulate, method: str, path: str, body: Any) -> dict[str, Any]:
    answer = http.request(method, f"{emulate.cxone_url}/__emulator{path}", json=body)
    assert answer.status_code in (200, 201), answer.text
    return answer.json()


# ================================================================================ CXone C1: discovery, auth


def test_cx_credentials_control_gives_the_seeded_credentials(http: httpx.Client, emulate: Emulate) -> None:
    creds = cx_credentials(http, emulate)
    for key in ("tenant_id", "client_id", "client_secret", "access_key_id", "access_key_secret", "access_key_user"):
        assert isinstance(creds[key], str) and creds[key], key


def test_cx_discovery_and_openid_configuration(http: httpx.Client, emulate: Emulate) -> None:
    """C1: discovery (no auth) names the tenant's auth and API endpoints; OpenID config names the token endpoint."""
    creds = cx_credentials(http, emulate)
    config = discover(http, emulate, creds["tenant_id"])
    assert set(config) >= {"private", "ui_endpoint", "auth_endpoint", "api_endpoint", "area", "cluster", "domain",
                           "tenantId"}
    assert config["tenantId"] == creds["tenant_id"]
    assert config["area"] in ("na1", "au1", "eu1", "uk1", "jp1", "na2")
    assert config["auth_endpoint"] == config["api_endpoint"] == emulate.cxone_url
    openid = http.get(f"{config['auth_endpoint']}/.well-known/openid-configuration").json()
    assert openid["issuer"] and openid["token_endpoint"] == f"{emulate.cxone_url}/auth/token"


def test_cx_password_grant_with_basic_auth_and_an_id_token(http: httpx.Client, emulate: Emulate) -> None:
    """C1 token: Basic client auth, access key as username/password; id_token is a JWT carrying tenantId."""
    creds = cx_credentials(http, emulate)
    answer = cx_token(http, emulate, creds)
    assert answer.status_code == 200, answer.text
    tokens = answer.json()
    assert set(tokens) >= {"access_token", "token_type", "expires_in", "refresh_token", "id_token"}
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 3600
    claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert claims["tenantId"] == creds["tenant_id"]
    openid = http.get(f"{emulate.cxone_url}/.well-known/openid-configuration").json()
    if "jwks_uri" in openid:  # not in apis.md, but when offered the id_token must verify against it
        keys = jwt.PyJWKSet.from_dict(http.get(openid["jwks_uri"]).json())
        kid = jwt.get_unverified_header(tokens["id_token"]).get("kid")
        key = next(k for k in keys.keys if kid is None or k.key_id == kid)
        jwt.decode(tokens["id_token"], key.key, algorithms=["RS256"], audience=claims["aud"])
    api = CxoneApi(http, emulate.cxone_url, tokens)
    assert api.get("/teams").status_code == 200


def test_cx_refresh_grant(http: httpx.Client, emulate: Emulate) -> None:
    """C1 refresh: grant_type=refresh_token&refresh_token=... gives a new working access token."""
    creds = cx_credentials(http, emulate)
    first = cx_token(http, emulate, creds).json()
    answer = http.post(token_endpoint(http, discover(http, emulate, creds["tenant_id"])),
                       data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
                       headers=basic(creds["client_id"], creds["client_secret"]))
    assert answer.status_code == 200, answer.text
    refreshed = answer.json()
    assert refreshed["access_token"] != first["access_token"] and refreshed["token_type"] == "Bearer"
    assert jwt.decode(refreshed["id_token"], options={"verify_signature": False})["tenantId"] == creds["tenant_id"]
    assert CxoneApi(http, emulate.cxone_url, refreshed).get("/teams").status_code == 200


@pytest.mark.parametrize("case", ["wrong client secret", "unknown client id", "no Basic header"])
def test_cx_invalid_client_is_401(http: httpx.Client, emulate: Emulate, case: str) -> None:
    creds = cx_credentials(http, emulate)
    headers = {
        "wrong client secret": basic(creds["client_id"], "not-the-secret"),
        "unknown client id": basic("no-such-app", creds["client_secret"]),
        "no Basic header": {"Accept": "application/json"},
    }[case]
    answer = http.post(f"{emulate.cxone_url}/auth/token", headers=headers, data={
        "grant_type": "password", "username": creds["access_key_id"], "password": creds["access_key_secret"]})
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"] == "invalid_client"


@pytest.mark.parametrize("case", ["wrong access key secret", "unknown access key", "unknown refresh token"])
def test_cx_invalid_grant_is_400(http: httpx.Client, emulate: Emulate, case: str) -> None:
    creds = cx_credentials(http, emulate)
    form = {"grant_type": "password", "username": creds["access_key_id"], "password": creds["access_key_secret"]}
    if case == "wrong access key secret":
        form["password"] = "not-the-secret"
    elif case == "unknown access key":
        form["username"] = "AKIDNOSUCHKEY"
    else:
        form = {"grant_type": "refresh_token", "refresh_token": "not-a-refresh-token"}
    answer = http.post(f"{emulate.cxone_url}/auth/token", data=form,
                       headers=basic(creds["client_id"], creds["client_secret"]))
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "invalid_grant"


def test_cx_has_no_client_credentials_grant(http: httpx.Client, emulate: Emulate) -> None:
    creds = cx_credentials(http, emulate)
    answer = http.post(f"{emulate.cxone_url}/auth/token", data={"grant_type": "client_credentials"},
                       headers=basic(creds["client_id"], creds["client_secret"]))
    assert answer.status_code == 400 and "access_token" not in answer.json()


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token"])
def test_cx_api_needs_a_valid_bearer(http: httpx.Client, emulate: Emulate, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    answer = http.get(f"{emulate.cxone_url}/incontactapi/services/{CXONE_API_VERSION}/agents", headers=headers)
    assert answer.status_code == 401


def test_cx_expired_token_gives_401_and_refresh_recovers(http: httpx.Client, emulate: Emulate) -> None:
    """C4: on 401 refresh once and retry (fault token_ttl_s shortens the token's life)."""
    set_faults(http, emulate.cxone_url, token_ttl_s=1)
    creds = cx_credentials(http, emulate)
    tokens = cx_token(http, emulate, creds).json()
    assert tokens["expires_in"] == 1
    api = CxoneApi(http, emulate.cxone_url, tokens)
    assert api.get("/teams").status_code == 200
    time.sleep(1.1)
    assert api.get("/teams").status_code == 401
    refreshed = http.post(f"{emulate.cxone_url}/auth/token",
                          data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                          headers=basic(creds["client_id"], creds["client_secret"]))
    assert refreshed.status_code == 200, refreshed.text
    assert CxoneApi(http, emulate.cxone_url, refreshed.json()).get("/teams").status_code == 200


# ================================================================================ CXone C2: admin and real-time data


def test_cx_agents_list_fields_paging_and_filters(http: httpx.Client, emulate: Emulate) -> None:
    api = cx_login(http, emulate)
    page = api.ok("/agents", skip=0, top=50)
    assert page["totalRecords"] == emulate.agents and len(page["agents"]) == 50
    assert page["lastPollTime"] and set(page["_links"]) >= {"self", "next", "previous"}
    agent = page["agents"][0]
    assert set(agent) >= {"agentId", "userName", "firstName", "lastName", "emailAddress", "isActive", "teamId",
                          "teamName", "federatedId", "lastUpdated"}
    assert isinstance(agent["agentId"], int) and agent["isActive"] is True
    second = http.get(page["_links"]["next"], headers=api.headers).json()
    assert second["agents"][0]["agentId"] not in {a["agentId"] for a in page["agents"]}
    assert second["_links"]["previous"]
    assert api.ok("/agents", isActive="true", top=1)["totalRecords"] == emulate.agents
    assert api.ok("/agents", isActive="false", top=1)["totalRecords"] == 0

    since = page["lastPollTime"]
    time.sleep(0.005)
    (team,) = [t for t in api.ok("/teams")["teams"] if t["teamName"] == "Voice Team A"]
    new = cx_control(http, emulate, "POST", "/agents", {
        "firstName": "New", "lastName": "Hire", "emailAddress": "new.hire@example.com", "teamId": team["teamId"]})
    delta = api.ok("/agents", updatedSince=since)
    assert [a["agentId"] for a in delta["agents"]] == [new["agentId"]]
    assert delta["agents"][0]["userName"] == "new.hire@example.com"


def test_cx_teams_and_unavailable_codes(http: httpx.Client, emulate: Emulate) -> None:
    api = cx_login(http, emulate)
    teams = api.ok("/teams", isActive="true")
    assert teams["totalRecords"] == len(teams["teams"]) >= 2
    for team in teams["teams"]:
        assert set(team) >= {"teamId", "teamName", "isActive", "agentCount"}
    assert sum(t["agentCount"] for t in teams["teams"]) == emulate.agents

    (team_b,) = [t for t in teams["teams"] if t["teamName"] == "Voice Team B"]
    codes = api.ok(f"/teams/{team_b['teamId']}/unavailable-codes")["unavailableCodes"]
    assert all(set(c) >= {"outStateId", "outStateName", "isAcw", "isActive"} for c in codes)
    assert sorted(c["outStateName"] for c in codes) == ["ACW", "Break", "Lunch"]
    assert [c["outStateName"] for c in codes if c["isAcw"]] == ["ACW"]

    every = api.ok("/unavailable-codes", isActive="true")
    assert every["totalRecords"] == len(every["unavailableCodes"])
    for code in every["unavailableCodes"]:
        assert set(code) >= {"id", "name", "isActive", "isACW", "agentTimeout"}
    assert {c["name"]: c["isACW"] for c in every["unavailableCodes"]}["ACW"] is True


def test_cx_agent_states_page_with_skip_top_and_links(http: httpx.Client, emulate: Emulate) -> None:
    """C2: skip/top paging, totalRecords, _links {self, next, previous}."""
    api = cx_login(http, emulate)
    page = api.ok("/agents/states", skip=0, top=500)
    assert page["totalRecords"] == emulate.agents and page["lastPollTime"]
    assert page["_links"]["self"] and not page["_links"].get("previous")
    seen = [s["agentId"] for s in page["agentStates"]]
    pages = 1
    while page["_links"].get("next"):
        page = http.get(page["_links"]["next"], headers=api.headers).json()
        assert page["_links"]["previous"]
        seen += [s["agentId"] for s in page["agentStates"]]
        pages += 1
    assert pages == 5 and len(seen) == len(set(seen)) == emulate.agents
    state = api.ok("/agents/states", skip=emulate.agents - 1, top=5)["agentStates"]
    assert len(state) == 1
    assert set(state[0]) >= {"agentId", "agentStateId", "agentStateName", "outStateId", "outStateDescription",
                             "isACW", "startDate", "lastUpdateTime", "teamId", "userName"}
    assert (state[0]["agentStateId"], state[0]["agentStateName"]) == (1, "Available")


def test_cx_agent_states_deltas_follow_last_poll_time(http: httpx.Client, emulate: Emulate) -> None:
    """C2 deltas: send the previous response's lastPollTime as the next updatedSince."""
    api = cx_login(http, emulate)
    first = api.ok("/agents/states", top=1)
    (agent,) = agents_of_team(api, "Voice Team A")[:1]
    time.sleep(0.005)
    assert api.set_state(api.join(agent["agentId"]), "Unavailable", "Break").status_code == 202
    time.sleep(0.005)
    delta = api.ok("/agents/states", updatedSince=first["lastPollTime"])
    assert [s["agentId"] for s in delta["agentStates"]] == [agent["agentId"]] and delta["totalRecords"] == 1
    (state,) = delta["agentStates"]
    codes = {c["name"]: c["id"] for c in api.ok("/unavailable-codes")["unavailableCodes"]}
    assert (state["agentStateId"], state["agentStateName"], state["outStateDescription"], state["outStateId"],
            state["isACW"]) == (2, "Unavailable", "Break", codes["Break"], False)
    time.sleep(0.005)
    quiet = api.ok("/agents/states", updatedSince=delta["lastPollTime"])
    assert quiet["agentStates"] == [] and quiet["totalRecords"] == 0


# ================================================================================ CXone C3: Agent API


def test_cx_join_set_state_and_reasons(http: httpx.Client, emulate: Emulate) -> None:
    """C3: join -> sessionId; set state 202; 400 when the reason is not a code of the agent's team."""
    api = cx_login(http, emulate)
    since = api.poll_time()
    (agent,) = agents_of_team(api, "Voice Team B")[:1]
    session = api.join(agent["agentId"])
    assert api.join(agent["agentId"]) == session  # the running session, joined again
    for reason in ("CRM Work", "No Such Code", "ACW", "Refused"):
        assert api.set_state(session, "Unavailable", reason).status_code == 400, reason
    assert api.set_state(session, "LoggedIn").status_code == 400
    assert api.set_state(session, "Unavailable", "Lunch").status_code == 202
    state = api.states_since(since)[agent["agentId"]]
    assert (state["agentStateName"], state["outStateDescription"]) == ("Unavailable", "Lunch")
    assert api.set_state(session, "Unavailable").status_code == 202  # system-default Unavailable
    state = api.states_since(since)[agent["agentId"]]
    assert state["agentStateName"] == "Unavailable" and state["outStateDescription"] in ("", "Unavailable")
    assert api.set_state(session, "Available").status_code == 202
    assert api.states_since(since)[agent["agentId"]]["agentStateName"] == "Available"


def test_cx_forced_logout_ends_the_session(http: httpx.Client, emulate: Emulate) -> None:
    """C3: logout 202; the old session answers 404; join answers 409 while logged out; re-join after login."""
    api = cx_login(http, emulate)
    since = api.poll_time()
    (agent,) = agents_of_team(api, "Voice Team A")[:1]
    session = api.join(agent["agentId"])
    assert api.post(f"/agents/{agent['agentId']}/logout").status_code == 202
    state = api.states_since(since)[agent["agentId"]]
    assert (state["agentStateId"], state["agentStateName"]) == (0, "LoggedOut")
    assert api.set_state(session, "Available").status_code == 404
    assert api.post("/agent-sessions/join", {"asAgentId": agent["agentId"]}).status_code == 409

    cx_control(http, emulate, "PUT", f"/agents/{agent['agentId']}/session", {"open": True})
    fresh = api.join(agent["agentId"])
    assert fresh != session
    assert api.set_state(session, "Available").status_code == 404
    assert api.set_state(fresh, "Available").status_code == 202


def test_cx_agent_logging_out_by_itself_ends_the_session(http: httpx.Client, emulate: Emulate) -> None:
    api = cx_login(http, emulate)
    (agent,) = agents_of_team(api, "Voice Team B")[:1]
    session = api.join(agent["agentId"])
    cx_control(http, emulate, "PUT", f"/agents/{agent['agentId']}/session", {"open": False})
    assert api.set_state(session, "Available").status_code == 404
    assert api.post("/agent-sessions/join", {"asAgentId": agent["agentId"]}).status_code == 409


def test_cx_contact_lifecycle(http: httpx.Client, emulate: Emulate) -> None:
    """Controls: offer/accept -> InboundContact; end -> ACW (Unavailable, isACW); end_acw -> back;
    refuse -> Unavailable "Refused"."""
    api = cx_login(http, emulate)
    since = api.poll_time()
    (agent,) = agents_of_team(api, "Voice Team A")[:1]
    agent_id = agent["agentId"]

    def contact(action: str) -> dict[str, Any] | None:
        cx_control(http, emulate, "POST", f"/agents/{agent_id}/contact", {"action": action})
        return api.states_since(since).get(agent_id)

    assert contact("offer") is None  # an offered contact does not change the agent's state
    on_call = contact("accept")
    assert on_call and (on_call["agentStateId"], on_call["agentStateName"]) == (3, "InboundContact")
    assert on_call.get("contactId")
    acw = contact("end")
    assert acw and (acw["agentStateName"], acw["isACW"], acw["outStateDescription"]) == ("Unavailable", True, "ACW")
    back = contact("end_acw")
    assert back and (back["agentStateName"], back["isACW"], back["outStateDescription"]) == ("Available", False, "")
    contact("offer")
    refused = contact("refuse")
    assert refused
    assert (refused["agentStateName"], refused["outStateDescription"], refused["isACW"]) == (
        "Unavailable", "Refused", False)


def test_cx_contact_without_acw_returns_to_the_previous_state(http: httpx.Client, emulate: Emulate) -> None:
    """Controls: a team without an ACW code goes back to the state before the contact; a state set through
    the Agent API during the contact is applied when it ends."""
    api = cx_login(http, emulate)
    cx_control(http, emulate, "POST", "/unavailable-codes", {"name": "Training", "isACW": False})
    team = cx_control(http, emulate, "POST", "/teams", {"teamName": "No ACW Team", "unavailableCodes": ["Training"]})
    agent_id = cx_control(http, emulate, "POST", "/agents", {
        "firstName": "Solo", "lastName": "Agent", "emailAddress": "solo@example.com", "teamId": team["teamId"]},
    )["agentId"]
    since = api.poll_time()
    assert api.post("/agent-sessions/join", {"asAgentId": agent_id}).status_code == 409  # created logged out
    cx_control(http, emulate, "PUT", f"/agents/{agent_id}/session", {"open": True})
    cx_control(http, emulate, "PUT", f"/agents/{agent_id}/state", {"state": "Available"})
    for action in ("offer", "accept", "end"):
        cx_control(http, emulate, "POST", f"/agents/{agent_id}/contact", {"action": action})
    assert api.states_since(since)[agent_id]["agentStateName"] == "Available"

    session = api.join(agent_id)
    for action in ("offer", "accept"):
        cx_control(http, emulate, "POST", f"/agents/{agent_id}/contact", {"action": action})
    assert api.set_state(session, "Unavailable", "Training").status_code == 202
    assert api.states_since(since)[agent_id]["agentStateName"] == "InboundContact"
    cx_control(http, emulate, "POST", f"/agents/{agent_id}/contact", {"action": "end"})
    state = api.states_since(since)[agent_id]
    assert (state["agentStateName"], state["outStateDescription"]) == ("Unavailable", "Training")


# ================================================================================ CXone C4 and controls


def test_cx_rate_limit_answers_429_with_retry_after(http: httpx.Client, emulate: Emulate) -> None:
    """C4: 429 with Retry-After: <seconds> (fault rate_limit_per_s); honouring it succeeds."""
    api = cx_login(http, emulate)
    set_faults(http, emulate.cxone_url, rate_limit_per_s=2)
    answers = [api.get("/teams") for _ in range(4)]
    limited = [a for a in answers if a.status_code == 429]
    assert limited, [a.status_code for a in answers]
    retry_after = int(limited[0].headers["Retry-After"])
    assert retry_after >= 1
    time.sleep(retry_after)
    assert api.get("/teams").status_code == 200
    stats = http.get(f"{emulate.cxone_url}/__emulator/stats").json()
    assert stats["errors_injected"].get("rate_limited", 0) >= 1


def test_cx_injected_503_carries_retry_after(http: httpx.Client, emulate: Emulate) -> None:
    """C4: 503 likewise."""
    api = cx_login(http, emulate)
    set_faults(http, emulate.cxone_url, error_rate=1.0, error_status=503)
    answer = api.get("/teams")
    assert answer.status_code == 503 and int(answer.headers["Retry-After"]) >= 1


def test_sf_rate_limit_fault_answers_429_with_retry_after(http: httpx.Client, emulate: Emulate) -> None:
    api = sf_login(http, emulate)
    set_faults(http, emulate.sf_login_url, rate_limit_per_s=2)
    answers = [api.query("SELECT Id FROM Profile") for _ in range(4)]
    limited = [a for a in answers if a.status_code == 429]
    assert limited and int(limited[0].headers["Retry-After"]) >= 1
    assert isinstance(limited[0].json(), list)


def test_cx_controls_create_teams_codes_agents_and_reset(http: httpx.Client, emulate: Emulate) -> None:
    """Controls: POST teams/unavailable-codes/agents, PUT session/state, GET stats, POST reset."""
    api = cx_login(http, emulate)
    code = cx_control(http, emulate, "POST", "/unavailable-codes", {"name": "Coaching", "isACW": False})
    assert isinstance(code.get("id"), int)
    team = cx_control(http, emulate, "POST", "/teams", {"teamName": "Night Team",
                                                         "unavailableCodes": ["Coaching", "ACW"]})
    agent = cx_control(http, emulate, "POST", "/agents", {"firstName": "Nia", "lastName": "Night",
                                                           "emailAddress": "nia@example.com",
                                                           "teamId": team["teamId"]})
    assert isinstance(agent["agentId"], int)
    since = api.poll_time()
    cx_control(http, emulate, "PUT", f"/agents/{agent['agentId']}/session", {"open": True})
    cx_control(http, emulate, "PUT", f"/agents/{agent['agentId']}/state", {"state": "Unavailable",
                                                                            "reason": "Coaching"})
    state = api.states_since(since)[agent["agentId"]]
    assert (state["agentStateName"], state["outStateDescription"], state["teamId"]) == (
        "Unavailable", "Coaching", team["teamId"])
    codes = api.ok(f"/teams/{team['teamId']}/unavailable-codes")["unavailableCodes"]
    assert sorted(c["outStateName"] for c in codes) == ["ACW", "Coaching"]
    assert api.ok("/agents", top=1)["totalRecords"] == emulate.agents + 1

    stats = http.get(f"{emulate.cxone_url}/__emulator/stats").json()
    assert stats["requests"]["GET /incontactapi/services/{version}/teams/{teamId}/unavailable-codes"] == 1
    assert "errors_injected" in stats and stats["clock"]

    assert http.post(f"{emulate.cxone_url}/__emulator/reset", json={}).status_code == 200
    api = cx_login(http, emulate)
    assert api.ok("/agents", top=1)["totalRecords"] == emulate.agents
    assert "Night Team" not in [t["teamName"] for t in api.ok("/teams")["teams"]]
    assert http.get(f"{emulate.cxone_url}/__emulator/stats").json()["requests"].get(
        "GET /incontactapi/services/{version}/teams/{teamId}/unavailable-codes") is None


def test_both_systems_are_served_on_loopback(emulate: Emulate) -> None:
    """`presence-sync emulate` serves both systems, on loopback only, from one process."""
    assert emulate.process.poll() is None
    for url in (emulate.sf_login_url, emulate.sf_my_domain_url, emulate.cxone_url):
        assert httpx.get(f"{url}/__emulator/stats", timeout=5).status_code == 200
    assert emulate.salesforce_port != emulate.cxone_port
