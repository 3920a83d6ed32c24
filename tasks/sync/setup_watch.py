"""Noticing, while a sync window runs, that onboarding or refresh-users changed what it loaded at start.

Rules, their assignments and the agent links (teams included) are read once per lease holder. Every
write to them bumps the store's setup revision (`store.setup.setup_revision()`), which a running sync
reads at most every `every_seconds`: one tiny query. On a change the holder reloads its setup and
reconciles, so that every agent is synced by the rule it has now (the engine resolves an agent's
latest change again when its rule or team changed).

    watch = SetupWatch(store)
    await watch.start(now)                 # before the setup is loaded: a change meanwhile is seen next
    if await watch.changed(now): ...       # reload, reconcile
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from presence_sync.models.store import Store

SETUP_CHECK_SECONDS = 5.0


class SetupWatch:
    """The setup revision a holder loaded, compared with the store's now and then."""

    def __init__(self, store: Store, every_seconds: float = SETUP_CHECK_SECONDS) -> None:
        self.store = store
        self.every = timedelta(seconds=every_seconds)
        self.revision: int | None = None
        self._next_check: datetime | None = None

    async def start(self, now: datetime) -> None:
        """Note the revision about to be loaded."""
        self.revision = await asyncio.to_thread(self.store.setup.setup_revision)
        self._next_check = now + self.every

    async def changed(self, now: datetime) -> bool:
        """Whether the setup changed since it was loaded (checked at most every `every_seconds`)."""
        if self._next_check is not None and now < self._next_check:
            return False
        self._next_check = now + self.every
        revision = await asyncio.to_thread(self.store.setup.setup_revision)
        if revision == self.revision:
            return False
        self.revision = revision
        return True
