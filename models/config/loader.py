"""Loading a config file: read, parse YAML (duplicate keys refused, lines remembered), validate.

Example:
    config = load_config("contact-center.yaml")   # raises ConfigError listing every problem
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from presence_sync.models.config.base import CONFIG_DIR_CONTEXT_KEY, ENVIRON_CONTEXT_KEY
from presence_sync.models.config.document import PresenceSyncConfig
from presence_sync.models.errors import ConfigError, ConfigProblem, Loc, format_path, problems_from_validation_error
from presence_sync.models.secrets import SECRET_RESOLVER_CONTEXT_KEY, PrefectSecretResolver


def load_config(
    path: str | os.PathLike[str],
    *,
    environ: Mapping[str, str] | None = None,
    secret_resolver: PrefectSecretResolver | None = None,
) -> PresenceSyncConfig:
    """Read, parse and validate a config file; raises `ConfigError` listing every problem.

    Example:
        config = load_config("contact-center.yaml")
        config = load_config(path, environ={"PRESENCE_SYNC_SF_CLIENT_SECRET": "..."})  # tests
    """
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _file_error(str(source), f"file not found: {source}", f"check the path, or start from {_EXAMPLE}") from None
    except IsADirectoryError:
        raise _file_error(str(source), f"{source} is a folder", "give the path of the YAML file") from None
    except UnicodeDecodeError:
        raise _file_error(str(source), "the file is not UTF-8 text", "save it as UTF-8") from None
    except OSError as error:
        raise _file_error(str(source), f"can't read {source} ({error.strerror})", "check the file's permissions") from None
    return parse_config(
        text, config_dir=source.resolve().parent, source=str(source), environ=environ, secret_resolver=secret_resolver
    )


def parse_config(
    text: str,
    *,
    config_dir: Path,
    source: str = "<config>",
    environ: Mapping[str, str] | None = None,
    secret_resolver: PrefectSecretResolver | None = None,
) -> PresenceSyncConfig:
    """Parse and validate config YAML text; relative paths in it start at `config_dir`.

    Example:
        config = parse_config(text, config_dir=Path.cwd(), environ={})
    """
    data, line_of = _parse_yaml(text, source)
    context = {CONFIG_DIR_CONTEXT_KEY: config_dir, ENVIRON_CONTEXT_KEY: environ, SECRET_RESOLVER_CONTEXT_KEY: secret_resolver}
    try:
        return PresenceSyncConfig.model_validate(data, context=context)
    except ValidationError as error:
        raise ConfigError(problems_from_validation_error(error, PresenceSyncConfig, line_of), source=source) from None


_EXAMPLE = "examples/demo-contact-center.yaml"
_QUOTING_FIX = "check indentation and quoting; a value containing ': ' or ' #' needs quotes, e.g. acd: \"Unavailable: Break\""


def _file_error(source: str, problem: str, fix: str, line: int | None = None) -> ConfigError:
    return ConfigError([ConfigProblem("", problem, fix, line)], source=source)


def _parse_yaml(text: str, source: str) -> tuple[dict[str, Any], Callable[[Loc], int | None]]:
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        duplicates = list(_duplicate_keys(root, (), frozenset()))
        if duplicates:
            raise ConfigError(duplicates, source=source)
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = f"YAML syntax error: {error.problem or error.context}"
        raise _file_error(source, problem, _QUOTING_FIX, mark.line + 1 if mark else None) from None
    except yaml.YAMLError as error:
        raise _file_error(source, f"YAML error ({type(error).__name__})", "check the file's syntax") from None
    finally:
        loader.dispose()
    if data is None:
        raise _file_error(source, "the file is empty", f"start from {_EXAMPLE}")
    if not isinstance(data, dict):
        raise _file_error(source, "the file must be a mapping of settings", "start with salesforce:, cxone:, statuses:, rule:")
    return data, lambda loc: _line_of(root, loc)


def _duplicate_keys(node: yaml.Node | None, loc: Loc, ancestors: frozenset[int]) -> Iterable[ConfigProblem]:
    # PyYAML keeps the last of two equal keys silently; a config must not lose the first one.
    if node is None:
        return
    if id(node) in ancestors:
        yield ConfigProblem(format_path(loc), "a YAML alias refers to itself", "remove the recursive *alias", node.start_mark.line + 1)
        return
    ancestors = ancestors | {id(node)}
    if isinstance(node, yaml.MappingNode):
        first_lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key is None or key == "<<":
                continue
            line = key_node.start_mark.line + 1
            if key in first_lines:
                problem = f"'{key}' appears twice (first on line {first_lines[key]})"
                yield ConfigProblem(format_path(loc + (key,)), problem, "keep one and merge the settings into it", line)
            else:
                first_lines[key] = line
            yield from _duplicate_keys(value_node, loc + (key,), ancestors)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _duplicate_keys(item, loc + (index,), ancestors)


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
