"""`presence-sync emulate` as a real subprocess, for the contract tests of apis.md.

One emulator process per test session (per xdist worker), on free loopback ports; every test starts
from freshly reset emulators (`POST /__emulator/reset` on both), so test order does not matter.
Nothing here imports the project's own packages: the tests see the emulators only over HTTP.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Enough agents that User has more than 2,000 rows (every 50th agent has no Salesforce user):
# 2,100 - 42 + the integration user + 2 supervisors = 2,061, so a User query needs two pages.
AGENTS = 2100
SEED = 7
STARTUP_TIMEOUT_S = 60


@dataclass(frozen=True)
class Emulate:
    """Where the running `presence-sync emulate` answers."""

    salesforce_port: int
    cxone_port: int
    agents: int
    seed: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def sf_login_url(self) -> str:
        """The generic login host (apis.md: `127.0.0.1:{port}` on loopback)."""
        return f"http://127.0.0.1:{self.salesforce_port}"

    @property
    def sf_my_domain_url(self) -> str:
        """The org's My Domain (apis.md: `localhost:{port}` on loopback)."""
        return f"http://localhost:{self.salesforce_port}"

    @property
    def cxone_url(self) -> str:
        return f"http://127.0.0.1:{self.cxone_port}"

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _command(salesforce_port: int, cxone_port: int) -> list[str]:
    script = Path(sys.executable).parent / "presence-sync"
    head = [str(script)] if script.exists() else [sys.executable, "-m", "presence_sync.cli.main"]
    return [*head, "emulate", "--host", "127.0.0.1", "--salesforce-port", str(salesforce_port),
            "--cxone-port", str(cxone_port), "--agents", str(AGENTS), "--seed", str(SEED)]


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/__emulator/stats", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)  # `emulate` stops cleanly on Ctrl+C
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _start(log_dir: Path) -> Emulate:
    failures: list[str] = []
    for attempt in range(3):  # a free port may be taken between choosing it and the server binding it
        salesforce_port, cxone_port = _free_ports(2)
        log_path = log_dir / f"emulate-{attempt}.log"
        log = log_path.open("wb")
        process = subprocess.Popen(
            _command(salesforce_port, cxone_port), cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"},
        )
        log.close()
        running = Emulate(salesforce_port, cxone_port, AGENTS, SEED, process, log_path)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline and process.poll() is None:
            if _answers(running.sf_login_url) and _answers(running.cxone_url):
                return running
            time.sleep(0.1)
        _stop(process)
        failures.append(f"attempt {attempt + 1} (ports {salesforce_port}/{cxone_port}):\n{running.log()}")
    raise RuntimeError("presence-sync emulate did not start:\n" + "\n".join(failures))


@pytest.fixture(scope="session")
def emulate() -> Iterator[Emulate]:
    with tempfile.TemporaryDirectory(prefix="presence-sync-emulate-") as log_dir:
        running = _start(Path(log_dir))
        try:
            yield running
        finally:
            _stop(running.process)
        assert running.process.returncode is not None


@pytest.fixture(scope="session")
def _control_client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as client:
        yield client


@pytest.fixture(autouse=True)
def fresh_emulators(request: pytest.FixtureRequest, emulate: Emulate, _control_client: httpx.Client) -> Iterator[None]:
    """Each test starts from freshly seeded emulators: no faults, default org settings, seed SEED.

    A `test_sf_*` test only talks to Salesforce and a `test_cx_*` one only to CXone, so only that
    emulator is reset (a reset of 2,100 agents is the slowest part of a short test); any other test
    gets both.
    """
    name = request.node.name
    urls = {"test_sf_": [emulate.sf_login_url], "test_cx_": [emulate.cxone_url]}.get(
        name[:8], [emulate.sf_login_url, emulate.cxone_url])
    for url in urls:
        answer = _control_client.post(f"{url}/__emulator/reset", json={"seed": SEED})
        assert answer.status_code == 200, answer.text
    yield
    assert emulate.process.poll() is None, f"presence-sync emulate exited:\n{emulate.log()}"


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as client:
        yield client
