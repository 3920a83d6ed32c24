"""Shared pieces of the config models: the base model, validation context keys and small value types."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, StringConstraints, ValidationInfo

from presence_sync.models.errors import config_problem
from presence_sync.models.secrets import PREFECT_SECRET_PREFIX

CONFIG_DIR_CONTEXT_KEY = "config_dir"
ENVIRON_CONTEXT_KEY = "environ"

_VENDOR_DOMAINS = ("salesforce.com", "force.com", "niceincontact.com", "nicecxone.com", "nicecxone-gov.com")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_API_VERSION = re.compile(r"^v\d+\.\d+$")


class ConfigModel(BaseModel):
    """Base of every config section: unknown keys are errors, values are immutable, inputs stay out of errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


def _not_a_secret_reference(value: str) -> str:
    if value.startswith(PREFECT_SECRET_PREFIX):
        raise config_problem(
            f"'{PREFECT_SECRET_PREFIX}' references only work for secret settings",
            "write the value itself here, or a ${ENV_VAR} reference",
        )
    return value


Text = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1),
    AfterValidator(_not_a_secret_reference),
]
"""Non-empty text (surrounding spaces dropped) that is not a secret."""


def _check_base_url(value: str) -> str:
    parts = urlsplit(value)
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise config_problem(
            "has an invalid port",
            "write host:port with a number, e.g. http://localhost:8401",
        ) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise config_problem("is not an http(s) URL", "write a full URL such as https://acme.my.salesforce.com")
    if parts.query or parts.fragment:
        raise config_problem("must not have a query or fragment", "keep only scheme, host, port and path")
    host = parts.hostname.lower()
    if parts.scheme == "http" and any(host == domain or host.endswith(f".{domain}") for domain in _VENDOR_DOMAINS):
        raise config_problem(f"{host} only accepts https", "write https://")
    return value.rstrip("/")


BaseUrl = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1), AfterValidator(_check_base_url)]
"""An http(s) base URL without a trailing slash; plain http is refused for Salesforce and CXone hosts."""


def _api_version_text(value: Any) -> Any:
    # YAML reads `api_version: 62.0` as a float: accept it as "v62.0".
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"v{float(value):.1f}"
    if isinstance(value, str) and re.fullmatch(r"\d+\.\d+", value.strip()):
        return f"v{value.strip()}"
    return value


def _check_api_version(value: str) -> str:
    if not _API_VERSION.match(value):
        raise config_problem("is not an API version", "write it like v62.0")
    return value


ApiVersion = Annotated[str, BeforeValidator(_api_version_text), AfterValidator(_check_api_version)]


def _check_email(value: str) -> str:
    if not _EMAIL.match(value):
        raise config_problem("is not an email address", "write it like admin@example.com")
    return value


EmailAddress = Annotated[Text, AfterValidator(_check_email)]


DEVELOPER_NAME_MAX_LENGTH = 80


def developer_name_problem(name: str) -> str | None:
    """Why `name` is not a valid Salesforce DeveloperName, or None when it is."""
    if not name:
        return "is empty"
    problems = []
    invalid = sorted({char for char in name if not (char.isascii() and (char.isalnum() or char == "_"))})
    if invalid:
        shown = ", ".join(repr(char) for char in invalid)
        problems.append(f"contains {shown} (only letters, digits and underscores are allowed)")
    if not (name[0].isascii() and name[0].isalpha()):
        problems.append("must start with a letter")
    if "__" in name:
        problems.append("has two underscores in a row")
    if name.endswith("_"):
        problems.append("ends with an underscore")
    if len(name) > DEVELOPER_NAME_MAX_LENGTH:
        problems.append(f"is {len(name)} characters long (at most {DEVELOPER_NAME_MAX_LENGTH})")
    return "; ".join(problems) or None


def suggest_developer_name(text: str) -> str:
    """A valid DeveloperName close to `text`, e.g. "On-Break" -> "On_Break"."""
    name = re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_") or "Status"
    if not name[0].isalpha():
        name = f"S_{name}"
    return name[:DEVELOPER_NAME_MAX_LENGTH].rstrip("_")


def derive_developer_name(label: str) -> str:
    """The DeveloperName Setup derives from a status label: spaces become underscores."""
    return label.strip().replace(" ", "_")


def _check_developer_name(name: str) -> str:
    problem = developer_name_problem(name)
    if problem:
        raise config_problem(
            f"'{name}' is not a valid DeveloperName: {problem}",
            f"use e.g. '{suggest_developer_name(name)}'",
        )
    return name


DeveloperName = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_check_developer_name)]
"""A Salesforce DeveloperName: letters, digits, underscores; starts with a letter; no `__`, no trailing `_`; <= 80."""


def _agent_reference(value: Any) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str) and value.strip():
        text = value.strip()
        return int(text) if text.isdigit() else text
    raise config_problem(
        "must be a CXone agent id or the agent's email/username",
        "write e.g. 123456 or agent1@example.com",
    )


AgentReference = Annotated[int | str, BeforeValidator(_agent_reference)]
"""A CXone agent: its numeric agentId (int) or its email/username (str)."""


def config_dir(info: ValidationInfo) -> Path:
    """The folder relative paths start at: the config file's, else the working directory."""
    return Path((info.context or {}).get(CONFIG_DIR_CONTEXT_KEY) or Path.cwd())


def duplicates(values: Iterable[Any]) -> list[tuple[int, int]]:
    """(index, index of its first occurrence) for every repeated value."""
    first_seen: dict[Any, int] = {}
    repeated = []
    for index, value in enumerate(values):
        if value in first_seen:
            repeated.append((index, first_seen[value]))
        else:
            first_seen[value] = index
    return repeated
