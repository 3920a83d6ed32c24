"""The shared API budget on Prefect: global rate limits (`prefect.concurrency`) the sync shards take slots of.

`take_slots` is the pacers' keeper (tasks/sync/shared_budget.py): `rate_limit(..., strict=True)`, so
that a missing limit is an error the pacer falls back from rather than Prefect's silent skip.
`install_limits` creates or updates both limits (sized by `size_limits`), idempotently.

    budget = attach_shared_budget(ctx)          # inside the sync flow; None when not enabled
    sizes = await install_limits(config, shards=4)
"""

from __future__ import annotations

from prefect.client.orchestration import get_client
from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError, rate_limit

from presence_sync.models.config import PresenceSyncConfig
from presence_sync.tasks.context import NETWORK, Context, Transports, open_context
from presence_sync.tasks.sync.shared_budget import LimitSize, SharedBudget, SlotsUnavailable, size_limits


async def take_slots(limit: str, slots: int, timeout_seconds: float) -> None:
    """`slots` of the global rate limit `limit`, waiting at most `timeout_seconds` (TimeoutError past it)."""
    try:
        await rate_limit(limit, occupy=slots, timeout_seconds=timeout_seconds, strict=True)
    except ConcurrencySlotAcquisitionError as error:
        cause = error.__cause__
        why = f"{error}: {type(cause).__name__}" if cause is not None else str(error)
        raise SlotsUnavailable(why) from None


def attach_shared_budget(ctx: Context) -> SharedBudget | None:
    """Pace the context's requests by the shared limits when `sync.shared_budget.enabled`."""
    settings = ctx.config.sync.shared_budget
    if not settings.enabled:
        return None
    budget = SharedBudget.from_settings(settings, take_slots)
    budget.attach(ctx)
    return budget


async def salesforce_daily_requests(config: PresenceSyncConfig, transports: Transports = NETWORK) -> int:
    """The org's daily API requests: the config's figure, else Salesforce's `GET /limits`."""
    configured = config.sync.shared_budget.salesforce_daily_requests
    if configured is not None:
        return configured
    async with open_context(config, transports) as ctx:
        limits = await ctx.salesforce.get("/limits")
    return int(limits["DailyApiRequests"]["Max"])


async def install_limits(
    config: PresenceSyncConfig, *, shards: int, salesforce_daily: int | None = None, transports: Transports = NETWORK
) -> list[LimitSize]:
    """Create (or resize) both global rate limits for `shards` sync shards; returns what was set."""
    daily = salesforce_daily if salesforce_daily is not None else await salesforce_daily_requests(config, transports)
    sizes = size_limits(
        config.sync.shared_budget, reserve_fraction=config.sync.budget_reserve_fraction,
        salesforce_daily=daily, shards=shards,
    )
    async with get_client() as client:
        for size in sizes:
            await client.upsert_global_concurrency_limit_by_name(
                size.name, size.limit, slot_decay_per_second=size.per_second
            )
    return sizes
