"""Loading a config file: read (size-capped), parse YAML safely (models/config/safe_yaml.py), validate.

Example:
    config = load_config("contact-center.yaml")   # raises ConfigError listing every problem
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from presence_sync.models.config.base import CONFIG_DIR_CONTEXT_KEY, ENVIRON_CONTEXT_KEY
from presence_sync.models.config.document import PresenceSyncConfig
from presence_sync.models.config.safe_yaml import EXAMPLE_CONFIG, MAX_CONFIG_CHARS, file_error, read_yaml, too_large_problem
from presence_sync.models.errors import ConfigError, ConfigProblem, problems_from_validation_error
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
        text = _read_text(source)
    except FileNotFoundError:
        raise _file_error(str(source), f"file not found: {source}", f"check the path, or start from {EXAMPLE_CONFIG}") from None
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
    data, line_of = read_yaml(text, source)
    context = {CONFIG_DIR_CONTEXT_KEY: config_dir, ENVIRON_CONTEXT_KEY: environ, SECRET_RESOLVER_CONTEXT_KEY: secret_resolver}
    try:
        return PresenceSyncConfig.model_validate(data, context=context)
    except ValidationError as error:
        raise ConfigError(problems_from_validation_error(error, PresenceSyncConfig, line_of), source=source) from None


def _file_error(source: str, problem: str, fix: str) -> ConfigError:
    return file_error(source, ConfigProblem("", problem, fix))


def _read_text(source: Path) -> str:
    # A bounded read: a hostile "file" (a huge one, /dev/zero) costs at most one byte over the limit.
    with source.open("rb") as stream:
        raw = stream.read(MAX_CONFIG_CHARS + 1)
    if len(raw) > MAX_CONFIG_CHARS:
        raise file_error(str(source), too_large_problem())
    return raw.decode("utf-8")
