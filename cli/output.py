"""What every command prints the same way."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text


def print_error(error: Exception | str) -> None:
    """A problem that is the admin's to fix, on stderr, as written: `[sfdc_phone]` in a fix is text, not markup."""
    message = Text("error: ", style="bold red")
    message.append(str(error))
    Console(stderr=True).print(message, highlight=False, soft_wrap=True)
