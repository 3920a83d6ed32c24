"""Reading config YAML safely: bounded work and memory, duplicate keys refused, lines remembered.

A config file may be broken or hostile; whatever it holds, reading it ends quickly with the data or
with a `ConfigError` naming the path, the line and the fix. The limits are far above any real
contact center's config (the demo's is 8 KB, 225 values, 5 levels deep):

- `MAX_CONFIG_CHARS`: longer text is refused before it is parsed;
- `MAX_NESTING`: deeper values are refused while parsing (PyYAML composes nodes recursively);
- `MAX_VALUES`: values counted as the data would hold them, every use of an alias (`*name`) in
  full, so an alias bomb ("billion laughs") is refused before anything expands it.

Example:
    data, line_of = read_yaml(text, source="contact-center.yaml")
    line_of(("rule", "publisher", 3, "acd"))   # -> 58
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml

from presence_sync.models.errors import ConfigError, ConfigProblem, Loc, format_path, shorten

MAX_CONFIG_CHARS = 512 * 1024
MAX_NESTING = 32
MAX_VALUES = 50_000

EXAMPLE_CONFIG = "examples/demo-contact-center.yaml"
_QUOTING_FIX = "check indentation and quoting; a value containing ': ' or ' #' needs quotes, e.g. acd: \"Unavailable: Break\""
_KEY_STEP = "?"  # the path step shown for something inside a mapping key, which has no name


class _Refused(Exception):
    """Reading stopped at one problem (raised from inside PyYAML's composer or constructor)."""

    def __init__(self, problem: ConfigProblem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def read_yaml(text: str, source: str) -> tuple[dict[str, Any], Callable[[Loc], int | None]]:
    """The config mapping in `text`, and the YAML line of any path in it; raises `ConfigError`.

    Example:
        data, line_of = read_yaml("sync: {window_minutes: 10}\\n", source="inline")
    """
    if len(text) > MAX_CONFIG_CHARS:
        raise file_error(source, too_large_problem())
    loader: _BoundedLoader | None = None
    try:
        loader = _BoundedLoader(text)  # the reader checks every character here
        root = loader.get_single_node()
        duplicates = _check_graph(root)
        if duplicates:
            raise ConfigError(duplicates, source=source)
        data = loader.construct_document(root) if root is not None else None
    except _Refused as refused:
        raise file_error(source, refused.problem) from None
    except yaml.reader.ReaderError as error:
        raise file_error(source, _bad_character_problem(text, error)) from None
    except yaml.MarkedYAMLError as error:
        raise file_error(source, _yaml_error_problem(error)) from None
    except yaml.YAMLError as error:
        raise file_error(source, ConfigProblem("", f"YAML error ({type(error).__name__})", "check the file's syntax")) from None
    finally:
        if loader is not None:
            loader.dispose()
    if data is None:
        raise file_error(source, ConfigProblem("", "the file is empty", f"start from {EXAMPLE_CONFIG}"))
    if not isinstance(data, dict):
        fix = "start with salesforce:, cxone:, statuses:, rule:"
        raise file_error(source, ConfigProblem("", "the file must be a mapping of settings", fix))
    return data, lambda loc: _line_of(root, loc)


def too_large_problem() -> ConfigProblem:
    """The problem reported for a file over `MAX_CONFIG_CHARS` (also checked while reading bytes)."""
    problem = f"the file is larger than {MAX_CONFIG_CHARS // 1024} KB, far more than any contact center's config"
    return ConfigProblem("", problem, f"check that this is the config file; start from {EXAMPLE_CONFIG}")


def file_error(source: str, problem: ConfigProblem) -> ConfigError:
    return ConfigError([problem], source=source)


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses deep nesting and too many values while composing, and turns
    a value its constructors can't read (`2020-13-45`, `!!int x`) into a problem with its line."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._path: list[str | int] = []
        self._nodes = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if parent is not None:
            self._path.append(_step(index))
        try:
            mark = self.peek_event().start_mark
            if len(self._path) >= MAX_NESTING:
                raise _Refused(_nesting_problem(tuple(self._path), mark.line + 1, through_aliases=False))
            if not self.check_event(yaml.AliasEvent):
                self._nodes += 1
                if self._nodes > MAX_VALUES:
                    raise _Refused(_values_problem(tuple(self._path), mark.line + 1, through_aliases=False))
            return super().compose_node(parent, index)
        finally:
            if parent is not None:
                self._path.pop()

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (yaml.YAMLError, _Refused):
            raise
        except Exception:  # noqa: BLE001 - PyYAML's constructors raise ValueError, KeyError, AttributeError...
            raise _Refused(_unreadable_value_problem(node)) from None


def _step(index: Any) -> str | int:
    """The path step of a node being composed: its key's text, its list index, or `?` inside a key."""
    if isinstance(index, int):
        return index
    if isinstance(index, yaml.ScalarNode):
        return str(index.value)
    return _KEY_STEP


def _yaml_error_problem(error: yaml.MarkedYAMLError) -> ConfigProblem:
    mark = error.problem_mark or error.context_mark
    line = mark.line + 1 if mark else None
    if isinstance(error, yaml.constructor.ConstructorError):
        fix = "use plain values; quote a value that starts with ! or is meant as text; merge (<<) only mappings"
        return ConfigProblem("", f"YAML error: {error.problem or error.context}", fix, line)
    return ConfigProblem("", f"YAML syntax error: {error.problem or error.context}", _QUOTING_FIX, line)


def _check_graph(root: yaml.Node | None) -> list[ConfigProblem]:
    """Refuse (raise `_Refused`) alias bombs and alias cycles; return the keys given twice.

    Aliases make the node graph a DAG (or a cycle): a node's size is computed once and reused
    wherever an alias points at it, so the check costs the file's size, not the expansion's.
    """
    measured: dict[int, tuple[int, int]] = {}  # id(node) -> (values, nesting) once expanded
    in_progress: set[int] = set()
    duplicates: list[ConfigProblem] = []

    def visit(node: yaml.Node, loc: Loc) -> tuple[int, int]:
        key = id(node)
        if key in measured:
            return measured[key]
        line = node.start_mark.line + 1
        if key in in_progress:
            raise _Refused(ConfigProblem(format_path(loc), "a YAML alias refers to itself", "remove the recursive *alias", line))
        in_progress.add(key)
        children: list[tuple[yaml.Node, Loc]] = []
        if isinstance(node, yaml.MappingNode):
            duplicates.extend(_duplicate_keys(node, loc))
            for key_node, value_node in node.value:
                children.append((key_node, loc + (_KEY_STEP,)))
                children.append((value_node, loc + (_step(key_node),)))
        elif isinstance(node, yaml.SequenceNode):
            children.extend((item, loc + (index,)) for index, item in enumerate(node.value))
        values, nesting = 1, 1
        for child, child_loc in children:
            child_values, child_nesting = visit(child, child_loc)
            values += child_values
            nesting = max(nesting, child_nesting + 1)
        # The composer already bounded what the text holds; beyond it, aliases brought the rest in.
        if nesting > MAX_NESTING:
            raise _Refused(_nesting_problem(loc, line, through_aliases=True))
        if values > MAX_VALUES:
            raise _Refused(_values_problem(loc, line, through_aliases=True))
        in_progress.discard(key)
        measured[key] = (values, nesting)
        return values, nesting

    if root is not None:
        visit(root, ())
    return duplicates


def _duplicate_keys(node: yaml.MappingNode, loc: Loc) -> list[ConfigProblem]:
    # PyYAML keeps the last of two equal keys silently; a config must not lose the first one.
    problems = []
    first_lines: dict[str, int] = {}
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.value == "<<":
            continue
        key, line = str(key_node.value), key_node.start_mark.line + 1
        if key in first_lines:
            problem = f"'{key}' appears twice (first on line {first_lines[key]})"
            problems.append(ConfigProblem(format_path(loc + (key,)), problem, "keep one and merge the settings into it", line))
        else:
            first_lines[key] = line
    return problems


def _nesting_problem(loc: Loc, line: int, *, through_aliases: bool) -> ConfigProblem:
    how = " once YAML aliases (*name) are expanded" if through_aliases else ""
    problem = f"values are nested more than {MAX_NESTING} levels deep{how}"
    fix = "a presence-sync config nests a few levels; check for unclosed [ or { and for aliases inside aliases"
    return ConfigProblem(format_path(loc), problem, fix, line)


def _values_problem(loc: Loc, line: int, *, through_aliases: bool) -> ConfigProblem:
    if through_aliases:
        problem = f"YAML aliases (*name) here expand to more than {MAX_VALUES:,} values"
        fix = "write the settings out or use aliases only for small groups of settings, not aliases of aliases"
    else:
        problem = f"the file holds more than {MAX_VALUES:,} values, far more than any contact center's config"
        fix = f"check that this is the config file; start from {EXAMPLE_CONFIG}"
    return ConfigProblem(format_path(loc), problem, fix, line)


def _bad_character_problem(text: str, error: yaml.reader.ReaderError) -> ConfigProblem:
    position = max(0, min(error.position, len(text)))
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    code = error.character if isinstance(error.character, int) else ord(str(error.character)[:1] or "\0")
    problem = f"character U+{code:04X} (column {column}) is not allowed in YAML"
    fix = 'delete it (often pasted in by accident); inside double quotes it can be written as an escape, e.g. "\\t"'
    return ConfigProblem("", problem, fix, line)


def _unreadable_value_problem(node: yaml.Node) -> ConfigProblem:
    kind = str(node.tag).rsplit(":", 1)[-1]
    shown = f"'{shorten(str(node.value))}'" if isinstance(node, yaml.ScalarNode) else "this value"
    fix = "correct it, or put it in quotes if it is meant as text"
    if isinstance(node, yaml.ScalarNode):
        fix += f", e.g. '{shorten(str(node.value))}'"
    return ConfigProblem("", f"{shown} can't be read as a YAML {kind}", fix, node.start_mark.line + 1)


def _line_of(node: yaml.Node | None, loc: Loc) -> int | None:
    """The YAML line of the deepest node on `loc` (the parent's line for a missing key)."""
    line = node.start_mark.line + 1 if node is not None else None
    for item in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((value for key, value in node.value if _is_key(key, item)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(item, int) and item < len(node.value):
            node = node.value[item]
        else:
            node = None
        if node is None:
            break
        line = node.start_mark.line + 1
    return line


def _is_key(node: yaml.Node, item: str | int) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.value == str(item)
