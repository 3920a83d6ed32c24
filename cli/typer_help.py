"""Help pages without a value type after a flag: `--plan` takes no value, so no `--plan <bool>`.

Typer shows every option's type, flags' `<bool>` included, which reads as if the flag wanted a value.

    app = typer.Typer(cls=FlagsWithoutTypes.group)
    app.command(cls=FlagsWithoutTypes.command)(onboard)   # cli/main.py sets it for every command
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperCommand, TyperGroup


def _blank_flag_types(command: Any, ctx: Any) -> None:
    for param in command.get_params(ctx):
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""  # typer shows a set metavar instead of the type


class _Command(TyperCommand):
    def format_help(self, ctx: Any, formatter: Any) -> None:
        _blank_flag_types(self, ctx)
        super().format_help(ctx, formatter)


class _Group(TyperGroup):
    def format_help(self, ctx: Any, formatter: Any) -> None:
        _blank_flag_types(self, ctx)
        super().format_help(ctx, formatter)


class FlagsWithoutTypes:
    """The command and group classes to pass as `cls=`."""

    command = _Command
    group = _Group
