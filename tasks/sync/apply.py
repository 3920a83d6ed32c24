"""Applying the engine's writes: Salesforce commands in batches, CXone states one by one under a bound.

Salesforce presence can only be set by the agent's console, so a Salesforce write is a
`Presence_Sync_Command__e` event for the presence applier, published 200 to a `/composite/sobjects`
call, or, with the console gateway, a command for the agent's console that a `SalesforceWriter`
(`console_channel.ConsoleWriter`) submits to the broker; logging the agent out of Omni-Channel is
statusId "0" (apis.md S4). A CXone write sets the state through the agent's session (the client
caches sessions and re-joins on 404); ending the session is the Agent API's force logout (apis.md
C3). Every write comes back as a `WriteResult`: ok, transient (retried later with backoff) or
permanent (recorded with its reason, not retried). A write whose answer was lost is never
re-sent blindly: CXone's `set_state` reads the agent's state first; for Salesforce commands the users'
current status is read, and only those not showing the target are retried (later, with backoff).

    results = await set_cxone_states(writes, ctx.cxone, concurrency=32)
    results = await publish_commands(writes, ctx.salesforce, targets)

The sync runs them through one `Applier` per system (below): in the background, each unit under its
own deadline, at most one write in flight per agent.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

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
    current_spells,
)
from presence_sync.connectors.salesforce import COMPOSITE_LIMIT, OFFLINE_STATUS_ID
from presence_sync.engine import OMNI_OFFLINE, CxoneTarget, Write, WriteOutcome, WriteResult

logger = logging.getLogger(__name__)

COMMAND_REASON = "presence-sync"
# A spent daily budget replenishes over hours; try again after a while rather than at once.
BUDGET_SPENT_RETRY_SECONDS = 300.0


@dataclass(frozen=True)
class WriteTargets:
    """What a write needs beyond the engine's decision: each agent's Salesforce user, each status's Id."""

    sf_user_of: Mapping[int, str]
    status_ids: Mapping[str, str]


class SalesforceWriter(Protocol):
    """Another way to the agents' consoles than platform events (the console gateway's broker)."""

    async def submit(self, writes: Sequence[Write], targets: WriteTargets) -> list[WriteResult]: ...


async def publish_commands(
    writes: Sequence[Write], salesforce: SalesforceClient, targets: WriteTargets
) -> list[WriteResult]:
    """Salesforce writes as presence commands, `COMPOSITE_LIMIT` per call, the calls concurrently."""
    results: list[WriteResult] = []
    ready: list[tuple[Write, PresenceCommand]] = []
    for write in writes:
        target = salesforce_target(write, targets)
        if isinstance(target, WriteResult):
            results.append(target)
        else:
            user_id, status_id = target
            ready.append((write, PresenceCommand(user_id, status_id, write.command_id, COMMAND_REASON)))
    chunks = [ready[start : start + COMPOSITE_LIMIT] for start in range(0, len(ready), COMPOSITE_LIMIT)]
    answers = await asyncio.gather(
        *(salesforce.publish_presence_commands([command for _, command in chunk]) for chunk in chunks),
        return_exceptions=True,
    )
    for chunk, answer in zip(chunks, answers, strict=True):
        if isinstance(answer, TransientError) and answer.outcome_unknown:
            results.extend(await _after_lost_answer([write for write, _ in chunk], answer, salesforce, targets))
            continue
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


async def _after_lost_answer(
    writes: Sequence[Write], lost: TransientError, salesforce: SalesforceClient, targets: WriteTargets
) -> list[WriteResult]:
    """Presence commands whose publishing answer was lost: the API has no idempotency key, so read the
    users' current status first. Those that show the target took effect; the others are retried later
    (and if their command lands meanwhile, its echo settles them before the retry is due)."""
    try:
        shown = {
            spell.user_id: spell.label
            for spell in (await current_spells(salesforce, user_ids={targets.sf_user_of[w.agent_id] for w in writes})).records
        }
    except ConnectorError as error:
        logger.warning("Salesforce: the answer to %d presence command(s) was lost (%s) and reading the users' "
                       "status failed too (%s); retried later", len(writes), lost, error)
        shown = {}
    results = []
    for write in writes:
        if shown.get(targets.sf_user_of[write.agent_id]) == str(write.target):
            results.append(WriteResult(write.agent_id, write.command_id, WriteOutcome.OK))
        else:
            results.append(failed(write, lost))
    return results


def salesforce_target(write: Write, targets: WriteTargets) -> tuple[str, str] | WriteResult:
    """The agent's Salesforce user and the status's Id, or the permanent result saying which is missing."""
    user_id = targets.sf_user_of.get(write.agent_id)
    status_id = OFFLINE_STATUS_ID if write.target == OMNI_OFFLINE else targets.status_ids.get(str(write.target))
    if user_id is None:
        return _permanent(write, "the agent is no longer linked to a Salesforce user")
    if status_id is None:
        return _permanent(
            write,
            f"Salesforce has no presence status {write.target!r}; run onboarding so that it creates the "
            "rule's statuses",
        )
    return user_id, status_id


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


ApplyBatch = Callable[[Sequence[Write]], Awaitable[list[WriteResult]]]


# A change's moment, for `CrowdsLast`: its rank (when it was made, in seconds) to this width. A burst made
# at once shares a few moments; people's changes around it have one each (80 a second at 10,000 agents).
MOMENT_SECONDS = 0.1
# Every this many freed slots, one goes to the oldest waiter whatever its crowd: nothing waits forever.
OLDEST_EVERY = 8


class CrowdsLast:
    """At most `slots` holders at once; a freed slot goes to a waiter of the moment (its rank to
    `MOMENT_SECONDS`) with the fewest waiting, the earliest such moment first and first come, first
    served within one; every `OLDEST_EVERY`-th goes to the oldest waiter.

    A burst (thousands of changes made at once) takes seconds to apply. The changes people made around
    it, just before or after, even when the same poll read them, are each alone in their moment and go
    ahead of it; the burst takes every slot they leave, so it ends no later. (Taking slots for the newest
    and the oldest waiter in turn gave them every other slot: ~140 changes read with a burst's last
    pages waited 0.4-0.6 s for their writes.) Nothing starves: a crowd shrinks as it is served, and the
    oldest waiter gets its turn.

        gate = CrowdsLast(32)
        await gate.acquire(rank=1764842400.0)   # e.g. when the change was made
        try: ...
        finally: gate.release()
    """

    def __init__(self, slots: int) -> None:
        self._free = slots
        # Each waiter is in its moment's queue and in the heap (rank, arrival, future, moment); one
        # granted or cancelled through either is skipped in the other (its future is done).
        self._moments: dict[int, deque[asyncio.Future[None]]] = {}
        self._waiting_in: dict[int, int] = {}  # moment -> its waiters not granted or cancelled yet
        # (waiters, moment) each time a moment's count changes; an entry whose count is no longer the
        # moment's is dropped when it comes up. A min() over the moments per slot was O(moments): a
        # backlog of changes made over minutes has thousands.
        self._crowds: list[tuple[int, int]] = []
        self._oldest: list[tuple[float, int, asyncio.Future[None], int]] = []
        self._waiting = 0
        self._arrivals = itertools.count()
        self._grants = 0

    async def acquire(self, rank: float) -> None:
        if self._free > 0 and self._waiting == 0:
            self._free -= 1
            return
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        moment = math.floor(rank / MOMENT_SECONDS)
        self._moments.setdefault(moment, deque()).append(granted)
        self._count(moment, self._waiting_in.get(moment, 0) + 1)
        heapq.heappush(self._oldest, (rank, next(self._arrivals), granted, moment))
        self._waiting += 1
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self.release()  # handed a slot just as it was cancelled: pass it on
            else:
                self._left(moment)
            raise

    def release(self) -> None:
        if self._waiting == 0:
            self._free += 1
            return
        self._grants += 1
        if self._grants % OLDEST_EVERY == 0:
            granted, moment = self._pop_oldest()
        else:
            moment = self._least_crowded()
            queue = self._moments[moment]
            granted = queue.popleft()
            while granted.done():
                granted = queue.popleft()
        granted.set_result(None)
        self._left(moment)

    def _pop_oldest(self) -> tuple[asyncio.Future[None], int]:
        while True:
            _, _, granted, moment = heapq.heappop(self._oldest)
            if not granted.done():
                return granted, moment

    def _least_crowded(self) -> int:
        crowds, waiting_in = self._crowds, self._waiting_in
        while waiting_in.get(crowds[0][1]) != crowds[0][0]:
            heapq.heappop(crowds)
        return crowds[0][1]

    def _count(self, moment: int, waiters: int) -> None:
        if waiters:
            self._waiting_in[moment] = waiters
            heapq.heappush(self._crowds, (waiters, moment))
        else:
            del self._waiting_in[moment], self._moments[moment]

    def _left(self, moment: int) -> None:
        """One waiter of `moment` was granted a slot or gave up."""
        self._waiting -= 1
        self._count(moment, self._waiting_in[moment] - 1)
        if self._waiting == 0:  # what is left in the heaps was granted, cancelled or counted since
            self._oldest.clear()
            self._crowds.clear()


class Applier:
    """One system's writes, applied in the background in units of at most `batch_size`, each unit
    under its own deadline; the tick submits and later collects the results. Units take the
    concurrency bound by their ranks (`CrowdsLast`): a burst's writes after the changes made around it.

    Per agent there is at most one write in flight: a later write for a busy agent waits behind it,
    and replaces an earlier one still waiting (the later decision supersedes it; the superseded write
    gets a transient result, which the engine ignores since its command is no longer the agent's).
    A unit that outlives `deadline_seconds` is cancelled and its writes come back transient (retried
    later by the engine; an echo seen meanwhile settles them).

        applier = Applier("CXone", lambda batch: set_cxone_states(batch, cxone, 32), batch_size=1)
        applier.submit(writes)
        await applier.wait(5.0, {w.command_id for w in writes})   # this tick's share of waiting
        for write, result in applier.collect(): ...
        await applier.aclose()
    """

    def __init__(
        self,
        system: str,
        apply_batch: ApplyBatch,
        *,
        batch_size: int = 1,
        deadline_seconds: float = 60.0,
        concurrency: int = 32,
    ) -> None:
        self.system = system
        self._apply_batch = apply_batch
        self._batch_size = batch_size
        self._deadline = deadline_seconds
        self._bound = CrowdsLast(concurrency)
        self._submissions = itertools.count(1)
        self._submitted_in: dict[str, float] = {}  # command id -> its submission's rank (newness)
        self._waiting: dict[int, Write] = {}  # by agent, in submission order
        self._busy: dict[int, str] = {}  # agent -> command id being applied
        self._done: list[tuple[Write, WriteResult]] = []
        self._landed: set[str] = set()  # command ids applied OK among `_done`
        self._tasks: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Event()
        # Each `wait` for given commands: those still unfinished, and its wake-up. Kept per waiter so
        # that a finishing write costs O(1), not a pass over every write in flight (a burst is 10,000).
        self._watches: list[tuple[set[str], asyncio.Event]] = []

    @property
    def in_flight(self) -> int:
        """Writes being applied or waiting for their agent's earlier write."""
        return len(self._busy) + len(self._waiting)

    def in_flight_commands(self) -> set[str]:
        return {*self._busy.values(), *(write.command_id for write in self._waiting.values())}

    def submit(self, writes: Iterable[Write], newness: Mapping[int, float] | None = None) -> None:
        """Apply `writes` in the background. `newness` ranks them per agent for the concurrency bound
        (`CrowdsLast`), larger for newer: when the change each answers was made (default: this call's
        writes are newer than all before). The sync passes it: a burst is decided over several calls,
        and the changes made just before and after it, read by the same poll or later, go ahead of its
        middle."""
        submission = next(self._submissions)
        for write in writes:
            if self._busy.get(write.agent_id) == write.command_id or write.command_id in self._landed:
                # The engine's retry of a write still being applied, or applied since the tick last
                # collected (queued behind the concurrency bound for longer than the echo timeout, in a
                # big burst): the first attempt answers for both.
                continue
            superseded = self._waiting.pop(write.agent_id, None)
            if superseded is not None and superseded.command_id != write.command_id:
                self._submitted_in.pop(superseded.command_id, None)
                self._done.append((superseded, WriteResult(
                    superseded.agent_id, superseded.command_id, WriteOutcome.TRANSIENT,
                    "superseded by a later decision for the agent before it was sent",
                )))
                self._finished(superseded.command_id)
            self._waiting[write.agent_id] = write
            self._submitted_in[write.command_id] = submission if newness is None else newness.get(write.agent_id, 0)
        self._start()

    def collect(self) -> list[tuple[Write, WriteResult]]:
        """The writes finished since the last call, with their results."""
        done, self._done = self._done, []
        self._landed.clear()
        return done

    async def wait(self, timeout: float, commands: set[str] | None = None) -> None:
        """Until nothing (of `commands`, when given) is in flight, or `timeout` seconds have passed
        (what is left carries on)."""
        if commands is not None:
            remaining = commands & self.in_flight_commands()
            if not remaining:
                return
            watch = (remaining, asyncio.Event())
            self._watches.append(watch)
        try:
            async with asyncio.timeout(timeout):
                if commands is not None:
                    await watch[1].wait()
                while commands is None and self.in_flight:
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            pass
        finally:
            if commands is not None:
                self._watches.remove(watch)

    def _finished(self, command_id: str) -> None:
        for remaining, done in self._watches:
            remaining.discard(command_id)
            if not remaining:
                done.set()

    async def aclose(self) -> None:
        """Cancel what is still being applied (its writes stay in flight in memory: the echo or the
        echo timeout settles them, as after a crash)."""
        tasks, self._tasks = set(self._tasks), set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._waiting.clear()
        self._busy.clear()
        self._submitted_in.clear()
        for remaining, done in self._watches:
            remaining.clear()
            done.set()

    def _start(self) -> None:
        ready = [write for agent_id, write in self._waiting.items() if agent_id not in self._busy]
        for write in ready:
            del self._waiting[write.agent_id]
            self._busy[write.agent_id] = write.command_id
        for start in range(0, len(ready), self._batch_size):
            task = asyncio.ensure_future(self._run(ready[start : start + self._batch_size]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self._changed.set()

    async def _run(self, batch: list[Write]) -> None:
        submission = max(self._submitted_in.get(write.command_id, 0) for write in batch)
        try:
            await self._bound.acquire(submission)
            try:
                async with asyncio.timeout(self._deadline):
                    results = await self._apply_batch(batch)
            finally:
                self._bound.release()
        except TimeoutError:
            reason = (
                f"{self.system} did not finish this write within its {self._deadline:g} s deadline; "
                "it is checked and retried later"
            )
            results = [WriteResult(w.agent_id, w.command_id, WriteOutcome.TRANSIENT, reason) for w in batch]
        except Exception as error:  # noqa: BLE001 - one unit's bug must not stop the others; retried later
            logger.exception("applying %d %s write(s) failed unexpectedly", len(batch), self.system)
            reason = f"applying the write failed unexpectedly: {type(error).__name__}: {error}"
            results = [WriteResult(w.agent_id, w.command_id, WriteOutcome.TRANSIENT, reason) for w in batch]
        by_command = {result.command_id: result for result in results}
        for write in batch:
            result = by_command[write.command_id]
            self._done.append((write, result))
            if result.outcome is WriteOutcome.OK:
                self._landed.add(write.command_id)
            self._busy.pop(write.agent_id, None)
            self._submitted_in.pop(write.command_id, None)
            self._finished(write.command_id)
        self._start()
