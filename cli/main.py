"""The `presence-sync` command line. Each command runs the same Prefect flow its deployment runs.

    presence-sync demo
    presence-sync onboard examples/demo-contact-center.yaml --plan
"""

from __future__ import annotations

import sys

from presence_sync.cli.prefect_api import apply_quiet_defaults

# Prefect reads its settings when it is imported: our quiet defaults (analytics off, its console at
# WARNING, a generous start-up wait for a temporary server) go first; the user's environment wins.
apply_quiet_defaults()

import typer  # noqa: E402

from presence_sync.cli import (  # noqa: E402
    alerts,
    demo,
    emulate,
    gateway,
    onboard,
    serve,
    server,
    set_agent,
    sync,
    validate,
)
from presence_sync.cli.output import exit_code_for, print_error, user_errors  # noqa: E402
from presence_sync.cli.typer_help import FlagsWithoutTypes  # noqa: E402

app = typer.Typer(
    name="presence-sync",
    help="Keep agent presence the same in NICE CXone and Salesforce Omni-Channel, and set it up.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=FlagsWithoutTypes.group,
)


@app.callback()
def _root() -> None:
    """Keeps `presence-sync COMMAND` a command group even while one command is registered."""


for command_module in (emulate, server, onboard, demo, serve, validate, sync, set_agent, gateway, alerts):
    command_module.register(app)
for command_info in app.registered_commands:
    command_info.cls = FlagsWithoutTypes.command


def main() -> None:
    try:
        app()
    except user_errors() as error:
        print_error(error)
        sys.exit(exit_code_for(error))


if __name__ == "__main__":
    main()
