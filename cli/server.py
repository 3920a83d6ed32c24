"""`presence-sync server`: a Prefect server for our commands, in the foreground, with the right settings.

With it running, every command finds it at http://127.0.0.1:4200 and starts in about a second instead
of waiting 5-30 s for a temporary server; its UI shows every flow run and artifact.

    presence-sync server                                   # SQLite in PREFECT_HOME (~/.prefect)
    presence-sync server --database-url postgresql+asyncpg://prefect:...@db:5432/prefect
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Annotated

import typer
from rich.console import Console

from presence_sync.cli.prefect_api import LOCAL_HOST, LOCAL_PORT, LOCAL_UI_URL, QUIET_DEFAULTS, local_server_answers

console = Console(highlight=False)

DATABASE_URL = "PREFECT_SERVER_DATABASE_CONNECTION_URL"


def server_command(
    environ: Mapping[str, str], database_url: str | None = None, port: int = LOCAL_PORT
) -> tuple[list[str], dict[str, str]]:
    """The `prefect server start` command line and its environment.

    Loopback on the port our commands probe, analytics off, PREFECT_HOME as the environment has it (the
    temporary servers' runs are in the same database), PostgreSQL when a connection URL is given.
    """
    env = dict(environ)
    for name, value in QUIET_DEFAULTS.items():
        env.setdefault(name, value)
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    env.pop("PREFECT_API_URL", None)  # the server is the API; a stale URL must not point it elsewhere
    if database_url:
        env[DATABASE_URL] = database_url
    argv = [sys.executable, "-m", "prefect", "server", "start", "--host", LOCAL_HOST, "--port", str(port)]
    return argv, env


def server(
    database_url: Annotated[
        str | None,
        typer.Option(
            help=f"The server's database, e.g. postgresql+asyncpg://user:pass@host/db (default: ${DATABASE_URL}, "
            "else SQLite in PREFECT_HOME)."
        ),
    ] = None,
) -> None:
    """Run a Prefect server on 127.0.0.1:4200 until Ctrl+C; the other commands use it and start fast."""
    if local_server_answers():
        console.print(f"A Prefect server already answers at {LOCAL_UI_URL}: the commands use it.")
        return
    argv, env = server_command(os.environ, database_url)
    url = env.get(DATABASE_URL, "")
    database = "SQLite in PREFECT_HOME" if not url else "PostgreSQL" if url.startswith("postgresql") else f"${DATABASE_URL}"
    console.print(f"Prefect server on {LOCAL_UI_URL} ({database}): presence-sync commands use it. Ctrl+C stops it.",
                  soft_wrap=True)
    sys.stdout.flush()
    os.execve(argv[0], argv, env)  # the server in this terminal, in the foreground, with its own Ctrl+C


def register(app: typer.Typer) -> None:
    app.command()(server)
