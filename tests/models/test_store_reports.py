"""`Reports`: the audit trail newest first, echo counts and latencies, writes by status."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from presence_sync.models.store import Store, WriteStatus
from tests.models.tick_rows import CX_TO_SF, SF_TO_CX, audit, counts, state, write

if TYPE_CHECKING:
    from tests.models.conftest import FakeClock


def test_audit_queries_filter_by_agent_and_time_newest_first(
    store: Store, clock: FakeClock
) -> None:
    start = clock.now
    rows = [
        audit(1, start),
        audit(2, start + timedelta(seconds=1), direction=SF_TO_CX),
        audit(1, start + timedelta(seconds=2), outcome="echo"),
        audit(1, start + timedelta(seconds=3), direction=SF_TO_CX, outcome="unmapped"),
    ]
    store.sync.commit_tick(audit=rows)

    assert [r.outcome for r in store.reports.audit_for(agent_id=1)] == ["unmapped", "echo", "write"]
    assert [r.agent_id for r in store.reports.audit_for(since=start + timedelta(seconds=1))] == [1, 1, 2]
    assert [r.at for r in store.reports.audit_for(limit=2)] == [rows[3]["at"], rows[2]["at"]]
    assert store.reports.audit_for(agent_id=1, since=start + timedelta(seconds=3))[0].outcome == "unmapped"
    last_out = store.reports.last_audit(CX_TO_SF)
    last_in = store.reports.last_audit(SF_TO_CX)
    assert last_out is not None and (last_out.agent_id, last_out.outcome) == (1, "echo")
    assert last_in is not None and (last_in.agent_id, last_in.outcome) == (1, "unmapped")
    assert store.reports.last_audit("sideways") is None


def test_echo_counts_and_latencies_cover_one_direction_from_a_time_on(store: Store, clock: FakeClock) -> None:
    start = clock.now
    rows = [audit(agent, start + timedelta(milliseconds=agent), outcome="echo") for agent in range(1, 1201)]
    rows += [audit(1, start, direction=SF_TO_CX, outcome="echo"), audit(2, start, outcome="write")]
    rows += [audit(3, start - timedelta(hours=1), outcome="echo")]
    store.sync.commit_tick(audit=rows)

    assert store.reports.count_echoes(CX_TO_SF, start) == 1200  # not capped by the latency sample's limit
    assert store.reports.count_echoes(SF_TO_CX, start) == 1
    assert len(store.reports.echo_latencies(CX_TO_SF, start, limit=1000)) == 1000
    assert store.reports.echo_latencies(SF_TO_CX, start) == [300.0]


def test_a_limit_below_one_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="limit must be at least 1"):
        store.reports.audit_for(limit=0)


def test_failed_and_given_up_writes_are_counted_and_listed_oldest_first(
    store: Store, clock: FakeClock
) -> None:
    start = clock.now
    store.sync.commit_tick(
        agents=[
            state(1, writes=(write("late", start + timedelta(seconds=5), WriteStatus.FAILED),)),
            state(2, writes=(write("early", start, WriteStatus.FAILED),)),
            state(3, writes=(write("pending", start),)),
            state(4, writes=(write("gave-up", start, WriteStatus.GAVE_UP),)),
        ]
    )

    assert store.reports.write_counts() == counts(pending=1, failed=2, gave_up=1)
    assert [w.command_id for w in store.reports.list_writes(WriteStatus.FAILED)] == ["early", "late"]
    assert len(store.reports.list_writes(limit=3)) == 3
