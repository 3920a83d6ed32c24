"""What every flow works with, built from one config: both connectors and the state store.

    async with open_context(load_config("examples/demo-contact-center.yaml")) as ctx:
        await ctx.salesforce.query("SELECT Id FROM ServicePresenceStatus")
        ctx.store.list_links()

Tests and the in-process demo reach the emulators without sockets by installing ASGI transports
with `use_transports(...)`; a flow run by Prefect gets only a config path, so the override lives here
rather than in flow parameters.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from presence_sync.connectors import CxoneClient, CxoneCredentials, SalesforceClient, SalesforceCredentials
from presence_sync.models.config import CxoneConfig, PresenceSyncConfig, SalesforceConfig, load_config
from presence_sync.models.store import Store


@dataclass(frozen=True)
class Transports:
    salesforce: httpx.AsyncBaseTransport | None = None
    cxone: httpx.AsyncBaseTransport | None = None


_transports = Transports()


@contextmanager
def use_transports(salesforce: httpx.AsyncBaseTransport | None, cxone: httpx.AsyncBaseTransport | None) -> Iterator[None]:
    """Route every connector built inside the block to these transports (in-process emulators)."""
    global _transports
    previous, _transports = _transports, Transports(salesforce, cxone)
    try:
        yield
    finally:
        _transports = previous


def salesforce_credentials(config: SalesforceConfig) -> SalesforceCredentials:
    auth = config.auth
    common = {"login_url": config.login_base_url, "api_version": config.api_version, "client_id": auth.client_id}
    if auth.flow == "password":
        return SalesforceCredentials(
            **common,
            flow="password",
            client_secret=auth.client_secret,
            username=auth.username,
            password=auth.password,
            security_token=auth.security_token,
        )
    if auth.flow == "client_credentials":
        return SalesforceCredentials(**common, flow="client_credentials", client_secret=auth.client_secret)
    return SalesforceCredentials(**common, flow="jwt", username=auth.username, private_key=auth.signing_key())


def cxone_credentials(config: CxoneConfig) -> CxoneCredentials:
    location = (
        {"tenant_id": config.tenant_id, "discovery_url": config.discovery_url}
        if config.uses_discovery
        else {"auth_url": config.auth_url, "api_url": config.api_url}
    )
    return CxoneCredentials(
        **location,
        api_version=config.api_version,
        client_id=config.client_id,
        client_secret=config.client_secret,
        access_key_id=config.access_key_id,
        access_key_secret=config.access_key_secret,
    )


def salesforce_client(config: PresenceSyncConfig) -> SalesforceClient:
    return salesforce_credentials(config.salesforce).get_client(
        transport=_transports.salesforce, max_concurrency=config.sync.max_concurrency
    )


def cxone_client(config: PresenceSyncConfig) -> CxoneClient:
    return cxone_credentials(config.cxone).get_client(
        transport=_transports.cxone, max_concurrency=config.sync.max_concurrency
    )


def open_store(config: PresenceSyncConfig) -> Store:
    return Store.open(config.sync.store_url.get_secret_value())


@dataclass
class Context:
    config: PresenceSyncConfig
    salesforce: SalesforceClient
    cxone: CxoneClient
    store: Store


@asynccontextmanager
async def open_context(config: PresenceSyncConfig | str | Path) -> AsyncIterator[Context]:
    """Both connectors (not yet authenticated: the first call logs in) and the store, closed on exit."""
    if not isinstance(config, PresenceSyncConfig):
        config = load_config(config)
    store = open_store(config)
    try:
        async with salesforce_client(config) as salesforce, cxone_client(config) as cxone:
            yield Context(config=config, salesforce=salesforce, cxone=cxone, store=store)
    finally:
        store.close()
