"""The config's reading of a rule's logout settings: the engine's syntax (`engine.logouts`), with its errors
turned into config problems (path, line, fix).

    on_cxone_logout: OnCxoneLogout    # "Offline" -> OMNI_OFFLINE, "On_Break", "nothing" -> None
    on_omni_logout: OnOmniLogout      # "Unavailable: Lunch" -> CxoneTarget.unavailable("Lunch"), "LoggedOut", ...
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

from presence_sync.engine import CxoneTarget, StateError
from presence_sync.engine.logouts import (
    ON_CXONE_LOGOUT_SYNTAX,
    ON_OMNI_LOGOUT_SYNTAX,
    on_cxone_logout_text,
    on_omni_logout_text,
    parse_on_cxone_logout,
    parse_on_omni_logout,
)
from presence_sync.engine.states import AcdStateSyntaxError
from presence_sync.models.config.base import developer_name_problem
from presence_sync.models.errors import config_problem


def _read_cxone_logout(value: Any) -> str | None:
    if not isinstance(value, str):
        raise config_problem("must be text", f"use {ON_CXONE_LOGOUT_SYNTAX}")
    try:
        target = parse_on_cxone_logout(value)
    except StateError:
        raise config_problem("is empty", f"use {ON_CXONE_LOGOUT_SYNTAX}") from None
    if target is not None and value.strip() == target and (problem := developer_name_problem(target)):
        raise config_problem(f"'{target}' {problem}", f"use {ON_CXONE_LOGOUT_SYNTAX}")
    return target


def _read_omni_logout(value: Any) -> CxoneTarget | None:
    if isinstance(value, CxoneTarget):
        return value
    if not isinstance(value, str):
        raise config_problem("must be text", f"use {ON_OMNI_LOGOUT_SYNTAX}")
    try:
        return parse_on_omni_logout(value)
    except AcdStateSyntaxError as error:
        raise config_problem(error.problem, error.fix) from None


def _setting(read: Callable[[Any], Any], write: Callable[[Any], str]) -> type:
    class _Setting:
        @classmethod
        def __get_pydantic_core_schema__(cls, source: type[Any], handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
            return core_schema.no_info_plain_validator_function(
                read,
                serialization=core_schema.plain_serializer_function_ser_schema(write),
                json_schema_input_schema=core_schema.str_schema(),
            )

    return _Setting


OnCxoneLogout = Annotated[str | None, _setting(_read_cxone_logout, on_cxone_logout_text)]
"""What a CXone logout does in Salesforce: `OMNI_OFFLINE`, a status DeveloperName, or None (nothing)."""

OnOmniLogout = Annotated[CxoneTarget | None, _setting(_read_omni_logout, on_omni_logout_text)]
"""What an Omni-Channel logout does in CXone: Unavailable[: code], LoggedOut, or None (nothing)."""
