"""AsyncioTransport: HTTP/1.1 on asyncio and h11, against a loopback server that h11 plays by script."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import h11
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from presence_sync.connectors.http import PoolSet
from presence_sync.connectors.transport import AsyncioTransport

# What the server does with a request: an answer (status, headers, body), raw bytes to send before it
# hangs up, or None to hang up unanswered.
Answer = tuple[int, list[tuple[str, str]], bytes] | bytes | None
Respond = Callable[[h11.Request, bytes], Awaitable[Answer]]


@dataclass
class Server:
    respond: Respond
    connections: int = 0
    requests: list[tuple[str, str, bytes]] = field(default_factory=list)
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    port: int = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        conn = h11.Connection(h11.SERVER)
        request, body = None, b""
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await reader.read(65536)
                    conn.receive_data(data)
                    if not data and conn.their_state is not h11.SEND_BODY:
                        return
                elif isinstance(event, h11.Request):
                    request, body = event, b""
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    assert request is not None
                    self.requests.append((request.method.decode(), request.target.decode(), body))
                    answer = await self.respond(request, body)
                    if answer is None:
                        return
                    if isinstance(answer, bytes):
                        writer.write(answer)
                        await writer.drain()
                        return
                    status, headers, content = answer
                    headers = [*headers, ("Content-Length", str(len(content)))]
                    writer.write(conn.send(h11.Response(status_code=status, headers=headers)))
                    writer.write(conn.send(h11.Data(data=content)) or b"")
                    writer.write(conn.send(h11.EndOfMessage()) or b"")
                    await writer.drain()
                    if conn.our_state is h11.MUST_CLOSE:
                        return
                    conn.start_next_cycle()
                else:
                    return
        except (ConnectionError, h11.RemoteProtocolError):
            return
        finally:
            writer.close()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[Server]]]:
    servers: list[asyncio.Server] = []

    async def start(respond: Respond, tls: ssl.SSLContext | None = None) -> Server:
        server = Server(respond)
        listening = await asyncio.start_server(server.serve, "127.0.0.1", 0, ssl=tls)
        server.port = listening.sockets[0].getsockname()[1]
        servers.append(listening)
        return server

    yield start
    for listening in servers:
        listening.close()


def answering(status: int = 200, body: bytes = b"{}", headers: list[tuple[str, str]] | None = None) -> Respond:
    async def respond(request: h11.Request, received: bytes) -> Answer:
        return status, headers or [], body
    return respond


async def eventually(predicate: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_a_kept_connection_carries_the_next_requests(serve) -> None:
    server = await serve(answering(body=b'{"ok": true}'))
    async with httpx.AsyncClient(transport=AsyncioTransport()) as client:
        answers = [await client.get(f"http://127.0.0.1:{server.port}/agents?top=1") for _ in range(3)]
    assert [answer.json() for answer in answers] == [{"ok": True}] * 3
    assert answers[0].http_version == "HTTP/1.1" and answers[0].reason_phrase == ""
    assert [target for _, target, _ in server.requests] == ["/agents?top=1"] * 3
    assert server.connections == 1


@pytest.mark.parametrize("size", [1, 300_000], ids=["one write", "several writes"])
async def test_a_request_body_arrives_whole(serve, size: int) -> None:
    server = await serve(answering(status=202))
    sent = {"state": "Available", "padding": "x" * size}
    async with httpx.AsyncClient(transport=AsyncioTransport()) as client:
        answer = await client.post(f"http://127.0.0.1:{server.port}/state", json=sent)

        async def streamed() -> AsyncIterator[bytes]:  # no Content-Length: sent chunked
            for part in (b"a" * size, b"b"):
                yield part

        chunked = await client.post(f"http://127.0.0.1:{server.port}/state", content=streamed())
    assert (answer.status_code, chunked.status_code) == (202, 202)
    assert [(method, body) for method, _, body in server.requests] == [
        ("POST", json.dumps(sent, separators=(",", ":")).encode()), ("POST", b"a" * size + b"b")]


async def test_a_large_answer_is_read_whole_and_its_connection_kept(serve) -> None:
    body = bytes(range(256)) * (12 * 1024)  # 3 MB: more than is buffered before reading pauses
    server = await serve(answering(body=body))
    async with httpx.AsyncClient(transport=AsyncioTransport()) as client:
        first = await client.get(f"http://127.0.0.1:{server.port}/big")
        second = await client.get(f"http://127.0.0.1:{server.port}/big")
    assert first.content == body and second.content == body
    assert server.connections == 1


async def test_an_answer_left_unread_closes_its_connection(serve) -> None:
    server = await serve(answering(body=b"x" * 500_000))
    async with httpx.AsyncClient(transport=AsyncioTransport()) as client:
        async with client.stream("GET", f"http://127.0.0.1:{server.port}/big") as answer:
            async for _ in answer.aiter_raw():
                break  # the rest is never read: the connection is mid-answer
        again = await client.get(f"http://127.0.0.1:{server.port}/big")
    assert len(again.content) == 500_000
    assert server.connections == 2


async def test_connection_close_is_honoured(serve) -> None:
    server = await serve(answering(headers=[("Connection", "close")]))
    async with httpx.AsyncClient(transport=AsyncioTransport()) as client:
        answers = [await client.get(f"http://127.0.0.1:{server.port}/") for _ in range(2)]
    assert [answer.status_code for answer in answers] == [200, 200]
    assert server.connections == 2


async def test_a_connection_the_server_closed_while_idle_is_not_reused(serve) -> None:
    server = await serve(answering())
    transport = AsyncioTransport()
    async with httpx.AsyncClient(transport=transport) as client:
        await client.get(f"http://127.0.0.1:{server.port}/")
        server.writers[0].close()  # the server's keep-alive ran out
        kept = [connection for connections in transport._idle.values() for connection in connections]
        await eventually(lambda: all(connection.protocol.closed for connection in kept))
        answer = await client.get(f"http://127.0.0.1:{server.port}/")
    assert answer.status_code == 200
    assert server.connections == 2


async def test_a_kept_connection_expires(serve) -> None:
    server = await serve(answering())
    async with httpx.AsyncClient(transport=AsyncioTransport(keepalive_expiry=0)) as client:
        for _ in range(2):
            await client.get(f"http://127.0.0.1:{server.port}/")
    assert server.connections == 2


async def test_a_hang_up_without_an_answer_is_a_remote_protocol_error(serve) -> None:
    async def hang_up(request: h11.Request, body: bytes) -> Answer:
        return None

    server = await serve(hang_up)
    async with httpx.AsyncClient(transport=AsyncioTransport()) as client:
        with pytest.raises(httpx.RemoteProtocolError, match="disconnected without sending a response"):
            await client.get(f"http://127.0.0.1:{server.port}/")


async def test_a_body_cut_short_is_a_remote_protocol_error_and_its_connection_dropped(serve) -> None:
    async def cut_short(request: h11.Request, body: bytes) -> Answer:
        if len(server.requests) == 1:
            return b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789"
        return 200, [], b"whole"

    server = await serve(cut_short)
    async with httpx.AsyncClient(transport=AsyncioTransport()) as client:
        with pytest.raises(httpx.RemoteProtocolError, match="incomplete|complete message body"):
            await client.get(f"http://127.0.0.1:{server.port}/")
        again = await client.get(f"http://127.0.0.1:{server.port}/")
    assert again.content == b"whole"
    assert server.connections == 2


async def test_a_garbled_status_line_is_a_remote_protocol_error(serve) -> None:
    async def garbled(request: h11.Request, body: bytes) -> Answer:
        return b"HTTP/1.1 OK-ish\r\n\r\n"

    server = await serve(garbled)
    async with httpx.AsyncClient(transport=AsyncioTransport()) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(f"http://127.0.0.1:{server.port}/")


async def test_silence_is_a_read_timeout(serve) -> None:
    async def never(request: h11.Request, body: bytes) -> Answer:
        await asyncio.Event().wait()
        return None

    server = await serve(never)
    async with httpx.AsyncClient(transport=AsyncioTransport(), timeout=httpx.Timeout(5, read=0.2)) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get(f"http://127.0.0.1:{server.port}/")


async def test_a_host_name_is_resolved_and_its_addresses_tried(serve) -> None:
    server = await serve(answering())  # on 127.0.0.1 only: "localhost" may resolve to ::1 first
    async with httpx.AsyncClient(transport=AsyncioTransport()) as client:
        answer = await client.get(f"http://localhost:{server.port}/")
    assert answer.status_code == 200
    assert server.requests[0][:2] == ("GET", "/")


async def test_a_refused_connection_is_a_connect_error() -> None:
    listening = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    listening.close()
    await listening.wait_closed()
    async with httpx.AsyncClient(transport=AsyncioTransport()) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{port}/")


async def test_an_unknown_scheme_is_unsupported() -> None:
    async with httpx.AsyncClient(transport=AsyncioTransport()) as client:
        with pytest.raises(httpx.UnsupportedProtocol, match="http:// or https://"):
            await client.get("ftp://127.0.0.1/agents")


def _certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (and its key), written to `directory`."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "presence-sync test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


async def test_https_is_verified_against_the_given_trust(serve, tmp_path: Path) -> None:
    cert_path, key_path = _certificate(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert_path, key_path)
    server = await serve(answering(body=b'{"secure": true}'), tls=server_tls)
    url = f"https://127.0.0.1:{server.port}/"

    trusting = httpx.create_ssl_context(verify=str(cert_path))
    async with httpx.AsyncClient(transport=AsyncioTransport(ssl_context=trusting)) as client:
        answers = [await client.get(url) for _ in range(2)]
    assert [answer.json() for answer in answers] == [{"secure": True}] * 2
    assert server.connections == 1

    async with httpx.AsyncClient(transport=AsyncioTransport(ssl_context=httpx.create_ssl_context())) as client:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await client.get(url)


async def test_poolsets_use_it_unless_a_proxy_is_configured(serve, monkeypatch) -> None:
    async def refuse(request: h11.Request, body: bytes) -> Answer:
        return 403, [], b""

    proxy = await serve(refuse)
    direct = await serve(answering())
    pools = PoolSet.build(transport=None, timeout=httpx.Timeout(10), headers=None, max_concurrency=1)
    with pools.lease() as client:
        assert (await client.get(f"http://127.0.0.1:{direct.port}/")).status_code == 200
    await pools.aclose()

    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.port}")
    pools = PoolSet.build(transport=None, timeout=httpx.Timeout(10), headers=None, max_concurrency=1)
    with pools.lease() as client:
        with pytest.raises(httpx.ProxyError):
            await client.get("https://api.example.test/agents")
    await pools.aclose()
    assert proxy.requests == [("CONNECT", "api.example.test:443", b"")]  # tunnelled by httpx's own transport
    assert direct.connections == 1
