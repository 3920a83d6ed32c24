"""No secret ever reaches a log line, an exception message, or a repr."""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
import pytest
from pydantic import SecretStr

from presence_sync.connectors import ConnectorError, CxoneClient, SalesforceClient

SECRET_FRAGMENTS = ("sf-client-secret", "sf-password", "sfSecToken", "cx-client-secret", "cx-access-key-secret",
                    "access-token-", "5Aep-refresh", "cx-access-", "cx-refresh-")


@pytest.fixture
def leaks(rsa_key_pair) -> Callable[[str], list[str]]:
    """The secret fragments found in a text; a line of the JWT key's body counts too."""
    fragments = (*SECRET_FRAGMENTS, rsa_key_pair[0].splitlines()[2])

    def found_in(text: str) -> list[str]:
        return [fragment for fragment in fragments if fragment in text]

    return found_in


async def exercise_salesforce(salesforce, retry, rsa_key_pair) -> list[ConnectorError]:
    """Succeed, re-authenticate, and fail in the ways that quote the server: return the errors raised."""
    errors: list[ConnectorError] = []
    salesforce.issue_refresh_tokens = True
    creds = salesforce.credentials()
    async with SalesforceClient(creds, transport=salesforce.transport(), retry=retry) as sf:
        await sf.query("SELECT Id FROM User")
        salesforce.expire_sessions()
        await sf.query("SELECT Id FROM User")
        for attempt in (sf.query("SELECT Id"), sf.get("/sobjects/User/005000000000009AAA")):
            try:
                await attempt
            except ConnectorError as error:
                errors.append(error)
        # A server that echoes what it was sent must not make us repeat it.
        salesforce.faults.status("/services/data/", 400, [{"errorCode": "BAD", "message":
                                 f"bad token {next(iter(salesforce.valid_tokens))} for {salesforce.password}"}])
        try:
            await sf.query("SELECT Id FROM User")
        except ConnectorError as error:
            errors.append(error)
    bad_logins = [
        salesforce.credentials(password=SecretStr("sf-password-wrong")),
        salesforce.credentials(flow="jwt", private_key=SecretStr(rsa_key_pair[0][:200])),
        salesforce.credentials(),  # refused below by a server that echoes the secret it was sent
    ]
    for bad in bad_logins:
        if bad is bad_logins[-1]:
            salesforce.faults.status("/services/oauth2/token", 400, {
                "error": "invalid_grant", "error_description": f"bad secret {salesforce.client_secret}"})
        async with SalesforceClient(bad, transport=salesforce.transport(), retry=retry) as sf:
            try:
                await sf.authenticate()
            except ConnectorError as error:
                errors.append(error)
    return errors


async def exercise_cxone(cxone, retry, clock) -> list[ConnectorError]:
    errors: list[ConnectorError] = []
    cxone.add_agents(1)
    async with CxoneClient(cxone.credentials(), transport=cxone.transport(), retry=retry, clock=clock) as cx:
        await cx.list_agents()
        clock.advance(3500)
        await cx.set_state(1000, "Available")
        cxone.valid_tokens.clear()
        await cx.agent_states()
        cxone.faults.status("/incontactapi/", 400, {"message": f"echo {cxone.access_key_secret}"})
        try:
            await cx.list_teams()
        except ConnectorError as error:
            errors.append(error)
    for bad in (cxone.credentials(client_secret=SecretStr("cx-client-secret-wrong")),
                cxone.credentials(access_key_secret=SecretStr("cx-access-key-secret-wrong"))):
        async with CxoneClient(bad, transport=cxone.transport(), retry=retry) as cx:
            try:
                await cx.authenticate()
            except ConnectorError as error:
                errors.append(error)
    return errors


async def test_nothing_secret_in_logs_errors_or_reprs(salesforce, cxone, retry, clock, rsa_key_pair, leaks,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    errors = await exercise_salesforce(salesforce, retry, rsa_key_pair)
    errors += await exercise_cxone(cxone, retry, clock)

    assert len(errors) == 9  # every failure path above was taken
    assert caplog.records, "the clients log what they do"
    assert leaks(caplog.text) == []
    for error in errors:
        assert leaks(str(error)) == [], type(error).__name__
        assert leaks(repr(error)) == []
    echoed = [str(error) for error in errors if "***" in str(error)]
    assert len(echoed) == 3  # the three echoes were redacted, not dropped


def test_credentials_never_show_their_secrets(salesforce, cxone, rsa_key_pair, leaks) -> None:
    shown = [
        repr(salesforce.credentials(flow="jwt", private_key=SecretStr(rsa_key_pair[0]))),
        str(salesforce.credentials()),
        salesforce.credentials().model_dump_json(),
        repr(cxone.credentials()),
        cxone.credentials().model_dump_json(),
    ]
    for text in shown:
        assert leaks(text) == []


def test_validation_errors_never_echo_a_secret(salesforce, leaks) -> None:
    with pytest.raises(ValueError) as caught:
        salesforce.credentials(flow="client_credentials", login_url="https://login.salesforce.com")
    assert leaks(str(caught.value)) == []


async def test_requests_log_the_path_but_not_the_query(salesforce, retry, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="connectors")
    salesforce.faults.add("/services/data/", lambda request: httpx.Response(503, json=[]))
    async with SalesforceClient(salesforce.credentials(), transport=salesforce.transport(), retry=retry) as sf:
        await sf.query("SELECT Id FROM User WHERE Email = 'someone@example.com'")

    assert "GET /services/data/v62.0/query" in caplog.text
    assert "someone@example.com" not in caplog.text
    assert "retry 2/4" in caplog.text
