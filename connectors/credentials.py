"""What both vendors' credentials models share: their base model, and problems that name their fix.

A credentials model is strict (unknown settings are errors), frozen, keeps inputs out of its errors
and refuses empty secrets. Its validators raise `config_problem(...)`: where, what is wrong and how
to fix it. The config loader (models/errors.py) turns those into `salesforce.login_url (line 4):
problem -> fix` lines; code that builds credentials directly reads the same text in the
ValidationError.

    class Example(CredentialsModel):
        tenant_id: str | None = None
        discovery_url: str = "https://cxone.niceincontact.com"

        @model_validator(mode="after")
        def _discovery_needs_a_tenant(self) -> Self:
            if self.tenant_id is None and "discovery_url" in self.model_fields_set:
                raise config_problem("is only used with tenant_id", "add tenant_id", at="discovery_url")
            return self
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Self

from pydantic import BaseModel, ConfigDict, SecretStr, model_validator
from pydantic_core import PydanticCustomError

Loc = tuple[str | int, ...]

CONFIG_PROBLEMS_ERROR = "config_problems"


def format_path(loc: Iterable[str | int]) -> str:
    """`("rule", "subscriber", 3, "acd")` -> `rule.subscriber[3].acd`."""
    path = ""
    for item in loc:
        path += f"[{item}]" if isinstance(item, int) else (f".{item}" if path else str(item))
    return path


def config_problem(problem: str, fix: str, *, at: Loc | str = ()) -> PydanticCustomError:
    """An error for pydantic validators: one problem at `at`, relative to the value being validated.

    Example:
        raise config_problem("an online status needs a channel", "list channels", at="channels")
    """
    return config_problems((at, problem, fix))


def config_problems(*problems: tuple[Loc | str, str, str]) -> PydanticCustomError:
    """An error for pydantic validators: each problem is (relative loc, problem, fix).

    The loc is relative to the value being validated (a field name, a tuple such as
    `("subscriber", 3, "acd")`, or `()` for the value itself).

    Example:
        raise config_problems(("channels", "an online status needs a channel", "list channels"))
    """
    normalized = tuple(((at,) if isinstance(at, str) else tuple(at), problem, fix) for at, problem, fix in problems)
    summary = "; ".join(f"{format_path(at) or 'value'}: {problem} -> {fix}" for at, problem, fix in normalized)
    return PydanticCustomError(CONFIG_PROBLEMS_ERROR, "{summary}", {"summary": summary, "problems": normalized})


class CredentialsModel(BaseModel):
    """Base of the credentials models (and of the config sections that extend them)."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    @model_validator(mode="after")
    def _no_empty_secret(self) -> Self:
        # bool(), not get_secret_value(): a secret read lazily (a Prefect block) must not be read here.
        values = {name: getattr(self, name) for name in type(self).model_fields}
        empty = [name for name, value in values.items() if isinstance(value, SecretStr) and not value]
        if empty:
            raise ValueError(f"{' and '.join(empty)} must not be empty")
        return self
