"""When agents need the engine again without a new observation (echo timeouts, retries).

The sync tick keeps one `WakeQueue` beside the memory it holds, so each decide handles only the
agents observed plus those due: O(changes), not O(agents).

Example:
    >>> queue = WakeQueue()
    >>> queue.update(decision.memory)                               # doctest: +SKIP
    >>> decide(..., due_agents=queue.pop_due(now))                  # doctest: +SKIP
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from datetime import datetime

from presence_sync.engine.memory import AgentMemory


class WakeQueue:
    """Min-heap of (due time, agent id); entries made obsolete by newer memory are skipped lazily."""

    def __init__(self, memory: Mapping[int, AgentMemory] | None = None) -> None:
        self._due_at: dict[int, datetime] = {}
        self._heap: list[tuple[datetime, int]] = []
        self.update(memory or {})

    def update(self, changed: Mapping[int, AgentMemory]) -> None:
        """Take in the memory of agents that changed (a `Decision.memory` or `record_write_results` output)."""
        for agent_id, memory in changed.items():
            due_at = memory.next_due_at
            if due_at is None:
                self._due_at.pop(agent_id, None)
            elif self._due_at.get(agent_id) != due_at:
                self._due_at[agent_id] = due_at
                heapq.heappush(self._heap, (due_at, agent_id))

    def pop_due(self, now: datetime) -> set[int]:
        """Agents due at or before `now`; they are removed until `update` schedules them again."""
        due: set[int] = set()
        while self._heap and self._heap[0][0] <= now:
            due_at, agent_id = heapq.heappop(self._heap)
            if self._due_at.get(agent_id) == due_at:
                del self._due_at[agent_id]
                due.add(agent_id)
        return due

    def __len__(self) -> int:
        return len(self._due_at)
