"""The `presence-sync` command line. Each command runs the same Prefect flow its deployment runs.

    presence-sync demo
    presence-sync onboard examples/demo-contact-center.yaml --plan
"""

from __future__ import annotations

import os
import sys

# The ephemeral Prefect API (no PREFECT_API_URL) takes 5-30 s to start on a 2-core machine; Prefect's
# default wait is shorter than that. Set before anything imports prefect.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

import typer

from presence_sync.cli import demo, emulate, onboard, serve, set_agent, sync, validate
from presence_sync.cli.output import print_error

app = typer.Typer(
    name="presence-sync",
    help="Keep agent presence the same in NICE CXone and Salesforce Omni-Channel, and set it up.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Keeps `presence-sync COMMAND` a command group even while one command is registered."""


for command_module in (emulate, onboard, demo, serve, validate, sync, set_agent):
    command_module.register(app)


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors that are the user's to fix (config, credentials, org settings): a message, not a traceback."""
    from presence_sync.connectors import ConnectorError
    from presence_sync.models.config import ConfigError
    from presence_sync.models.store import StoreError

    return (ConfigError, ConnectorError, StoreError)


def main() -> None:
    try:
        app()
    except _user_errors() as error:
        print_error(error)
        sys.exit(2)


if __name__ == "__main__":
    main()
