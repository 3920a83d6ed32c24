"""Which Prefect API a command uses, the quiet defaults, `presence-sync server`, and help without `<bool>`."""

from __future__ import annotations

import http.server
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from presence_sync.cli import prefect_api
from presence_sync.cli.main import app
from presence_sync.cli.prefect_api import (
    QUIET_DEFAULTS,
    apply_quiet_defaults,
    keep_run_logs_off_the_terminal,
    local_server_answers,
    use_prefect_api,
)
from presence_sync.cli.server import DATABASE_URL, server_command


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        self.send_response(200 if self.path == "/api/health" else 404)
        self.end_headers()
        self.wfile.write(b"true")

    def log_message(self, *args: Any) -> None:
        return None


@contextmanager
def a_prefect_server() -> Iterator[str]:
    """Something that answers like a Prefect server's health check, on a free port: its API URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api"
    finally:
        server.shutdown()
        server.server_close()


def a_port_nobody_listens_on() -> str:
    with a_prefect_server() as url:
        pass
    return url


def test_quiet_defaults_fill_gaps_and_the_users_environment_wins() -> None:
    environ = {"PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "DEBUG"}

    apply_quiet_defaults(environ)

    assert environ["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] == "DEBUG"
    assert environ["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    assert set(QUIET_DEFAULTS) <= set(environ)


def test_the_probe_finds_a_running_server_quickly_and_nothing_where_none_runs() -> None:
    with a_prefect_server() as url:
        assert local_server_answers(url)
    assert not local_server_answers(a_port_nobody_listens_on())


@pytest.fixture
def no_api_in_the_settings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Settings that name no API, and a record of Prefect's settings being re-read (not done for real:
    it would replace a running test harness's settings for the rest of the session)."""
    import prefect.context
    import prefect.settings

    refreshed: list[str] = []
    monkeypatch.setattr(prefect.settings, "get_current_settings", lambda: SimpleNamespace(api=SimpleNamespace(url=None)))
    monkeypatch.setattr(prefect.context, "refresh_global_settings_context", lambda: refreshed.append("refreshed"))
    monkeypatch.setenv("PREFECT_API_URL", "placeholder")  # so the test's end restores "not set"
    monkeypatch.delenv("PREFECT_API_URL")
    return refreshed


def test_a_running_local_server_is_used_and_said_once(no_api_in_the_settings: list[str]) -> None:
    said: list[str] = []
    with a_prefect_server() as url:
        api = use_prefect_api(said.append, probe_url=url)

    assert api.url == url and api.source == "local server"
    assert prefect_api.os.environ["PREFECT_API_URL"] == url and no_api_in_the_settings == ["refreshed"]
    assert len(said) == 1 and "using the server at" in said[0]


def test_without_a_server_the_temporary_one_is_said_with_the_hint(no_api_in_the_settings: list[str]) -> None:
    said: list[str] = []

    api = use_prefect_api(said.append, probe_url=a_port_nobody_listens_on())

    assert api.url is None and api.source == "temporary server"
    assert "PREFECT_API_URL" not in prefect_api.os.environ and no_api_in_the_settings == []
    assert len(said) == 1 and "temporary server" in said[0] and "`presence-sync server`" in said[0]


def test_an_api_the_settings_name_is_used_without_a_word(prefect_harness: None) -> None:
    said: list[str] = []

    api = use_prefect_api(said.append, probe_url=a_port_nobody_listens_on())

    assert api.source == "settings" and api.url and said == []


def test_run_logs_stay_off_the_terminal_but_our_warnings_do_not() -> None:
    import prefect.main  # noqa: F401  (Prefect sets up its logging once, replacing the root's handlers)
    from prefect.logging.handlers import PrefectConsoleHandler

    class Recording(PrefectConsoleHandler):
        def __init__(self) -> None:
            super().__init__(level=logging.WARNING)
            self.shown: list[str] = []

        def emit(self, record: logging.LogRecord) -> None:
            if record.pathname == __file__:  # not what other tests' threads log meanwhile
                self.shown.append(record.getMessage())

    handler = Recording()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        keep_run_logs_off_the_terminal()
        for name, level, message in [
            ("prefect.flow_runs", logging.ERROR, "Encountered exception during execution"),
            ("prefect.task_runs", logging.ERROR, "Finished in state Failed()"),
            ("EventsWorker", logging.WARNING, "Still processing items: 3 items remaining..."),
            ("presence_sync.tasks.sync.runner", logging.WARNING, "presence-sync budget-stretched: ..."),
        ]:
            record = logging.LogRecord(name, level, __file__, 1, message, None, None)
            if handler.filter(record):
                handler.emit(record)
    finally:
        root.removeHandler(handler)

    assert handler.shown == ["presence-sync budget-stretched: ..."]


def test_the_server_command_runs_prefect_on_the_probed_address_with_analytics_off() -> None:
    environ = {"PREFECT_HOME": "/srv/prefect-home", "PREFECT_API_URL": "http://elsewhere/api", "PATH": "/usr/bin"}

    argv, env = server_command(environ)

    assert argv[1:] == ["-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", "4200"]
    assert env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    assert env["PREFECT_HOME"] == "/srv/prefect-home" and env["PATH"] == "/usr/bin"
    assert "PREFECT_API_URL" not in env and DATABASE_URL not in env

    _, on_postgres = server_command(environ, "postgresql+asyncpg://prefect@db:5432/prefect")
    assert on_postgres[DATABASE_URL] == "postgresql+asyncpg://prefect@db:5432/prefect"
    _, from_environment = server_command({DATABASE_URL: "postgresql+asyncpg://x@y/z"})
    assert from_environment[DATABASE_URL] == "postgresql+asyncpg://x@y/z"


@pytest.mark.parametrize("command", [[], ["onboard"], ["sync"], ["validate"], ["server"]])
def test_help_shows_flags_without_a_value_type(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "80"})

    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output
    assert "--help" in result.output
