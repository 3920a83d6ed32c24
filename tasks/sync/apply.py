"""Applying the engine's writes: Salesforce commands in batches, CXone states concurrently under a bound.

Salesforce presence can only be set by the agent's console, so a Salesforce write is a
`Presence_Sync_Command__e` event for the presence applier, published 200 to a `/composite/sobjects`
call; logging the agent out of Omni-Channel is statusId "0" (apis.md S4). A CXone write sets the state
through the agent's session (the client caches sessions and re-joins on 404); ending the session is
the Agent API's force logout (apis.md C3). Every write comes back as a `WriteResult`: ok, transient (retried later with
backoff) or permanent (recorded with its reason, not retried).

    results = await apply_writes(decision.writes, ctx.salesforce, ctx.cxone, targets, concurrency=32)
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from presence_sync.connectors import (
    AuthenticationError,
    ConnectorError,
    CxoneClient,
    MalformedResponse,
    NotFound,
    PresenceCommand,
    RequestLimitExceeded,
    SalesforceClient,
    TransientError,
)
from presence_sync.connectors.salesforce import COMPOSITE_LIMIT, OFFLINE_STATUS_ID
from presence_sync.engine import OMNI_OFFLINE, CxoneTarget, Side, Write, WriteOutcome, WriteResult

COMMAND_REASON = "presence-sync"
# A spent daily budget replenishes over hours; try again after a while rather than at once.
BUDGET_SPENT_RETRY_SECONDS = 300.0


@dataclass(frozen=True)
class WriteTargets:
    """What a write needs beyond the engine's decision: each agent's Salesforce user, each status's Id."""

    sf_user_of: Mapping[int, str]
    status_ids: Mapping[str, str]


async def apply_writes(
    writes: Sequence[Write],
    salesforce: SalesforceClient,
    cxone: CxoneClient,
    targets: WriteTargets,
    *,
    concurrency: int = 32,
) -> list[WriteResult]:
    """Apply every write (both systems at once); one result per write."""
    to_salesforce = [w for w in writes if w.side is Side.SALESFORCE]
    to_cxone = [w for w in writes if w.side is Side.CXONE]
    sf_results, cx_results = await asyncio.gather(
        publish_commands(to_salesforce, salesforce, targets),
        set_cxone_states(to_cxone, cxone, concurrency),
    )
    return [*sf_results, *cx_results]


async def publish_commands(
    writes: Sequence[Write], salesforce: SalesforceClient, targets: WriteTargets
) -> list[WriteResult]:
    """Salesforce writes as presence commands, `COMPOSITE_LIMIT` per call, the calls concurrently."""
    results: list[WriteResult] = []
    ready: list[tuple[Write, PresenceCommand]] = []
    for write in writes:
        user_id = targets.sf_user_of.get(write.agent_id)
        status_id = OFFLINE_STATUS_ID if write.target == OMNI_OFFLINE else targets.status_ids.get(str(write.target))
        if user_id is None:
            results.append(_permanent(write, "the agent is no longer linked to a Salesforce user"))
        elif status_id is None:
            results.append(_permanent(
                write,
                f"Salesforce has no presence status {write.target!r}; run onboarding so that it creates the "
                "rule's statuses",
            ))
        else:
            ready.append((write, PresenceCommand(user_id, status_id, write.command_id, COMMAND_REASON)))
    chunks = [ready[start : start + COMPOSITE_LIMIT] for start in range(0, len(ready), COMPOSITE_LIMIT)]
    answers = await asyncio.gather(
        *(salesforce.publish_presence_commands([command for _, command in chunk]) for chunk in chunks),
        return_exceptions=True,
    )
    for chunk, answer in zip(chunks, answers, strict=True):
        if isinstance(answer, ConnectorError):
            results.extend(failed(write, answer) for write, _ in chunk)
            continue
        if isinstance(answer, BaseException):
            raise answer
        for (write, _), saved in zip(chunk, answer, strict=True):
            if saved.success:
                results.append(WriteResult(write.agent_id, write.command_id, WriteOutcome.OK))
            else:
                first = saved.errors[0] if saved.errors else None
                why = f"{first.status_code}: {first.message}" if first else "no reason given"
                results.append(_permanent(write, f"Salesforce refused the presence command ({why})"))
    return results


async def set_cxone_states(writes: Sequence[Write], cxone: CxoneClient, concurrency: int) -> list[WriteResult]:
    """CXone writes through the Agent API, at most `concurrency` at once."""
    bound = asyncio.Semaphore(concurrency)

    async def one(write: Write) -> WriteResult:
        target = write.target
        assert isinstance(target, CxoneTarget)
        async with bound:
            try:
                if target.is_logout:
                    await cxone.logout_agent(write.agent_id)
                else:
                    await cxone.set_state(write.agent_id, target.state.value, target.code)  # type: ignore[arg-type]
            except ConnectorError as error:
                return failed(write, error)
        return WriteResult(write.agent_id, write.command_id, WriteOutcome.OK)

    return list(await asyncio.gather(*(one(write) for write in writes)))


def failed(write: Write, error: ConnectorError) -> WriteResult:
    """The result of a write the API refused or never answered: transient (retried) or permanent."""
    reason = str(error)
    if isinstance(error, RequestLimitExceeded):
        return WriteResult(write.agent_id, write.command_id, WriteOutcome.TRANSIENT, reason, BUDGET_SPENT_RETRY_SECONDS)
    # A session that ended twice in a row, a garbled answer, or a token refused: worth another try later.
    if isinstance(error, TransientError | NotFound | MalformedResponse | AuthenticationError):
        retry_after = error.retry_after if isinstance(error, TransientError) else None
        return WriteResult(write.agent_id, write.command_id, WriteOutcome.TRANSIENT, reason, retry_after)
    return _permanent(write, reason)


def _permanent(write: Write, reason: str) -> WriteResult:
    return WriteResult(write.agent_id, write.command_id, WriteOutcome.PERMANENT, reason)
