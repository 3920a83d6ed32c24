"""The config's reading of a rule row's ACD state: the engine's rule syntax (`engine.states.AcdState`),
with its errors turned into config problems (path, line, fix).

    acd: PublisherAcdState     # a pydantic field: "Unavailable: Break" -> AcdState(UNAVAILABLE, "Break")
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import AfterValidator, GetCoreSchemaHandler
from pydantic_core import core_schema

from presence_sync.engine.states import ACD_SYNTAX, AcdState, AcdStateSyntaxError
from presence_sync.models.errors import config_problem


def _parse(value: Any) -> AcdState:
    if isinstance(value, AcdState):
        return value
    if not isinstance(value, str):
        raise config_problem("must be an ACD state as text", f"use {ACD_SYNTAX}")
    return _as_config_problem(AcdState.parse, value)


def _as_config_problem(check: Callable[[Any], Any], value: Any) -> Any:
    """`check(value)`, its `AcdStateSyntaxError` raised as the config problem it describes."""
    try:
        return check(value)
    except AcdStateSyntaxError as error:
        raise config_problem(error.problem, error.fix) from None


class _AsRuleText:
    """Pydantic schema: validated from rule text, written back as rule text."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: type[Any], handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            _parse,
            serialization=core_schema.to_string_ser_schema(),
            json_schema_input_schema=core_schema.str_schema(),
        )


def _usable_as(check: Callable[[AcdState], Any]) -> AfterValidator:
    def usable(acd: AcdState) -> AcdState:
        _as_config_problem(check, acd)
        return acd

    return AfterValidator(usable)


PublisherAcdState = Annotated[AcdState, _AsRuleText, _usable_as(AcdState.publisher_key)]
"""A publisher row's ACD state, written as rule text: any CXone state, not Previous State."""

SubscriberAcdState = Annotated[AcdState, _AsRuleText, _usable_as(AcdState.subscriber_target)]
"""A subscriber row's ACD state, written as rule text: Available, Unavailable[: code] or Previous State."""
