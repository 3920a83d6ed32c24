"""Serve emulator apps on loopback from a background thread (tests, demo, `presence-sync emulate`).

    with serve_in_thread(create_salesforce_app(), host="127.0.0.1", port=0) as server:
        httpx.get(f"{server.url}/__emulator/stats")
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn

from presence_sync.emulators.faults import DroppedConnection


class _HideInjectedDrops(logging.Filter):
    """An injected dropped connection is the emulator working as asked, not an error worth a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DroppedConnection)


logging.getLogger("uvicorn.error").addFilter(_HideInjectedDrops())


@dataclass
class RunningServer:
    host: str
    port: int
    server: uvicorn.Server
    thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def cpu_seconds(self) -> float:
        """CPU time the serving thread has used so far (benchmarks: how busy the emulator was)."""
        assert self.thread.ident is not None
        return time.clock_gettime(time.pthread_getcpuclockid(self.thread.ident))

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_in_thread(app: Any, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    """Start `app` under uvicorn in a daemon thread; port 0 picks a free port. Returns once it accepts."""
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only for a socket that says
    # it is TCP; without it every answer waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(
            f"cannot listen on {host}:{port}: {exc.strerror}. Pick another port (--salesforce-port/--cxone-port)."
        ) from exc
    bound_port = sock.getsockname()[1]
    # httptools: uvicorn's C parser. With its pure-Python h11 parser an emulator spent a third of its
    # CPU per request parsing and framing; at 10,000 agents both emulators share one interpreter.
    config = uvicorn.Config(
        app, http="httptools", log_level="warning", access_log=False, lifespan="on", timeout_keep_alive=30
    )
    server = uvicorn.Server(config)
    ready = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        async def main() -> None:
            task = asyncio.create_task(server.serve(sockets=[sock]))
            while not server.started and not task.done():
                await asyncio.sleep(0.01)
            ready.set()
            await task

        try:
            asyncio.run(main())
        except BaseException as exc:  # surfaced to the starting thread below
            failure.append(exc)
            ready.set()

    thread = threading.Thread(target=run, name=f"emulator-{bound_port}", daemon=True)
    thread.start()
    ready.wait(timeout=30)
    if failure or not server.started:
        raise RuntimeError(f"emulator on {host}:{bound_port} did not start: {failure[0] if failure else 'timeout'}")
    return RunningServer(host=host, port=bound_port, server=server, thread=thread)


@contextmanager
def serve_in_thread(app: Any, host: str = "127.0.0.1", port: int = 0) -> Iterator[RunningServer]:
    running = start_in_thread(app, host, port)
    try:
        yield running
    finally:
        running.stop()
