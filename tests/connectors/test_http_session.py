"""HttpSession: the request loop applies the RetryPolicy, bounds concurrency, and raises typed errors."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

import httpx
import pytest

from presence_sync.connectors.errors import (
    BodyTooLarge,
    ConnectorError,
    DeadlineExceeded,
    MalformedResponse,
    RateLimited,
    RequestLimitExceeded,
    TransientError,
    is_transient,
)
from presence_sync.connectors import http as http_module
from presence_sync.connectors.http import DEFAULT_TIMEOUT, HttpSession, PoolSet, parse_json
from presence_sync.connectors.retry import RetryPolicy

URL = "https://api.example.test/things"
Answer = int | type[httpx.TransportError]


def scripted(*answers: Answer, headers: dict[str, str] | None = None,
             ) -> tuple[Callable[[httpx.Request], httpx.Response], list[httpx.Request]]:
    """A handler answering each request with the next scripted status (the last one repeats)."""
    seen: list[httpx.Request] = []
    queue = list(answers)

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, int):
            return httpx.Response(answer, json={"ok": answer < 400}, headers=headers or {})
        raise answer("scripted", request=request)

    return handle, seen


def session_for(handler: Callable[[httpx.Request], object], retry: RetryPolicy,
                max_concurrency: int = 16) -> HttpSession:
    return HttpSession("Example", transport=httpx.MockTransport(handler),  # type: ignore[arg-type]
                       retry=retry, max_concurrency=max_concurrency)


async def test_5xx_is_retried_with_growing_delays_until_success(retry: RetryPolicy, sleeps) -> None:
    handler, seen = scripted(503, 502, 200)
    async with session_for(handler, retry) as session:
        response = await session.request("GET", URL)

    assert response.status_code == 200
    assert len(seen) == 3
    assert sleeps.delays == [0.5, 1.0]


async def test_retry_after_is_honoured(retry: RetryPolicy, sleeps) -> None:
    handler, seen = scripted(429, 200, headers={"Retry-After": "7"})
    async with session_for(handler, retry) as session:
        await session.request("GET", URL)

    assert len(seen) == 2
    assert sleeps.delays == [7.0]


async def test_a_retry_after_longer_than_the_policy_waits_is_raised_at_once(sleeps) -> None:
    policy = RetryPolicy(max_retry_after=60.0, sleep=sleeps)
    handler, seen = scripted(429, headers={"Retry-After": "600"})
    async with session_for(handler, policy) as session:
        with pytest.raises(RateLimited) as caught:
            await session.request("GET", URL)

    assert len(seen) == 1
    assert sleeps.delays == []
    assert caught.value.retry_after == 600.0
    assert caught.value.transient
    assert "asked to wait 600 s" in str(caught.value)


async def test_transient_errors_give_up_after_max_attempts(retry: RetryPolicy, sleeps) -> None:
    handler, seen = scripted(500)
    async with session_for(handler, retry) as session:
        with pytest.raises(TransientError) as caught:
            await session.request("GET", URL)

    assert len(seen) == retry.max_attempts == 4
    assert sleeps.delays == [0.5, 1.0, 2.0]
    assert "after 4 attempts" in str(caught.value)
    assert "GET /things" in str(caught.value)
    assert caught.value.status_code == 500
    assert not caught.value.outcome_unknown


async def test_timeouts_on_reads_are_retried(retry: RetryPolicy, sleeps) -> None:
    handler, seen = scripted(httpx.ReadTimeout, httpx.ConnectError, 200)
    async with session_for(handler, retry) as session:
        response = await session.request("GET", URL)

    assert response.status_code == 200
    assert len(seen) == 3
    assert sleeps.delays == [0.5, 1.0]


async def test_a_create_that_timed_out_is_not_repeated(retry: RetryPolicy, sleeps) -> None:
    handler, seen = scripted(httpx.ReadTimeout, 201)
    async with session_for(handler, retry) as session:
        with pytest.raises(TransientError) as caught:
            await session.request("POST", URL, json={"Name": "x"})

    assert len(seen) == 1
    assert sleeps.delays == []
    assert caught.value.outcome_unknown
    assert "may or may not have been applied" in str(caught.value)


async def test_a_create_that_never_connected_is_retried(retry: RetryPolicy, sleeps) -> None:
    handler, seen = scripted(httpx.ConnectError, httpx.ConnectTimeout, 201)
    async with session_for(handler, retry) as session:
        response = await session.request("POST", URL, json={"Name": "x"})

    assert response.status_code == 201
    assert len(seen) == 3


async def test_a_create_answered_500_is_not_repeated(retry: RetryPolicy) -> None:
    handler, seen = scripted(500, 201)
    async with session_for(handler, retry) as session:
        with pytest.raises(TransientError) as caught:
            await session.request("POST", URL, json={})

    assert len(seen) == 1
    assert caught.value.outcome_unknown


@pytest.mark.parametrize("status", [429, 503])
async def test_a_create_turned_away_is_retried(retry: RetryPolicy, status: int) -> None:
    handler, seen = scripted(status, 201)
    async with session_for(handler, retry) as session:
        response = await session.request("POST", URL, json={})

    assert response.status_code == 201
    assert len(seen) == 2


async def test_idempotency_can_be_declared_for_a_post(retry: RetryPolicy) -> None:
    handler, seen = scripted(500, 200)
    async with session_for(handler, retry) as session:
        response = await session.request("POST", URL, data={"grant_type": "x"}, idempotent=True)

    assert response.status_code == 200
    assert len(seen) == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409])
async def test_permanent_errors_are_returned_without_retrying(retry: RetryPolicy, sleeps, status: int) -> None:
    handler, seen = scripted(status)
    async with session_for(handler, retry) as session:
        response = await session.request("GET", URL)

    assert response.status_code == status
    assert len(seen) == 1
    assert sleeps.delays == []


async def test_a_bad_url_scheme_is_a_permanent_error_naming_the_fix(retry: RetryPolicy) -> None:
    handler, seen = scripted(httpx.UnsupportedProtocol)
    async with session_for(handler, retry) as session:
        with pytest.raises(ConnectorError) as caught:
            await session.request("GET", URL)

    assert len(seen) == 1
    assert not caught.value.transient
    assert "configured URL" in str(caught.value)


async def test_connection_errors_that_persist_become_a_transient_error(retry: RetryPolicy) -> None:
    handler, seen = scripted(httpx.ConnectError)
    async with session_for(handler, retry) as session:
        with pytest.raises(TransientError) as caught:
            await session.request("GET", URL)

    assert len(seen) == 4
    assert "ConnectError" in str(caught.value)
    assert "after 4 attempts" in str(caught.value)


async def test_concurrency_is_bounded(retry: RetryPolicy) -> None:
    in_flight = 0
    peak = 0

    async def handle(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        for _ in range(5):
            await asyncio.sleep(0)
        in_flight -= 1
        return httpx.Response(200, json={})

    async with session_for(handle, retry, max_concurrency=4) as session:
        responses = await asyncio.gather(*(session.request("GET", URL) for _ in range(50)))

    assert len(responses) == 50
    assert peak == 4


async def test_each_request_takes_a_client_with_a_free_connection_the_warmest_first() -> None:
    clients = [httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200))) for _ in range(3)]
    pools = PoolSet(clients, connections_each=1)
    with pools.lease() as first, pools.lease() as second, pools.lease() as third:
        assert [first, second, third] == clients  # every client busy: one connection each
        with pools.lease() as overflow:  # beyond the bound (a login): shares a client in turn
            assert overflow in clients
    with pools.lease() as again:
        assert again is first  # the last freed: its connection is the one kept warm
    for client in clients:
        await client.aclose()


def test_a_session_without_a_transport_has_one_client_per_connection_and_one_tls_context(monkeypatch) -> None:
    made: list[object] = []
    real = httpx.create_ssl_context

    def counted(*args: object, **kwargs: object) -> object:
        made.append(real(*args, **kwargs))  # type: ignore[arg-type]
        return made[-1]

    monkeypatch.setattr(http_module.httpx, "create_ssl_context", counted)
    pools = PoolSet.build(transport=None, timeout=DEFAULT_TIMEOUT, headers=None, max_concurrency=6)
    assert len(pools.clients) == 6
    assert len(made) == 1  # loading the CA bundle costs ~30 ms of CPU: once per session, not per client
    asyncio.run(pools.aclose())


async def test_cookies_are_neither_kept_nor_sent_back(retry: RetryPolicy) -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={}, headers={"Set-Cookie": "BrowserId=abc; Path=/; Secure"})

    async with session_for(handle, retry) as session:
        await session.request("GET", URL)
        await session.request("GET", URL)
    assert [request.headers.get("Cookie") for request in seen] == [None, None]


def test_max_concurrency_must_be_positive(retry: RetryPolicy) -> None:
    with pytest.raises(ValueError, match="max_concurrency"):
        HttpSession("Example", max_concurrency=0, retry=retry)


async def test_non_json_answers_are_malformed_responses_naming_the_endpoint(retry: RetryPolicy) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>login</html>", headers={"Content-Type": "text/html"})

    async with session_for(handle, retry) as session:
        response = await session.request("GET", URL)

    with pytest.raises(MalformedResponse) as caught:
        parse_json(response, dict[str, int], system="Example", endpoint="GET /things", expected="counts")
    assert "GET /things" in str(caught.value)
    assert "not JSON" in str(caught.value)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"records": [{"Id": "0Xx1"}], "done": true}', {"records": [{"Id": "0Xx1"}], "done": True}),
        # What the fast parser refuses but JSON readers accept goes to the standard library.
        (b'\xef\xbb\xbf{"totalSize": 2}', {"totalSize": 2}),
        ('{"name": "Zoë"}'.encode("utf-16"), {"name": "Zoë"}),
    ],
)
def test_json_bodies_are_read_however_they_are_encoded(body: bytes, expected: dict[str, object]) -> None:
    assert http_module.decode_json(httpx.Response(200, content=body), system="Example", endpoint="GET /things") == expected


def test_a_nan_in_a_body_is_read_as_the_standard_library_reads_it() -> None:
    decoded = http_module.decode_json(httpx.Response(200, content=b'{"value": NaN}'), system="Example", endpoint="GET /x")
    assert math.isnan(decoded["value"])


def test_wrong_shapes_name_the_path_but_not_the_value() -> None:
    response = httpx.Response(200, json={"items": [{"id": 1}, {"id": "secret-ish-value"}]})

    with pytest.raises(MalformedResponse) as caught:
        parse_json(response, dict[str, list[dict[str, int]]], system="Example", endpoint="GET /x",
                   expected="items with integer ids")
    assert "body.items[1].id" in str(caught.value)
    assert "secret-ish-value" not in str(caught.value)


def test_only_transient_errors_are_worth_retrying_later() -> None:
    assert is_transient(TransientError("x", system="S"))
    assert is_transient(RateLimited("x", system="S", retry_after=5))
    assert not is_transient(RequestLimitExceeded("x", system="S"))
    assert not is_transient(ConnectorError("x", system="S"))
    assert not is_transient(ValueError("x"))


async def test_a_create_still_turned_away_after_every_attempt_surely_did_nothing(retry: RetryPolicy) -> None:
    handler, seen = scripted(503)
    async with session_for(handler, retry) as session:
        with pytest.raises(TransientError) as caught:
            await session.request("POST", URL, json={})

    assert len(seen) == 4
    assert not caught.value.outcome_unknown


class _Trickle(httpx.AsyncByteStream):
    """A body that sends one byte, then nothing for as long as the client waits (a slow-loris server)."""

    def __init__(self, sent: list[int]) -> None:
        self.sent = sent

    async def __aiter__(self):  # type: ignore[override]
        self.sent.append(1)
        yield b"{"
        await asyncio.Event().wait()


async def test_a_trickling_body_hits_the_overall_deadline_and_is_retried_for_reads(retry: RetryPolicy) -> None:
    sent: list[int] = []

    async def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=_Trickle(sent))

    session = HttpSession("Example", transport=httpx.MockTransport(handle), retry=retry, deadline_seconds=0.05)
    async with session:
        with pytest.raises(DeadlineExceeded) as caught:
            await session.request("GET", URL)
    assert len(sent) == retry.max_attempts  # headers came each time; the body never ended
    assert caught.value.transient and not caught.value.outcome_unknown
    assert "api.example.test GET /things" in str(caught.value) and "0.05 s" in str(caught.value)


async def test_a_write_past_its_deadline_is_not_repeated_and_its_outcome_is_unknown(retry: RetryPolicy) -> None:
    sent: list[int] = []

    async def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=_Trickle(sent))

    session = HttpSession("Example", transport=httpx.MockTransport(handle), retry=retry, deadline_seconds=0.05)
    async with session:
        with pytest.raises(DeadlineExceeded) as caught:
            await session.request("POST", URL, json={})
    assert len(sent) == 1
    assert caught.value.outcome_unknown
    assert "api.example.test POST /things" in str(caught.value)


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_a_body_over_the_cap_is_refused_unread(retry: RetryPolicy, declared: bool) -> None:
    body = b" " * 5000

    async def chunks():  # type: ignore[no-untyped-def]
        for start in range(0, len(body), 1000):
            yield body[start : start + 1000]

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body) if declared else httpx.Response(200, content=chunks())

    session = HttpSession("Example", transport=httpx.MockTransport(handle), retry=retry, max_body_bytes=4096)
    async with session:
        with pytest.raises(BodyTooLarge) as caught:
            await session.request("GET", URL)
    assert isinstance(caught.value, MalformedResponse)
    assert "api.example.test GET /things" in str(caught.value) and "4,096 bytes" in str(caught.value)


async def test_a_body_under_the_cap_within_the_deadline_is_read_whole(retry: RetryPolicy) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"ok": True})

    session = HttpSession("Example", transport=httpx.MockTransport(handle), retry=retry, deadline_seconds=5,
                          max_body_bytes=4096)
    async with session:
        response = await session.request("GET", URL)
    assert response.json() == {"ok": True}
