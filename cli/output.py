"""What every command prints the same way, and the exit codes the README documents.

Exit codes: 0 success; 1 a step, hop or check failed; 2 a problem to fix in the config, credentials or
org settings (the message says what and where).

    table = report_table(whole("step"), whole("outcome"), "summary", title="Onboarding: 7 steps, all done")
    raise typer.Exit(exit_code_for(error))
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Column, Table
from rich.text import Text

SUCCESS = 0
FAILED = 1
TO_FIX = 2

ConfigArgument = Annotated[
    Path,
    typer.Argument(
        metavar="CONFIG", help="The contact center's config file (YAML; see examples/demo-contact-center.yaml)."
    ),
]


def print_error(error: Exception | str) -> None:
    """A problem that is the admin's to fix, on stderr, as written: `[sfdc_phone]` in a fix is text, not markup."""
    message = Text("error: ", style="bold red")
    message.append(str(error))
    Console(stderr=True).print(message, highlight=False, soft_wrap=True)


def exit_code_for(error: BaseException) -> int:
    """2 for a problem to fix in the config, credentials or org settings; 1 for a failure that may pass
    on a later run (a system that did not answer, a lost lease) and for anything unexpected."""
    from presence_sync.connectors import ConnectorError
    from presence_sync.engine import EngineError
    from presence_sync.models.config import ConfigError
    from presence_sync.models.store import LeaseLostError, StoreError

    if isinstance(error, ConnectorError):
        return FAILED if error.transient else TO_FIX
    if isinstance(error, LeaseLostError):
        return FAILED
    return TO_FIX if isinstance(error, (ConfigError, StoreError, EngineError)) else FAILED


def user_errors() -> tuple[type[BaseException], ...]:
    """Errors that carry a message for the admin (config, credentials, org settings, a system not
    answering): printed plainly, never as a traceback."""
    from presence_sync.connectors import ConnectorError
    from presence_sync.engine import EngineError
    from presence_sync.models.config import ConfigError
    from presence_sync.models.store import StoreError

    return (ConfigError, ConnectorError, StoreError, EngineError)


def flow_result(state: Any) -> Any:
    """What a flow run returned (a report even when the run ended Failed); an admin's problem is printed
    with its exit code instead of a traceback, anything else unexpected is raised."""
    result = state.result(raise_on_failure=False)
    if isinstance(result, user_errors()):  # e.g. a refused login
        print_error(result)
        raise typer.Exit(exit_code_for(result))
    if isinstance(result, BaseException):
        raise result
    return result


def whole(header: str) -> Column:
    """A column of names and figures ("Available_for_Chats", "0.82 s"): kept whole while the prose
    columns beside it wrap."""
    return Column(header, no_wrap=True, overflow="fold")


def report_table(*columns: str | Column, title: str | Text | None = None, **options: Any) -> Table:
    """A table that reads on an 80-column terminal: prose columns (plain headers) wrap between words,
    `whole(...)` columns keep their names in one piece, and nothing is ever cut off ("Available_f…")."""
    headers = [column if isinstance(column, Column) else Column(column, overflow="fold") for column in columns]
    return Table(*headers, title=title, title_justify="left", **options)
