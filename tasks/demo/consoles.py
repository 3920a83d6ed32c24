"""The demo's console channel: the sync writes to Salesforce through the console gateway it embeds.

The demo config selects `console.channel: gateway` with the secret in `${PRESENCE_SYNC_GATEWAY_SECRET}`
(set for this process when unset) and no broker URL, so every sync window of the demo process shares
one embedded gateway with the in-process broker. The Salesforce emulator's consoles connect to it as
real clients, the way agents' consoles connect to a deployed gateway.

    with console_gateway(stack, config_path) as url:   # ws://127.0.0.1:PORT/console
        ...run the sync windows...
"""

from __future__ import annotations

import os
import secrets as random_source
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from presence_sync.emulators.stack import EmulatorStack
from presence_sync.models.config import load_config
from presence_sync.tasks.sync.console_channel import embedded_gateway, stop_embedded_gateways

SECRET_VARIABLE = "PRESENCE_SYNC_GATEWAY_SECRET"


def use_console_gateway(config_path: Path) -> None:
    """Add the console section (gateway channel, secret by reference) to the demo's config."""
    os.environ.setdefault(SECRET_VARIABLE, random_source.token_urlsafe(32))
    text = config_path.read_text(encoding="utf-8").rstrip("\n")
    config_path.write_text(
        text + "\n\n# Salesforce writes go to the agents' consoles through the console gateway, which the sync\n"
        "# embeds (no broker_url: the in-process broker; a deployment points broker_url at PostgreSQL).\n"
        "console:\n"
        "  channel: gateway\n"
        f"  gateway_secret: ${{{SECRET_VARIABLE}}}\n",
        encoding="utf-8",
    )


@contextmanager
def console_gateway(stack: EmulatorStack, config_path: Path) -> Iterator[str]:
    """Start the embedded gateway for the config and connect every emulated console to it."""
    settings = load_config(config_path).console
    assert settings.gateway_secret is not None
    gateway = embedded_gateway(settings)
    stack.salesforce.connect_consoles(gateway.url, settings.gateway_secret.get_secret_value())
    try:
        yield gateway.url
    finally:
        stack.salesforce.disconnect_consoles()
        stop_embedded_gateways()
