"""Which Prefect API a command uses, and Prefect's own chatter kept off our commands' terminal.

Read-only commands (`status`, `audit`, `emulate`, `onboard --plan`) never import Prefect. A command
that runs a flow calls `use_prefect_api()` first: the API the settings name (`PREFECT_API_URL`, a
profile), else a Prefect server already running at the default local address (`presence-sync server`),
else Prefect's temporary server, which takes 5-30 s to start. It prints one line saying which.

    apply_quiet_defaults()              # cli/main.py, before anything imports prefect
    use_prefect_api()                   # "Prefect: the server at http://127.0.0.1:4200 ..."
    state = asyncio.run(onboard_flow(...))
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass

import httpx

LOCAL_HOST = "127.0.0.1"
LOCAL_PORT = 4200
LOCAL_API_URL = f"http://{LOCAL_HOST}:{LOCAL_PORT}/api"
LOCAL_UI_URL = f"http://{LOCAL_HOST}:{LOCAL_PORT}"
PROBE_TIMEOUT_SECONDS = 0.3

CONSOLE_LEVEL = "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"

QUIET_DEFAULTS: dict[str, str] = {
    # Without it a temporary server logs an ERROR traceback ("database is locked") from its telemetry
    # heartbeat, or "Failed to send telemetry" on a machine without internet.
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",  # the client side of the same telemetry
    # The terminal gets warnings and errors; INFO run logs still go to the API (the UI shows them).
    CONSOLE_LEVEL: "WARNING",
    # A temporary server takes 5-30 s to start on a busy 2-core machine; Prefect's default wait is shorter.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}
"""Environment defaults for every command; a value the user's environment sets wins."""

# Flow- and task-run state lines ("Task run ... Finished in state Failed(...)", a flow's exception with
# its traceback) repeat what the command prints as its report; they stay in the API and the UI.
_RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")
# Prefect's background services warn "Still processing items" while they flush at exit.
_SERVICE_LOGGERS = ("EventsWorker", "APILogWorker")


def apply_quiet_defaults(environ: MutableMapping[str, str] | None = None) -> None:
    """Set `QUIET_DEFAULTS` where the environment says nothing. Call before anything imports prefect."""
    environ = os.environ if environ is None else environ
    for name, value in QUIET_DEFAULTS.items():
        environ.setdefault(name, value)


@dataclass(frozen=True)
class PrefectApi:
    """The API a command's flow runs report to; `url` None means Prefect's temporary server."""

    url: str | None
    source: str  # "settings", "local server" or "temporary server"

    @property
    def line(self) -> str:
        """What the command says about it (one line), or "" when the settings chose it."""
        if self.source == "local server":
            return f"Prefect: using the server at {LOCAL_UI_URL} (flow runs and artifacts in its UI)"
        if self.source == "temporary server":
            return (
                "Prefect: starting a temporary server for this command (5-30 s); "
                "run `presence-sync server` in another terminal for fast commands"
            )
        return ""


def local_server_answers(url: str = LOCAL_API_URL, timeout: float = PROBE_TIMEOUT_SECONDS) -> bool:
    """True when a Prefect server answers `url`/health within `timeout` seconds."""
    try:
        response = httpx.get(f"{url}/health", timeout=timeout, trust_env=False)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def use_prefect_api(say: Callable[[str], None] | None = None, *, probe_url: str = LOCAL_API_URL) -> PrefectApi:
    """Point this process at the Prefect API its flow runs should use, and say which (see module doc).

    Imports prefect: call it right before a command runs its flow.
    """
    from prefect.context import refresh_global_settings_context
    from prefect.settings import get_current_settings

    configured = get_current_settings().api.url
    if configured:
        api = PrefectApi(str(configured), "settings")
    elif local_server_answers(probe_url):
        os.environ["PREFECT_API_URL"] = probe_url
        refresh_global_settings_context()  # Prefect read its settings at import, before this
        api = PrefectApi(probe_url, "local server")
    else:
        api = PrefectApi(None, "temporary server")
    keep_run_logs_off_the_terminal()
    if api.line:
        (say or _say)(api.line)
    return api


class _NotForTheTerminal(logging.Filter):
    """Drops run-state lines and service chatter from Prefect's console handler (not from the API's)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith(_RUN_LOGGERS):
            return False
        return not (record.name in _SERVICE_LOGGERS and record.levelno < logging.ERROR)


def keep_run_logs_off_the_terminal() -> None:
    """Filter Prefect's console handler while it is set to WARNING or above (our default). A user who
    sets `PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL=INFO` or `DEBUG` gets Prefect's full output back."""
    import prefect.main  # noqa: F401  (sets up Prefect's logging, and with it the console handler)
    from prefect.logging.handlers import PrefectConsoleHandler

    for handler in logging.getLogger().handlers:
        if not isinstance(handler, PrefectConsoleHandler) or handler.level < logging.WARNING:
            continue
        if not any(isinstance(existing, _NotForTheTerminal) for existing in handler.filters):
            handler.addFilter(_NotForTheTerminal())


def _say(line: str) -> None:
    from rich.console import Console

    Console(stderr=True, highlight=False).print(line, style="dim", markup=False, soft_wrap=True)
