"""Config errors an admin can act on: every problem says where it is, what is wrong and how to fix it.

Validators raise `config_problems(...)`; `problems_from_validation_error` turns pydantic's error list
(including those) into `ConfigProblem`s with YAML-style paths such as `rule.subscriber[3].acd`.
No problem text ever carries a config value that could be a secret, and none is long or unprintable:
whatever a value or key in the file holds, a message quotes at most `SHOWN_CHARS` of it.
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from presence_sync.engine.errors import closest, did_you_mean

# The problem vocabulary is the credentials models' (connectors/credentials.py); the config layer raises
# and reads the same errors, so it is re-exported here for every config model.
from presence_sync.connectors.credentials import (
    CONFIG_PROBLEMS_ERROR,
    Loc,
    config_problem,
    config_problems,
    format_path,
)

__all__ = [
    "CONFIG_PROBLEMS_ERROR",
    "ConfigError",
    "ConfigProblem",
    "Loc",
    "SHOWN_CHARS",
    "SecretReferenceError",
    "closest",
    "config_problem",
    "config_problems",
    "did_you_mean",
    "format_path",
    "problems_from_validation_error",
    "shorten",
]

SHOWN_CHARS = 80  # of one word (a key, a value, a name) quoted in a message
_MESSAGE_CHARS = 400  # of a whole path, problem or fix
_LONG_WORD = re.compile(rf"\S{{{SHOWN_CHARS + 1},}}")


def shorten(text: str, limit: int = SHOWN_CHARS) -> str:
    """`text` as a message may quote it: unprintable characters escaped, the middle left out when long.

    Example:
        shorten("x" * 100_000)   # 'xxxxxxxxxxxxxxxxxxxxxxxxxx…(99,950 characters)…xxxxxxxxxxxxxxxxxxxxxxxx'
    """
    text = "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)
    if len(text) <= limit:
        return text
    kept = max(2, limit - 20)
    head, tail = text[: kept - kept // 2], text[len(text) - kept // 2 :]
    return f"{head}…({len(text) - len(head) - len(tail):,} characters)…{tail}"


def _readable(text: str) -> str:
    """A message part with every overlong word, then the whole, shortened (a hostile file's keys and values)."""
    return shorten(_LONG_WORD.sub(lambda word: shorten(word.group()), text), _MESSAGE_CHARS)


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in a config: `path: problem -> fix`, with the YAML line when known.

    Long keys and values quoted in the path, problem or fix are shortened here, once for every producer.
    """

    path: str
    problem: str
    fix: str
    line: int | None = None

    def __post_init__(self) -> None:
        for name in ("path", "problem", "fix"):
            object.__setattr__(self, name, _readable(getattr(self, name)))

    def __str__(self) -> str:
        where = self.path or "(config)"
        if self.line is not None:
            where += f" (line {self.line})"
        return f"{where}: {self.problem} -> {self.fix}"


class ConfigError(Exception):
    """The config can't be used. `str()` lists every problem, one `path: problem -> fix` per line.

    Example:
        try:
            config = load_config("contact-center.yaml")
        except ConfigError as error:
            print(error)   # contact-center.yaml: 1 problem ... - rule.teams: ...
    """

    def __init__(self, problems: Sequence[ConfigProblem], *, source: str | None = None) -> None:
        self.problems = tuple(problems)
        self.source = source
        super().__init__(self._render())

    def _render(self) -> str:
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in the presence-sync config"
        if self.source:
            head = f"{self.source}: {head}"
        return "\n".join([head + ":", *(f"  - {problem}" for problem in self.problems)])


class SecretReferenceError(ConfigError):
    """A secret reference (`prefect-secret:<block>`) could not be resolved when it was used."""




def problems_from_validation_error(
    error: ValidationError,
    root: type[BaseModel],
    line_of: Callable[[Loc], int | None] = lambda loc: None,
) -> list[ConfigProblem]:
    """Translate pydantic's errors for `root` into admin-readable problems (no input values)."""
    problems: list[ConfigProblem] = []
    for detail in error.errors(include_input=False, include_url=False):
        loc, owner, field = _walk(root, tuple(detail["loc"]))
        if detail["type"] == CONFIG_PROBLEMS_ERROR:
            for at, problem, fix in detail["ctx"]["problems"]:
                full = loc + tuple(at)
                problems.append(ConfigProblem(format_path(full), problem, fix, line_of(full)))
            continue
        if detail["type"] in ("union_tag_not_found", "union_tag_invalid"):
            loc += (str(detail["ctx"]["discriminator"]).strip("'"),)
        problem, fix = _explain(detail, owner, field, loc)
        problems.append(ConfigProblem(format_path(loc), problem, fix, line_of(loc)))
    return _unique(problems)


def _unique(problems: list[ConfigProblem]) -> list[ConfigProblem]:
    seen: set[tuple[str, str]] = set()
    unique = []
    for problem in problems:
        if (problem.path, problem.problem) not in seen:
            seen.add((problem.path, problem.problem))
            unique.append(problem)
    return unique


def _explain(detail: Any, owner: type[BaseModel] | None, field: FieldInfo | None, loc: Loc) -> tuple[str, str]:
    kind: str = detail["type"]
    ctx: dict[str, Any] = detail.get("ctx") or {}
    message: str = detail["msg"]
    key = loc[-1] if loc else ""
    if kind == "missing":
        hint = f" ({field.description})" if field is not None and field.description else ""
        return "required setting is missing", f"add `{key}:`{hint}"
    if kind == "extra_forbidden":
        allowed = sorted(owner.model_fields) if owner else []
        suggestion = did_you_mean(str(key), allowed)
        return f"unknown setting '{key}'", f"{suggestion}remove or rename it; allowed here: {', '.join(allowed)}"
    if kind in ("union_tag_not_found", "union_tag_invalid"):
        tags = list(_tagged_members(field.annotation)) if field is not None else []
        options = ", ".join(tags)
        if kind == "union_tag_not_found":
            return "is missing", f"add `{key}:` with one of: {options}"
        tag = str(ctx.get("tag", ""))
        return f"'{tag}' is not supported", f"{did_you_mean(tag, tags)}use one of: {options}"
    if kind in ("literal_error", "enum"):
        return "is not one of the allowed values", f"use {ctx.get('expected', 'an allowed value')}"
    if kind in ("string_type", "string_sub_type"):
        return "must be text", "put the value in quotes, e.g. 'value' (YAML reads yes/no/on/off and bare numbers as other types)"
    if kind == "string_too_short" and ctx.get("min_length") == 1:
        return "must not be empty", "fill in a value or remove the key"
    if kind == "too_short":
        return f"must list at least {ctx.get('min_length', 1)} item(s)", "add the missing entries"
    if kind in ("bool_type", "bool_parsing"):
        return "must be true or false", "write true or false"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "must be a group of settings", f"indent `key: value` lines under `{key}:`"
    if kind in ("list_type", "tuple_type"):
        return "must be a list", "write one `- item` per line under the key, or [a, b]"
    plain = message.removeprefix("Value error, ").removeprefix("Input should be ").removeprefix("Input ")
    if message.startswith("Input should be "):
        plain = f"must be {plain}"
    return plain, "change the value"


def _walk(root: type[BaseModel], loc: Loc) -> tuple[Loc, type[BaseModel] | None, FieldInfo | None]:
    """Follow a pydantic loc through the model tree.

    Returns the loc as the admin sees it (pydantic's union tags dropped), the model that owns the last
    key, and that key's field info (for `missing` hints and `did you mean`).
    """
    shown: list[str | int] = []
    current: Any = root
    owner: type[BaseModel] | None = None
    field: FieldInfo | None = None
    for item in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            owner, field = current, current.model_fields.get(item) if isinstance(item, str) else None
            current = field.annotation if field is not None else None
            shown.append(item)
            continue
        origin = get_origin(current)
        if origin in (tuple, list) and isinstance(item, int):
            current = get_args(current)[0]
            shown.append(item)
            continue
        if origin in (Union, types.UnionType):
            member = _tagged_members(current).get(item) if isinstance(item, str) else None
            if member is not None:
                current = member
                continue
        shown.append(item)
        current = None
    return tuple(shown), owner, field


def _unwrap(annotation: Any) -> Any:
    """Strip `Annotated[...]` and `X | None` down to the type that validates."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            members = [member for member in get_args(annotation) if member is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def _tagged_members(union: Any) -> dict[str, type[BaseModel]]:
    """{tag: model} for a discriminated union of models (each with one Literal-typed field)."""
    members: dict[str, type[BaseModel]] = {}
    for member in get_args(_unwrap(union)):
        member = _unwrap(member)
        if not (isinstance(member, type) and issubclass(member, BaseModel)):
            continue
        for info in member.model_fields.values():
            annotation = _unwrap(info.annotation)
            if get_origin(annotation) is Literal:
                members.update((str(tag), member) for tag in get_args(annotation))
    return members
