"""The config's `console` section: the platform-event default, the gateway channel, and its secret."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from presence_sync.models.config import ConsoleChannel, parse_config
from presence_sync.models.errors import ConfigError
from tests.models.test_config_validation import DEMO, DEMO_ENV, DEMO_TEXT

SECRET = "a-gateway-secret-of-at-least-32-characters"


def config_with(console: dict[str, Any] | None, environ: dict[str, str] | None = None) -> Any:
    data = yaml.safe_load(DEMO_TEXT)
    if console is not None:
        data["console"] = console
    return parse_config(yaml.safe_dump(data), config_dir=DEMO.parent, environ={**DEMO_ENV, **(environ or {})})


def test_the_platform_event_path_is_the_default_for_existing_configs() -> None:
    settings = config_with(None).console
    assert settings.channel is ConsoleChannel.PLATFORM_EVENT and not settings.gateway


def test_the_gateway_channel_takes_its_secret_from_the_environment() -> None:
    settings = config_with({"channel": "gateway", "gateway_secret": "${PRESENCE_SYNC_GATEWAY_SECRET}"},
                           {"PRESENCE_SYNC_GATEWAY_SECRET": SECRET}).console
    assert settings.gateway and settings.embedded
    assert settings.gateway_secret is not None and settings.gateway_secret.get_secret_value() == SECRET
    assert SECRET not in repr(settings)


@pytest.mark.parametrize(("console", "words"), [
    ({"channel": "gateway"}, ["console.gateway_secret", "needs gateway_secret", "PRESENCE_SYNC_GATEWAY_SECRET"]),
    ({"channel": "gateway", "gateway_secret": "short"}, ["console.gateway_secret", "shorter than 32"]),
    ({"channel": "websocket"}, ["console.channel"]),
])
def test_console_mistakes_are_named_with_a_fix(console: dict[str, Any], words: list[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        config_with(console)
    text = str(caught.value)
    for word in words:
        assert word in text
    assert "short" not in text.replace("shorter", "")  # the secret's value is never shown


def test_a_broker_url_means_the_gateway_runs_apart() -> None:
    settings = config_with({"channel": "gateway", "broker_url": "postgresql://gw@db/presence"}).console
    assert settings.gateway and not settings.embedded
