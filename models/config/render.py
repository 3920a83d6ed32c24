"""A ready config for the emulators (`presence-sync emulate --write-config PATH`, the demo, the tests).

    stack = EmulatorStack.in_process(agents=20)
    config_path = await write_emulator_config(stack, tmp_path / "presence-sync.yaml")

The product renders it, not the emulators (which know nothing of the product): from the stack's URLs
and the fake credentials it serves.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from presence_sync.models.config.connections import SalesforceEnvironment

DEMO_EXAMPLE_PATH = Path(__file__).resolve().parents[2] / "examples" / "demo-contact-center.yaml"


class EmulatorEndpoints(Protocol):
    """What a config is written from: an `emulators.stack.EmulatorStack`, in-process or served."""

    salesforce_url: str
    cxone_url: str

    async def credentials(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The Salesforce and CXone emulators' `GET /__emulator/credentials` answers."""
        ...


async def write_emulator_config(stack: EmulatorEndpoints, path: str | Path) -> Path:
    """Write a ready config for the demo contact center that `stack` serves; its path."""
    salesforce_credentials, cxone_credentials = await stack.credentials()
    text = render_emulator_config_yaml(
        salesforce_url=stack.salesforce_url,
        cxone_url=stack.cxone_url,
        salesforce_credentials=salesforce_credentials,
        cxone_credentials=cxone_credentials,
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def render_emulator_config_yaml(
    *,
    salesforce_url: str,
    cxone_url: str,
    salesforce_credentials: Mapping[str, str],
    cxone_credentials: Mapping[str, str],
    salesforce_environment: SalesforceEnvironment = SalesforceEnvironment.PRODUCTION,
) -> str:
    """A complete config for the demo contact center served by the emulators at these URLs.

    The credentials are the emulators' public fakes (their `GET /__emulator/credentials`), written as
    literals; everything but the connection sections comes from examples/demo-contact-center.yaml.

    Example:
        text = render_emulator_config_yaml(
            salesforce_url="http://localhost:8401", cxone_url="http://127.0.0.1:8402",
            salesforce_credentials=sf_creds, cxone_credentials=cxone_creds)
        Path("presence-sync.yaml").write_text(text)
    """
    sf = _credentials(salesforce_credentials, "salesforce_credentials", _SALESFORCE_KEYS)
    cx = _credentials(cxone_credentials, "cxone_credentials", _CXONE_KEYS)
    # An org that trusts the caller's IP range issues no security token: leave the key out then.
    token = salesforce_credentials.get("security_token")
    token_line = f"    security_token: {_yaml_text(token)}\n" if token else ""
    connection = f"""\
# Written for the presence-sync emulators (`presence-sync emulate`), from examples/demo-contact-center.yaml.
# The credentials below are the emulators' public fake ones (GET /__emulator/credentials), which is why
# they are literals here. A config for a real org must take secrets from ${{ENV_VAR}} references or
# prefect-secret:<block-name>, never literals.

salesforce:
  environment: {SalesforceEnvironment(salesforce_environment).value}
  login_url: {_yaml_text(salesforce_url)}
  auth:
    flow: password
    client_id: {sf["client_id"]}
    client_secret: {sf["client_secret"]}
    username: {sf["username"]}
    password: {sf["password"]}
{token_line}
cxone:
  auth_url: {_yaml_text(cxone_url)}
  api_url: {_yaml_text(cxone_url)}
  client_id: {cx["client_id"]}
  client_secret: {cx["client_secret"]}
  access_key_id: {cx["access_key_id"]}
  access_key_secret: {cx["access_key_secret"]}
  access_key_user: {cx["access_key_user"]}
"""
    try:
        example = DEMO_EXAMPLE_PATH.read_text(encoding="utf-8")
    except OSError:
        raise FileNotFoundError(
            f"the demo contact center template {DEMO_EXAMPLE_PATH} is missing; reinstall presence-sync from its repository",
        ) from None
    kept = [block for key, block in _top_level_blocks(example) if key not in (None, "salesforce", "cxone")]
    return "\n".join([connection, *kept])


_SALESFORCE_KEYS = ("client_id", "client_secret", "username", "password")
_CXONE_KEYS = ("client_id", "client_secret", "access_key_id", "access_key_secret", "access_key_user")


def _credentials(values: Mapping[str, str], name: str, keys: tuple[str, ...]) -> dict[str, str]:
    """The needed credentials as YAML scalars; a missing one is a ValueError naming it."""
    missing = [key for key in keys if not values.get(key)]
    if missing:
        raise ValueError(f"{name} lacks {', '.join(missing)} (expected the emulator's GET /__emulator/credentials answer)")
    return {key: _yaml_text(values[key]) for key in keys}


def _yaml_text(value: str) -> str:
    # A JSON string is a valid YAML double-quoted scalar; `$${` keeps `${` from being read as an env reference.
    return json.dumps(str(value).replace("${", "$${"))


def _top_level_blocks(text: str) -> list[tuple[str | None, str]]:
    """Split YAML text into (top-level key, its lines with the comments just above it); key None = the header."""
    lines = text.splitlines()
    starts = [index for index, line in enumerate(lines) if re.match(r"^[A-Za-z_][\w-]*\s*:", line)]
    blocks: list[tuple[str | None, str]] = []
    boundaries = []
    for start in starts:
        begin = start
        while begin > 0 and lines[begin - 1].startswith("#"):
            begin -= 1
        boundaries.append((begin, lines[start].split(":", 1)[0].strip()))
    header_end = boundaries[0][0] if boundaries else len(lines)
    blocks.append((None, "\n".join(lines[:header_end])))
    for position, (begin, key) in enumerate(boundaries):
        end = boundaries[position + 1][0] if position + 1 < len(boundaries) else len(lines)
        blocks.append((key, "\n".join(lines[begin:end]).rstrip() + "\n"))
    return blocks
