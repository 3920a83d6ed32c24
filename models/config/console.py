"""How the sync reaches agents' consoles in Salesforce: the console gateway (default for new set-ups) or
`Presence_Sync_Command__e` platform events.

    console:
      channel: gateway                      # or platform_event (a small org with no reachable gateway)
      gateway_secret: ${PRESENCE_SYNC_GATEWAY_SECRET}
      broker_url: ${PRESENCE_SYNC_BROKER_URL}   # postgresql://...; leave out: in-process broker + embedded gateway
      ack_timeout_seconds: 30

With no `broker_url` the sync runs the gateway itself, in the same process, with the in-process broker
(the demo, one machine). With a `broker_url` the gateway runs apart (`presence-sync gateway`) and the
two meet in PostgreSQL. The platform-event path stays for orgs where a gateway cannot be reached;
salesforce/README.md has the allocation arithmetic for when it is the better choice.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Self

from pydantic import Field, model_validator

from presence_sync.models.config.base import ConfigModel
from presence_sync.models.errors import config_problem
from presence_sync.models.secrets import SecretValue

MIN_GATEWAY_SECRET_LENGTH = 32


class ConsoleChannel(StrEnum):
    PLATFORM_EVENT = "platform_event"
    GATEWAY = "gateway"


class ConsoleSettings(ConfigModel):
    """The console channel: how Salesforce writes reach agents' consoles and how their changes come back."""

    channel: ConsoleChannel = ConsoleChannel.PLATFORM_EVENT
    gateway_secret: SecretValue | None = None
    broker_url: SecretValue | None = None
    gateway_host: str = "127.0.0.1"
    gateway_port: int = Field(default=0, ge=0, le=65535)  # the embedded gateway's; 0 picks a free port
    ack_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    # While an agent's console is connected its changes are pushed; the UserServicePresence poll,
    # kept as the fallback, then runs this many times less often.
    relaxed_poll_factor: float = Field(default=10.0, ge=1, le=600)

    @property
    def gateway(self) -> bool:
        return self.channel is ConsoleChannel.GATEWAY

    @property
    def embedded(self) -> bool:
        """The sync runs the gateway and an in-process broker itself (no broker_url)."""
        return self.gateway and self.broker_url is None

    @model_validator(mode="after")
    def _gateway_needs_a_secret(self) -> Self:
        if self.embedded:
            secret = self.gateway_secret
            if secret is None:
                raise config_problem(
                    "the embedded console gateway needs gateway_secret",
                    "set console.gateway_secret: ${PRESENCE_SYNC_GATEWAY_SECRET} (32+ random characters, the "
                    "secret the org's Presence Sync Gateway record holds)",
                    at="gateway_secret",
                )
            value = secret.get_secret_value()
            if not value.startswith("prefect-secret:") and len(value) < MIN_GATEWAY_SECRET_LENGTH:
                raise config_problem(
                    f"gateway_secret is shorter than {MIN_GATEWAY_SECRET_LENGTH} characters",
                    "use `python -c \"import secrets; print(secrets.token_urlsafe(32))\"`",
                    at="gateway_secret",
                )
        return self
