"""What every flow works with, built from one config: both connectors and the state store.

    async with open_context(load_config("examples/demo-contact-center.yaml")) as ctx:
        await ctx.salesforce.query("SELECT Id FROM ServicePresenceStatus")
        ctx.store.list_links()

The connectors talk to the network at the config's URLs unless the context is opened with other
`Transports` (in-process emulators): `open_context(config, Transports(sf_app_transport, cx_app_transport))`.

A flow gets only its config path from Prefect (parameters are JSON), so a caller that runs flows in
this process against in-process emulators registers transports for that config file, and each flow
opens its context with `transports_for(config_path)`:

    with routed(config_path, Transports(*stack.transports())):
        await sync(str(config_path), seconds=2)

Why a registry keyed by the config path, not a switch: the config file is the one thing the caller
and the flow both name. An entry reroutes only contexts that a flow opens for that very file, for
the length of the `with` block; a context opened for any other config, or directly with
`open_context`, is untouched. A module-level or context-variable switch would reroute every
connector built while it is set, wherever it is built from (and a context variable would not even
reach a flow that Prefect runs in another thread).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from presence_sync.connectors import CxoneClient, SalesforceClient
from presence_sync.models.config import PresenceSyncConfig, load_config
from presence_sync.models.store import Store


@dataclass(frozen=True)
class Transports:
    """Where each system's requests go; None: the network, at the config's URLs."""

    salesforce: httpx.AsyncBaseTransport | None = None
    cxone: httpx.AsyncBaseTransport | None = None


NETWORK = Transports()

_routes: dict[Path, Transports] = {}


@contextmanager
def routed(config_path: str | Path, transports: Transports) -> Iterator[None]:
    """Flows run in this process for `config_path` reach their systems through `transports` inside the block."""
    key = Path(config_path).resolve()
    if key in _routes:
        raise RuntimeError(f"{config_path} is already routed; one caller routes a config file at a time")
    _routes[key] = transports
    try:
        yield
    finally:
        del _routes[key]


def transports_for(config_path: str | Path) -> Transports:
    """The transports a flow's context for `config_path` uses: those `routed` to it, else the network."""
    return _routes.get(Path(config_path).resolve(), NETWORK)


def connector_options(config: PresenceSyncConfig) -> dict[str, Any]:
    """What both connectors take from the `sync` section: the request bound, deadline and body cap."""
    sync = config.sync
    return {
        "max_concurrency": sync.max_concurrency,
        "deadline_seconds": sync.request_deadline_seconds,
        "max_body_bytes": sync.max_response_bytes,
    }


def open_store(config: PresenceSyncConfig) -> Store:
    return Store.open(config.sync.store_url.get_secret_value())


def reset_store(config: PresenceSyncConfig) -> None:
    """Start the config's store over: every row deleted (onboarding records, sync state, its owner).

    For a store that belongs to another contact center (`StoreOwnedElsewhereError`) or should be
    rebuilt; onboarding and the sync fill it again.
    """
    store = open_store(config)
    try:
        store.identity.reset()
    finally:
        store.close()


@dataclass
class Context:
    config: PresenceSyncConfig
    salesforce: SalesforceClient
    cxone: CxoneClient
    store: Store


@asynccontextmanager
async def open_context(
    config: PresenceSyncConfig | str | Path, transports: Transports = NETWORK
) -> AsyncIterator[Context]:
    """Both connectors (not yet authenticated: the first call logs in) and the store, closed on exit."""
    if not isinstance(config, PresenceSyncConfig):
        config = load_config(config)
    store = open_store(config)
    options = connector_options(config)
    try:
        async with (
            config.salesforce.get_client(transport=transports.salesforce, **options) as salesforce,
            config.cxone.get_client(transport=transports.cxone, **options) as cxone,
        ):
            yield Context(config=config, salesforce=salesforce, cxone=cxone, store=store)
    finally:
        store.close()
