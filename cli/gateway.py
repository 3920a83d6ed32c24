"""`presence-sync gateway`: serve the console gateway (agents' console components connect to it).

    export PRESENCE_SYNC_GATEWAY_SECRET=...        # the secret shared with the Salesforce org
    presence-sync gateway --host 0.0.0.0 --port 8403 --broker-url postgresql://presence@db/presence

TLS is the load balancer's or reverse proxy's job (browsers need `wss://`); see salesforce/README.md.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import SecretStr, ValidationError
from rich.console import Console

from presence_sync.cli.output import print_error

if TYPE_CHECKING:
    from presence_sync.connectors.console.gateway import GatewaySettings

console = Console(highlight=False)

SECRET_ENV = "PRESENCE_SYNC_GATEWAY_SECRET"
PREVIOUS_SECRET_ENV = "PRESENCE_SYNC_GATEWAY_PREVIOUS_SECRET"


def _secrets(environ: Mapping[str, str], name: str) -> tuple[SecretStr, ...]:
    current = environ.get(name, "")
    if not current:
        raise ValueError(
            f"set {name} to the secret shared with the Salesforce org (the Presence Sync Gateway record's Secret); "
            "it is read from the environment only, so it never shows in a process list or shell history"
        )
    previous = environ.get(PREVIOUS_SECRET_ENV, "")
    return tuple(SecretStr(value) for value in (current, previous) if value)


def _split(values: list[str] | None) -> frozenset[str] | None:
    items = {item.strip() for value in values or [] for item in value.split(",") if item.strip()}
    return frozenset(items) or None


def gateway(
    host: Annotated[str, typer.Option(envvar="PRESENCE_SYNC_GATEWAY_HOST", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="PRESENCE_SYNC_GATEWAY_PORT", min=0, max=65535,
                                      help="Port to listen on (0: any free port, printed).")] = 8403,
    broker_url: Annotated[str, typer.Option(
        envvar="PRESENCE_SYNC_GATEWAY_BROKER_URL",
        help="Where the sync meets the gateway: postgresql://... (production), or 'memory' (this process only).",
    )] = "memory",
    org_id: Annotated[list[str] | None, typer.Option(
        envvar="PRESENCE_SYNC_GATEWAY_ORG_IDS", help="Accept tokens of these org ids only (repeat, or comma-separated).",
    )] = None,
    allowed_origin: Annotated[list[str] | None, typer.Option(
        envvar="PRESENCE_SYNC_GATEWAY_ALLOWED_ORIGINS",
        help="Accept WebSocket handshakes from these origins only, e.g. https://acme.lightning.force.com.",
    )] = None,
    secret_env: Annotated[str, typer.Option(help="The environment variable holding the shared secret.")] = SECRET_ENV,
) -> None:
    """Serve the console gateway: one WebSocket per agent console, commands in, acks and status changes out."""
    from presence_sync.connectors.console.gateway import GatewaySettings

    try:
        settings = GatewaySettings(
            secrets=_secrets(os.environ, secret_env), org_ids=_split(org_id), allowed_origins=_split(allowed_origin))
    except ValidationError as error:
        # Our validators' messages name the problem and never a secret's value.
        problem = error.errors()[0]
        option = {"secrets": secret_env, "org_ids": "--org-id"}.get(str(problem["loc"][0]), str(problem["loc"][0]))
        print_error(f"{option}: {problem['msg'].removeprefix('Value error, ')}")
        raise typer.Exit(2) from None
    except ValueError as error:
        print_error(str(error))
        raise typer.Exit(2) from None
    try:
        asyncio.run(_serve(settings, broker_url, host, port))
    except KeyboardInterrupt:
        pass


async def _serve(settings: GatewaySettings, broker_url: str, host: str, port: int) -> None:
    import uvicorn

    from presence_sync.connectors.console.broker import ConsoleBroker, InProcessBroker
    from presence_sync.connectors.console.gateway import create_gateway_app
    from presence_sync.connectors.console.protocol import CONSOLE_PATH

    broker: ConsoleBroker
    if broker_url == "memory":
        broker = InProcessBroker()
        console.print("[yellow]Broker: in this process only[/] (commands reach consoles only from this process; "
                      "use --broker-url postgresql://... to meet the sync)")
    elif broker_url.startswith(("postgresql:", "postgresql+psycopg:", "postgres:")):
        from presence_sync.connectors.console.postgres_broker import PostgresBroker

        broker = await PostgresBroker.open(broker_url)
        console.print(f"Broker: PostgreSQL at {broker_url.rsplit('@', 1)[-1]}")
    else:
        print_error(f"--broker-url {broker_url!r}: use 'memory' or a postgresql://... URL")
        raise typer.Exit(2)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)  # consoles that connect before the server is up wait in the backlog
    bound_port = sock.getsockname()[1]
    app = create_gateway_app(settings, broker)
    # Console messages are small (4 KiB accepted); refuse big frames before reading them.
    # No permessage-deflate: console messages are a few hundred bytes, and a zlib context per connection
    # costs more memory and CPU than compressing them saves.
    config = uvicorn.Config(app, ws_max_size=64 * 1024, ws_per_message_deflate=False, proxy_headers=True,
                            log_level="info", timeout_graceful_shutdown=10)
    console.print(f"Console gateway on ws://{host}:{bound_port}{CONSOLE_PATH} (health: /healthz), "
                  f"{len(settings.secrets)} secret(s) loaded")
    try:
        await uvicorn.Server(config).serve(sockets=[sock])
    finally:
        await broker.close()
        sock.close()


def register(app: typer.Typer) -> None:
    app.command()(gateway)
