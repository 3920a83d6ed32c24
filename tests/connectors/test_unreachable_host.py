"""An unreachable host is reported after one quick probe, naming the URL; a host that answered before is retried.

Loopback only: a closed port (refused), a listening socket that never accepts, a tiny HTTP server.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from presence_sync.connectors import reachability
from presence_sync.connectors.errors import HostUnreachable, TransientError
from presence_sync.connectors.http import HttpSession
from presence_sync.connectors.retry import RetryPolicy


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


class TinyServer:
    """Answers every HTTP request with 200 and closes the connection; counts requests by method."""

    def __init__(self) -> None:
        self.methods: list[str] = []
        self.server: asyncio.Server | None = None

    async def start(self, port: int = 0) -> int:
        self.server = await asyncio.start_server(self._answer, "127.0.0.1", port)
        return int(self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        self.methods.append(head.split(b" ", 1)[0].decode())
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
        await writer.drain()
        writer.close()


@pytest.fixture
async def tiny() -> AsyncIterator[TinyServer]:
    server = TinyServer()
    yield server
    await server.stop()


def free_port() -> int:
    """A loopback port nothing listens on (connections to it are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that listens but never accepts: connections queue, nothing ever answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        yield int(listener.getsockname()[1])


def session(retry: RetryPolicy, **options: float) -> HttpSession:
    return HttpSession("Example", retry=retry, **options)  # type: ignore[arg-type]


async def test_a_refused_connection_is_reported_at_once_with_the_url(retry: RetryPolicy, sleeps) -> None:
    port = free_port()
    async with session(retry) as client:
        with pytest.raises(HostUnreachable) as caught:
            await client.request("GET", f"http://127.0.0.1:{port}/agents")

    assert sleeps.delays == []  # not one retry of the budget's four attempts
    assert client.reachability.probes == 1
    message = str(caught.value)
    assert f"http://127.0.0.1:{port}" in message and "refused" in message.lower()
    assert "GET /agents" in message


async def test_a_host_that_takes_connections_but_never_answers_is_reported_after_one_attempt(
    retry: RetryPolicy, sleeps, silent_port: int
) -> None:
    async with session(retry, deadline_seconds=1.0, probe_seconds=0.5) as client:
        with pytest.raises(HostUnreachable) as caught:
            await client.request("GET", f"http://127.0.0.1:{silent_port}/agents")

    assert sleeps.delays == []
    assert client.reachability.probes == 1
    assert f"http://127.0.0.1:{silent_port}" in str(caught.value)


async def test_requests_failing_together_share_one_probe(retry: RetryPolicy, sleeps) -> None:
    port = free_port()
    async with session(retry) as client:
        results = await asyncio.gather(
            *(client.request("GET", f"http://127.0.0.1:{port}/agents/{n}") for n in range(5)), return_exceptions=True
        )

    assert [type(result) for result in results] == [HostUnreachable] * 5
    assert client.reachability.probes == 1
    assert sleeps.delays == []


async def test_a_host_that_answered_before_is_retried_through_the_budget(
    retry: RetryPolicy, sleeps, tiny: TinyServer
) -> None:
    port = await tiny.start()
    async with session(retry) as client:
        assert (await client.request("GET", f"http://127.0.0.1:{port}/agents")).status_code == 200
        await tiny.stop()  # a blip: the host is known, so no probe cuts the retries short
        with pytest.raises(TransientError) as caught:
            await client.request("GET", f"http://127.0.0.1:{port}/agents")

    assert not isinstance(caught.value, HostUnreachable)
    assert len(sleeps.delays) == retry.max_attempts - 1
    assert client.reachability.probes == 0
    assert f"http://127.0.0.1:{port}" in str(caught.value) and "4 attempts" in str(caught.value)


async def test_a_host_that_answers_the_probe_is_retried_as_usual(
    retry: RetryPolicy, sleeps, tiny: TinyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    probe = reachability.probe_origin

    async def host_comes_up_then_probe(origin: str, seconds: float) -> str | None:
        await tiny.start(port)  # the service finished restarting between the failed attempt and the probe
        return await probe(origin, seconds)

    monkeypatch.setattr(reachability, "probe_origin", host_comes_up_then_probe)
    async with session(retry, probe_seconds=30.0) as client:
        response = await client.request("GET", f"http://127.0.0.1:{port}/agents")

    assert response.status_code == 200
    assert tiny.methods == ["HEAD", "GET"]  # the probe, then the retried request
    assert len(sleeps.delays) == 1
    assert client.reachability.probes == 1


async def test_an_in_process_transport_is_never_probed(retry: RetryPolicy, sleeps) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with HttpSession("Example", transport=httpx.MockTransport(refuse), retry=retry) as client:
        with pytest.raises(TransientError):
            await client.request("GET", "http://127.0.0.1:9/agents")

    assert client.reachability.probes == 0
    assert len(sleeps.delays) == retry.max_attempts - 1
