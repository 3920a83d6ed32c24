"""Salesforce OAuth (apis.md S1): every grant, every documented error, single-flight re-authentication."""

from __future__ import annotations

import asyncio
import time

import httpx
import jwt
import pytest
from pydantic import SecretStr, ValidationError

from presence_sync.connectors import (
    AuthenticationError,
    ClientCredentialsFlow,
    InvalidClient,
    InvalidCredentials,
    MalformedResponse,
    SalesforceClient,
    SalesforceCredentials,
    SessionRejected,
    UnsupportedGrant,
)
from presence_sync.connectors.retry import RetryPolicy
from presence_sync.connectors.salesforce_auth import jwt_audience

MY_DOMAIN = "https://acme.my.salesforce.com"


def client_for(salesforce, retry: RetryPolicy, **credential_overrides) -> SalesforceClient:
    return salesforce.credentials(**credential_overrides).get_client(transport=salesforce.transport(), retry=retry)


async def test_password_flow_appends_the_security_token_and_reads_who_we_are(salesforce, retry) -> None:
    async with client_for(salesforce, retry) as sf:
        identity = await sf.authenticate()

    assert salesforce.token_forms == [{
        "grant_type": "password",
        "client_id": salesforce.client_id,
        "client_secret": salesforce.client_secret,
        "username": salesforce.username,
        "password": salesforce.password + salesforce.security_token,
    }]
    assert salesforce.token_hosts == ["login.salesforce.com"]
    assert identity.instance_url == MY_DOMAIN
    assert (identity.org_id, identity.user_id) == ("00D000000000001AAA", "005000000000001AAA")
    assert (sf.org_id, sf.user_id, sf.instance_url) == (identity.org_id, identity.user_id, MY_DOMAIN)


async def test_client_credentials_flow_on_the_my_domain(salesforce, retry) -> None:
    async with client_for(salesforce, retry, flow="client_credentials", login_url=MY_DOMAIN,
                          username=None, password=None, security_token=None) as sf:
        await sf.authenticate()

    assert salesforce.token_forms == [{
        "grant_type": "client_credentials",
        "client_id": salesforce.client_id,
        "client_secret": salesforce.client_secret,
    }]
    assert salesforce.token_hosts == ["acme.my.salesforce.com"]


async def test_client_credentials_off_the_my_domain_says_to_use_it(salesforce, retry) -> None:
    # A login host that is neither login/test (refused up front) nor the My Domain.
    async with client_for(salesforce, retry, flow="client_credentials", login_url="https://sso.acme.example",
                          username=None, password=None, security_token=None) as sf:
        with pytest.raises(UnsupportedGrant) as caught:
            await sf.authenticate()

    message = str(caught.value)
    assert "request not supported on this domain" in message
    assert "https://<domain>.my.salesforce.com" in message


@pytest.mark.parametrize("login_url", ["https://login.salesforce.com", "https://test.salesforce.com/"])
def test_client_credentials_on_a_generic_login_host_is_refused_up_front(salesforce, login_url: str) -> None:
    with pytest.raises(ValidationError) as caught:
        salesforce.credentials(flow="client_credentials", login_url=login_url)

    assert "My Domain" in str(caught.value)
    assert "my.salesforce.com" in str(caught.value)


async def test_jwt_bearer_flow_signs_a_short_lived_rs256_assertion(salesforce, retry, rsa_key_pair) -> None:
    private_pem, public_pem = rsa_key_pair
    async with client_for(salesforce, retry, flow="jwt", client_secret=None, password=None,
                          security_token=None, private_key=SecretStr(private_pem)) as sf:
        await sf.authenticate()

    (form,) = salesforce.token_forms
    assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    claims = jwt.decode(form["assertion"], public_pem, algorithms=["RS256"], audience="https://login.salesforce.com")
    assert claims["iss"] == salesforce.client_id
    assert claims["sub"] == salesforce.username
    assert 0 < claims["exp"] - time.time() <= 180


@pytest.mark.parametrize(
    ("login_url", "audience"),
    [
        ("https://login.salesforce.com", "https://login.salesforce.com"),
        ("https://test.salesforce.com", "https://test.salesforce.com"),
        ("https://acme.my.salesforce.com", "https://login.salesforce.com"),
        ("https://acme--uat.sandbox.my.salesforce.com", "https://test.salesforce.com"),
        ("http://localhost:8401", "http://localhost:8401"),
    ],
)
def test_jwt_audience_is_the_login_host_of_the_org_kind(login_url: str, audience: str) -> None:
    assert jwt_audience(login_url) == audience


async def test_an_unusable_jwt_key_is_explained_without_quoting_it(salesforce, retry) -> None:
    key = "-----BEGIN PRIVATE KEY-----\nnot-a-key-material-zzz\n-----END PRIVATE KEY-----"
    async with client_for(salesforce, retry, flow="jwt", private_key=SecretStr(key)) as sf:
        with pytest.raises(InvalidCredentials) as caught:
            await sf.authenticate()

    assert "PEM RSA private key" in str(caught.value)
    assert "not-a-key-material-zzz" not in str(caught.value)
    assert caught.value.__cause__ is None
    assert salesforce.token_requests == 0


async def test_refresh_token_is_used_when_one_was_issued(salesforce, retry) -> None:
    salesforce.issue_refresh_tokens = True
    async with client_for(salesforce, retry) as sf:
        await sf.query("SELECT Id FROM User")
        salesforce.expire_sessions()
        await sf.query("SELECT Id FROM User")

    assert [form["grant_type"] for form in salesforce.token_forms] == ["password", "refresh_token"]
    assert salesforce.token_forms[1]["refresh_token"].startswith("5Aep-refresh-")


async def test_a_refused_refresh_token_falls_back_to_the_configured_flow(salesforce, retry) -> None:
    salesforce.issue_refresh_tokens = True
    async with client_for(salesforce, retry) as sf:
        await sf.authenticate()
        salesforce.expire_sessions()
        salesforce.valid_refresh_tokens.clear()
        await sf.query("SELECT Id FROM User")

    assert [form["grant_type"] for form in salesforce.token_forms] == ["password", "refresh_token", "password"]


@pytest.mark.parametrize("cause", ["wrong password", "flow blocked in the org", "MFA enforced"])
async def test_authentication_failure_names_all_three_causes_and_the_retirement(salesforce, retry, cause) -> None:
    overrides = {}
    if cause == "wrong password":
        overrides["password"] = SecretStr("not-the-password")
    elif cause == "flow blocked in the org":
        salesforce.block_username_password_flow = True
    else:
        salesforce.mfa_users.add(salesforce.username)

    async with client_for(salesforce, retry, **overrides) as sf:
        with pytest.raises(InvalidCredentials) as caught:
            await sf.authenticate()

    message = str(caught.value)
    assert "invalid_grant: authentication failure" in message
    assert "security token" in message
    assert "Setup > OAuth and OpenID Connect Settings" in message
    assert "Allow OAuth Username-Password Flows" in message
    assert "MFA" in message
    assert "client_credentials or jwt" in message
    assert "2027-02-20" in message
    assert caught.value.error_code == "invalid_grant"
    assert salesforce.token_requests == 1  # a refused login is not retried


async def test_unknown_client_id(salesforce, retry) -> None:
    async with client_for(salesforce, retry, client_id="3MVG9unknown") as sf:
        with pytest.raises(InvalidClient) as caught:
            await sf.authenticate()

    assert "invalid_client_id" in str(caught.value)
    assert "Consumer Key" in str(caught.value)


async def test_wrong_client_secret(salesforce, retry) -> None:
    async with client_for(salesforce, retry, client_secret=SecretStr("wrong-secret")) as sf:
        with pytest.raises(InvalidClient) as caught:
            await sf.authenticate()

    assert "invalid_client" in str(caught.value)
    assert "Consumer Secret" in str(caught.value)


async def test_unsupported_grant_type(salesforce, retry) -> None:
    salesforce.faults.status("/services/oauth2/token", 400,
                             {"error": "unsupported_grant_type", "error_description": "grant type not supported"})
    async with client_for(salesforce, retry) as sf:
        with pytest.raises(UnsupportedGrant) as caught:
            await sf.authenticate()

    assert "grant type not supported" in str(caught.value)
    assert "Allow OAuth Username-Password Flows" in str(caught.value)


async def test_a_login_url_that_is_not_salesforce_is_named(salesforce, retry) -> None:
    salesforce.faults.add("/services/oauth2/token", lambda request: httpx.Response(404, text="<html>nope</html>"))
    async with client_for(salesforce, retry) as sf:
        with pytest.raises(AuthenticationError) as caught:
            await sf.authenticate()

    assert "HTTP 404" in str(caught.value)
    assert "login_url" in str(caught.value)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"<html>maintenance</html>", "not JSON"),
        (b'{"access_token": "x", "id": "https://login.salesforce.com/id/00D000000000001AAA/005000000000001AAA"}',
         "instance_url"),
        (b'{"access_token": "x", "instance_url": "https://acme.my.salesforce.com", "id": "nonsense"}', "body.id"),
    ],
)
async def test_a_malformed_token_answer_is_a_clear_error(salesforce, retry, body: bytes, problem: str) -> None:
    salesforce.faults.add("/services/oauth2/token", lambda request: httpx.Response(200, content=body))
    async with client_for(salesforce, retry) as sf:
        with pytest.raises(MalformedResponse) as caught:
            await sf.authenticate()

    assert "POST /services/oauth2/token" in str(caught.value)
    assert problem in str(caught.value)


async def test_token_endpoint_outages_are_retried(salesforce, retry, sleeps) -> None:
    salesforce.faults.status("/services/oauth2/token", 503, {"error": "unavailable"}, times=2)
    async with client_for(salesforce, retry) as sf:
        await sf.authenticate()

    assert salesforce.calls["POST /services/oauth2/token"] == 3
    assert sleeps.delays == [0.5, 1.0]


def test_identity_before_authentication_is_a_clear_programming_error(salesforce, retry) -> None:
    sf = client_for(salesforce, retry)
    with pytest.raises(RuntimeError, match="authenticate"):
        _ = sf.instance_url


async def test_a_hundred_concurrent_first_calls_log_in_once(salesforce, retry) -> None:
    salesforce.query_records["SELECT Id FROM User"] = [{"Id": "005000000000001AAA"}]
    async with client_for(salesforce, retry) as sf:
        results = await asyncio.gather(*(sf.query("SELECT Id FROM User") for _ in range(100)))

    assert salesforce.token_requests == 1
    assert all(len(records) == 1 for records in results)


async def test_a_hundred_calls_hitting_an_expired_session_reauthenticate_once(salesforce, retry) -> None:
    salesforce.query_records["SELECT Id FROM User"] = [{"Id": "005000000000001AAA"}]
    async with client_for(salesforce, retry) as sf:
        await sf.authenticate()
        salesforce.expire_sessions()
        results = await asyncio.gather(*(sf.query("SELECT Id FROM User") for _ in range(100)))

    assert salesforce.token_requests == 2  # the first login and ONE re-authentication
    assert all(len(records) == 1 for records in results)
    assert salesforce.calls["GET /services/data/v62.0/query"] == 200  # each call: one 401, one retry


async def test_a_token_refused_right_after_reauthentication_is_not_retried_forever(salesforce, retry) -> None:
    salesforce.faults.add(
        "/services/data/",
        lambda request: httpx.Response(401, json=[{"message": "Session expired or invalid",
                                                   "errorCode": "INVALID_SESSION_ID"}]),
        times=10,
    )
    async with client_for(salesforce, retry) as sf:
        with pytest.raises(SessionRejected) as caught:
            await sf.query("SELECT Id FROM User")

    assert salesforce.token_requests == 2
    assert salesforce.calls["GET /services/data/v62.0/query"] == 2
    assert "INVALID_SESSION_ID" in str(caught.value)


async def test_a_failed_login_is_shared_by_every_waiting_call(salesforce, retry) -> None:
    async with client_for(salesforce, retry, password=SecretStr("wrong")) as sf:
        outcomes = await asyncio.gather(*(sf.query("SELECT Id FROM User") for _ in range(20)),
                                        return_exceptions=True)

    assert all(isinstance(outcome, InvalidCredentials) for outcome in outcomes)
    assert salesforce.token_requests == 1


@pytest.mark.parametrize(
    ("flow", "missing"),
    [("password", "password"), ("client_credentials", "client_secret"), ("jwt", "private_key")],
)
def test_each_flow_names_its_missing_fields(flow: str, missing: str) -> None:
    fields = {"flow": flow, "client_id": "3MVG9"}
    if flow != "client_credentials":
        fields["username"] = "u@example.com"
    if flow == "password":
        fields["client_secret"] = SecretStr("s")
    with pytest.raises(ValidationError) as caught:
        SalesforceCredentials(login_url=MY_DOMAIN, auth=fields)  # type: ignore[arg-type]

    assert f"auth.{flow}" in str(caught.value)  # the flow's settings are where it failed
    assert missing in str(caught.value)


@pytest.mark.parametrize(("given", "kept"), [("62.0", "v62.0"), ("v61.0", "v61.0")])
def test_api_version_is_normalised(given: str, kept: str) -> None:
    creds = SalesforceCredentials(login_url=MY_DOMAIN, api_version=given,
                                  auth=ClientCredentialsFlow(client_id="x", client_secret=SecretStr("s")))
    assert creds.api_version == kept


def test_unknown_settings_and_bad_versions_are_refused() -> None:
    with pytest.raises(ValidationError, match="api_version must look like"):
        SalesforceCredentials(login_url=MY_DOMAIN, api_version="latest",
                              auth=ClientCredentialsFlow(client_id="x", client_secret=SecretStr("s")))
    with pytest.raises(ValidationError, match="login_ur"):
        SalesforceCredentials(client_id="x", login_ur="https://x")  # type: ignore[call-arg]
