"""How starved the demo's process was: event-loop lag sampled while it ran, and the load on the cores.

A demo on a machine whose cores are oversubscribed reports latencies that measure the queue for a CPU,
not the sync; the summary says so, with these figures, instead of letting them pass for the product's.

    async with LoopLag() as lag:          # samples every 0.1 s while the demo runs
        ...
    machine = lag.machine_load()
    machine.busy, machine.note()          # True, "The machine was busy ... (load 9.8 on 2 cores ...)"
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from types import TracebackType

from presence_sync.tasks.sync.summary import percentile

SAMPLE_SECONDS = 0.1
# Past either, the figures say more about the machine than about the sync: a p95 wake-up this late
# is already a large part of the demo's second-scale propagation, and more runnable tasks than
# cores means the demo waited for a CPU.
BUSY_LAG_P95_SECONDS = 0.2
BUSY_LOAD_PER_CORE = 1.5


@dataclass(frozen=True, slots=True)
class MachineLoad:
    """The cores, the 1-minute load average before and after, and how late the event loop woke."""

    cores: int
    load_before: float
    load_after: float
    lag_p95_seconds: float
    lag_max_seconds: float
    samples: int

    @property
    def busy(self) -> bool:
        per_core = max(self.load_before, self.load_after) / self.cores
        return self.lag_p95_seconds >= BUSY_LAG_P95_SECONDS or per_core >= BUSY_LOAD_PER_CORE

    def measured(self) -> str:
        return (
            f"load {self.load_before:.1f} before, {self.load_after:.1f} after on {self.cores} cores; the demo's "
            f"event loop woke {self.lag_p95_seconds:.2f} s late at p95, {self.lag_max_seconds:.2f} s at worst "
            f"({self.samples} samples)"
        )

    def note(self) -> str:
        """One sentence for the summary: whether the figures mean much, and the measurement behind it."""
        if self.busy:
            return (
                f"The machine was busy while the demo ran ({self.measured()}): its latency figures measure the "
                "wait for a CPU more than the sync; run it again on an idle machine to compare"
            )
        return f"The machine had room for the demo ({self.measured()})"


def load_average() -> float:
    """The 1-minute load average (0 where the platform has none)."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return 0.0


@dataclass
class LoopLag:
    """Samples how late this event loop wakes from a `SAMPLE_SECONDS` sleep, from enter to exit."""

    sample_seconds: float = SAMPLE_SECONDS
    lags: list[float] = field(default_factory=list)
    load_before: float = 0.0
    load_after: float | None = None
    _task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LoopLag:
        self.load_before = load_average()
        self._task = asyncio.create_task(self._sample())
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._task is not None:
            self._task.cancel()
        self.load_after = load_average()

    async def _sample(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(self.sample_seconds)
            self.lags.append(max(0.0, time.monotonic() - before - self.sample_seconds))

    def machine_load(self) -> MachineLoad:
        ordered = sorted(self.lags)
        return MachineLoad(
            cores=os.cpu_count() or 1,
            load_before=self.load_before,
            load_after=load_average() if self.load_after is None else self.load_after,
            lag_p95_seconds=percentile(ordered, 95) or 0.0,
            lag_max_seconds=ordered[-1] if ordered else 0.0,
            samples=len(ordered),
        )
