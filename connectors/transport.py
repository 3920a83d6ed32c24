"""An httpx transport for HTTP/1.1 on asyncio's own sockets and h11, without httpcore's pool.

httpx's default transport runs httpcore over anyio. Per request, httpcore's pool takes anyio locks,
opens shielded cancel scopes and events, assigns the request across its connections and checks each
kept socket through anyio; every read and write opens another cancel scope. Each PoolSet client holds
one connection (connectors/http.py), so all of that arbitrates nothing: at 64 requests in flight it
was ~40 % of the client's CPU per request (`python -m bench client`). Here a request takes a kept
connection to its origin (or opens one), h11 frames it, and the bytes arrive through an
`asyncio.Protocol` into a buffer that a read waits on with one future and one timer.

    transport = AsyncioTransport(ssl_context=httpx.create_ssl_context())
    client = httpx.AsyncClient(transport=transport)

Like httpx's transport: the request's `timeout` extension (connect, read, write) applies per phase;
errors are httpx's (ConnectError, ReadTimeout, RemoteProtocolError, ...); a connection is kept for
`keepalive_expiry` seconds after its answer was read whole, and one is never reused when the server
closed it or sent anything unasked (asyncio has read the socket already, so the buffer tells). No
proxies and no HTTP/2: PoolSet uses httpx's own transport behind a proxy.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import time
from collections.abc import AsyncIterator
from typing import Any

import h11
import httpx

_CHUNK_BYTES = 64 * 1024  # at most this much per read handed to h11, and per write of a large body
_MAX_HEAD_BYTES = 100 * 1024  # status line and headers, as httpcore allows
_PAUSE_READING_AT = 1024 * 1024  # buffered and not yet read (a large answer read slowly)
_DEFAULT_PORTS = {b"http": 80, b"https": 443}
_HAPPY_EYEBALLS_SECONDS = 0.25  # a host's next address is tried this soon (RFC 8305), as anyio does

Origin = tuple[bytes, bytes, int]


class _Protocol(asyncio.Protocol):
    """Buffers what the connection receives and wakes the one reader or writer waiting on it."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.chunks: collections.deque[bytes] = collections.deque()
        self.buffered = 0
        self.closed = False  # EOF or connection lost: nothing more will arrive
        self.error: BaseException | None = None
        self.reading_paused = False
        self.writing_paused = False
        self.waiter: asyncio.Future[bool] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.buffered += len(data)
        if self.buffered >= _PAUSE_READING_AT and not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.closed = True
        self._wake()
        return False  # close our side too: HTTP/1.1 on this connection is over

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.error = exc
        self._wake()

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(True)


def _expire(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)


class _Connection:
    """One HTTP/1.1 connection: h11's state and the socket's bytes."""

    def __init__(self, transport: asyncio.Transport, protocol: _Protocol) -> None:
        self.transport = transport
        self.protocol = protocol
        self.h11 = h11.Connection(our_role=h11.CLIENT, max_incomplete_event_size=_MAX_HEAD_BYTES)
        self.expires_at = 0.0
        self._loop = asyncio.get_running_loop()

    @classmethod
    async def open(cls, origin: Origin, ssl_context: ssl.SSLContext | None, timeout: float | None) -> _Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        name = host.decode("ascii")
        try:
            async with asyncio.timeout(timeout):
                transport, protocol = await loop.create_connection(
                    _Protocol, name, port,
                    ssl=ssl_context if scheme == b"https" else None,
                    server_hostname=name if scheme == b"https" else None,
                    happy_eyeballs_delay=_HAPPY_EYEBALLS_SECONDS,
                )
        except TimeoutError as error:
            raise httpx.ConnectTimeout(f"no connection to {name}:{port} within {timeout} s") from error
        except (OSError, ssl.SSLError) as error:
            raise httpx.ConnectError(str(error) or type(error).__name__) from error
        return cls(transport, protocol)  # type: ignore[arg-type]

    def reusable(self, now: float) -> bool:
        """Kept, not expired, and neither closed by the server nor holding bytes nobody asked for."""
        protocol = self.protocol
        return now < self.expires_at and not protocol.closed and not protocol.chunks

    def close(self) -> None:
        self.transport.close()

    async def _wait(self, timeout: float | None) -> bool:
        """Until the protocol wakes us (True) or `timeout` seconds pass (False)."""
        waiter: asyncio.Future[bool] = self._loop.create_future()
        self.protocol.waiter = waiter
        timer = None if timeout is None else self._loop.call_later(timeout, _expire, waiter)
        try:
            return await waiter
        finally:
            self.protocol.waiter = None
            if timer is not None:
                timer.cancel()

    async def _read(self, timeout: float | None) -> bytes:
        protocol = self.protocol
        while not protocol.chunks:
            if protocol.closed:
                if protocol.error is not None:
                    raise httpx.ReadError(str(protocol.error) or type(protocol.error).__name__)
                return b""
            if not await self._wait(timeout):
                raise httpx.ReadTimeout(f"no data within {timeout} s")
        data = protocol.chunks.popleft()
        if len(data) > _CHUNK_BYTES:
            protocol.chunks.appendleft(data[_CHUNK_BYTES:])
            data = data[:_CHUNK_BYTES]
        protocol.buffered -= len(data)
        if protocol.reading_paused and protocol.buffered < _PAUSE_READING_AT // 2:
            protocol.reading_paused = False
            self.transport.resume_reading()
        return data

    async def _write(self, data: bytes, timeout: float | None) -> None:
        protocol = self.protocol
        if protocol.closed or self.transport.is_closing():
            raise httpx.WriteError("the server closed the connection")
        self.transport.write(data)
        while protocol.writing_paused:
            if protocol.closed:
                raise httpx.WriteError("the server closed the connection while we were sending")
            if not await self._wait(timeout):
                raise httpx.WriteTimeout(f"could not send within {timeout} s")

    async def send_request(self, request: httpx.Request, timeouts: dict[str, float | None]) -> None:
        """The request's head and body, in one write when it is small (one send call, one segment)."""
        write = timeouts.get("write")
        try:
            pending = [self.h11.send(h11.Request(
                method=request.method, target=request.url.raw_path, headers=request.headers.raw
            )) or b""]
        except h11.LocalProtocolError as error:
            raise httpx.LocalProtocolError(str(error)) from error
        try:
            size = len(pending[0])
            async for chunk in request.stream:  # type: ignore[union-attr]
                pending.append(self.h11.send(h11.Data(data=chunk)) or b"")
                size += len(pending[-1])
                if size >= _CHUNK_BYTES:
                    await self._write(b"".join(pending), write)
                    pending, size = [], 0
            pending.append(self.h11.send(h11.EndOfMessage()) or b"")
            await self._write(b"".join(pending), write)
        except httpx.WriteError:
            # A server may answer early and close (e.g. 413): its answer is read next, as httpcore does.
            pass

    async def next_event(self, timeout: float | None) -> Any:
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as error:
                raise httpx.RemoteProtocolError(str(error)) from error
            if event is not h11.NEED_DATA:
                return event
            data = await self._read(timeout)
            if not data and self.h11.their_state is h11.SEND_RESPONSE:
                raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
            self.h11.receive_data(data)

    async def receive_head(self, timeout: float | None) -> h11.Response:
        while True:
            event = await self.next_event(timeout)
            if isinstance(event, h11.Response):
                return event
            if not isinstance(event, h11.InformationalResponse):  # 1xx are skipped, as httpcore does
                raise httpx.RemoteProtocolError(f"unexpected {type(event).__name__} before the response")

    def finished(self) -> bool:
        """The exchange is over and the connection may carry another one (then it is reset for it)."""
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()
            return True
        return False


class _Body(httpx.AsyncByteStream):
    """The answer's body; when closed, its connection goes back to the transport or is closed."""

    def __init__(self, owner: AsyncioTransport, origin: Origin, connection: _Connection, timeout: float | None) -> None:
        self._owner = owner
        self._origin = origin
        self._connection: _Connection | None = connection
        self._timeout = timeout

    async def __aiter__(self) -> AsyncIterator[bytes]:
        connection = self._connection
        if connection is None:
            raise httpx.StreamClosed()
        while True:
            event = await connection.next_event(self._timeout)
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)) or event is h11.PAUSED:
                return

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            self._owner.release(self._origin, connection)


class AsyncioTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 with kept connections per origin (`keepalive` of them at most), on asyncio and h11."""

    def __init__(
        self, *, ssl_context: ssl.SSLContext | None = None, keepalive: int = 1, keepalive_expiry: float = 5.0
    ) -> None:
        self._ssl_context = ssl_context or httpx.create_ssl_context()
        self._keepalive = keepalive
        self._keepalive_expiry = keepalive_expiry
        self._idle: dict[Origin, list[_Connection]] = {}
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scheme = url.raw_scheme
        if scheme not in _DEFAULT_PORTS:
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {url.scheme!r}: use http:// or https://")
        if self._closed:
            raise RuntimeError("the transport is closed")
        origin = (scheme, url.raw_host, url.port or _DEFAULT_PORTS[scheme])
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        connection = self._kept(origin) or await _Connection.open(origin, self._ssl_context, timeouts.get("connect"))
        try:
            await connection.send_request(request, timeouts)
            head = await connection.receive_head(timeouts.get("read"))
        except BaseException:
            connection.close()
            raise
        return httpx.Response(
            status_code=head.status_code,
            headers=head.headers.raw_items(),
            stream=_Body(self, origin, connection, timeouts.get("read")),
            extensions={"http_version": b"HTTP/" + head.http_version, "reason_phrase": head.reason},
        )

    def _kept(self, origin: Origin) -> _Connection | None:
        kept = self._idle.get(origin)
        now = time.monotonic()
        while kept:
            connection = kept.pop()
            if connection.reusable(now):
                return connection
            connection.close()
        return None

    def release(self, origin: Origin, connection: _Connection) -> None:
        """Keep a connection whose exchange is over (or close it)."""
        kept = self._idle.setdefault(origin, [])
        if self._closed or len(kept) >= self._keepalive or not connection.finished():
            connection.close()
            return
        connection.expires_at = time.monotonic() + self._keepalive_expiry
        kept.append(connection)

    async def aclose(self) -> None:
        self._closed = True
        for kept in self._idle.values():
            for connection in kept:
                connection.close()
        self._idle.clear()
