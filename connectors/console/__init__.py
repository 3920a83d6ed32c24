"""The console channel: how presence-sync reaches each agent's Salesforce console, and hears back.

Salesforce has no server API to set an agent's Omni-Channel status; the Presence Sync Applier
component in the agent's console does it (salesforce/). It keeps a WebSocket open to our console
gateway, which hands it its user's commands and takes its acknowledgements and status changes.

| module | what lives there |
|---|---|
| `protocol` | the wire protocol (messages, limits, close codes) and why WebSocket |
| `tokens` | the console token: minted by Apex for one user, HMAC-signed, verified here |
| `broker` | the exchange between sync and gateway (`ConsoleBroker`), and the in-process broker |
| `postgres_broker` | the same on PostgreSQL (tables + LISTEN/NOTIFY), for gateways and syncs apart |
| `gateway` | the ASGI app (`create_gateway_app`), served by `presence-sync gateway` |

    broker = InProcessBroker()
    app = create_gateway_app(GatewaySettings(secrets=[secret]), broker)
    await broker.submit([ConsoleCommand.set_status(user_id, status_id, "On_Break")])
    for event in await broker.read_events(after=cursor): ...   # CommandOutcome | StatusPush
"""

from presence_sync.connectors.console.broker import (
    CommandOutcome,
    ConsoleBroker,
    ConsoleCommand,
    ConsoleConnection,
    ConsoleEvent,
    InProcessBroker,
    StatusPush,
)
from presence_sync.connectors.console.gateway import GatewaySettings, create_gateway_app
from presence_sync.connectors.console.protocol import CloseCode, ConsoleStatus
from presence_sync.connectors.console.tokens import TokenClaims, TokenError, TokenVerifier, mint_token

__all__ = [
    "CloseCode",
    "CommandOutcome",
    "ConsoleBroker",
    "ConsoleCommand",
    "ConsoleConnection",
    "ConsoleEvent",
    "ConsoleStatus",
    "GatewaySettings",
    "InProcessBroker",
    "StatusPush",
    "TokenClaims",
    "TokenError",
    "TokenVerifier",
    "create_gateway_app",
    "mint_token",
]
