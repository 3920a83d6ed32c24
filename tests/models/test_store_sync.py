"""The sync's durable state: commit_tick, memory, cursors, spells, audit and write queries."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import event

from presence_sync.models.store import (
    AgentLink,
    AgentState,
    AgentStateRow,
    Audit,
    AuditRow,
    InflightWrite,
    InflightWriteRow,
    LinkedBy,
    Store,
    StoreConflictError,
    WriteStatus,
)

if TYPE_CHECKING:
    from tests.models.conftest import FakeClock, StatementLog

CX_TO_SF = "cxone->salesforce"
SF_TO_CX = "salesforce->cxone"


def _state(agent_id: int, tick: int = 0) -> AgentStateRow:
    return AgentStateRow(
        agent_id=agent_id,
        memory={"cxone": {"state": "Available", "at": f"10:00:{tick:02d}"}, "tick": tick},
        cxone_state="Available",
        sf_status="Available_for_Chats",
        truth_side="cxone",
    )


def _audit(
    agent_id: int, at: datetime, direction: str = CX_TO_SF, outcome: str = "write"
) -> AuditRow:
    return AuditRow(
        at=at,
        agent_id=agent_id,
        direction=direction,
        outcome=outcome,
        from_value="Available",
        to_value="On_Break",
        rule_row="Unavailable: Break -> On_Break",
        reason="the agent went on break in CXone",
        observed_at=at - timedelta(milliseconds=300),
        command_id=f"{agent_id}-sf-1",
        latency_ms=300.0,
        run_id="window-1",
    )


def _write(
    command_id: str,
    agent_id: int,
    at: datetime,
    status: WriteStatus = WriteStatus.PENDING,
    **changes: Any,
) -> InflightWriteRow:
    row = InflightWriteRow(
        command_id=command_id,
        agent_id=agent_id,
        side="salesforce",
        target="On_Break",
        issued_at=at,
        attempts=1,
        next_attempt_at=None,
        status=status,
        last_error=None,
    )
    return row | changes  # type: ignore[return-value]


def _counts(pending: int = 0, failed: int = 0, gave_up: int = 0) -> dict[WriteStatus, int]:
    return {WriteStatus.PENDING: pending, WriteStatus.FAILED: failed, WriteStatus.GAVE_UP: gave_up}


def test_a_tick_is_saved_and_read_back(store: Store, clock: FakeClock) -> None:
    store.commit_tick(
        agents=[_state(1), _state(2)],
        audit=[_audit(1, clock.now)],
        inflight_upserts=[_write("cmd-1", 1, clock.now)],
        cursors={"cxone": "2026-11-25T10:00:00.000Z", "salesforce": "2026-11-25T09:59:58.000Z"},
        seen_spells=["0Hn000000000001", "0Hn000000000002"],
    )

    assert store.load_agent_memory() == {1: _state(1)["memory"], 2: _state(2)["memory"]}
    assert store.load_agent_memory([2, 99]) == {2: _state(2)["memory"]}
    assert store.load_agent_memory([]) == {}
    assert store.get_cursor("cxone") == "2026-11-25T10:00:00.000Z"
    assert store.get_cursor("never-saved") is None
    assert store.seen_spells() == {"0Hn000000000001", "0Hn000000000002"}
    assert store.write_counts() == _counts(pending=1)
    [saved] = store.audit_for(agent_id=1)
    assert saved.model_dump(exclude={"id"}) == _audit(1, clock.now)


def test_later_ticks_update_memory_settle_writes_and_advance_cursors(
    store: Store, clock: FakeClock
) -> None:
    store.commit_tick(
        agents=[_state(1)],
        inflight_upserts=[_write("cmd-1", 1, clock.now), _write("cmd-2", 2, clock.now)],
        cursors={"cxone": "t1"},
        seen_spells=["0Hn1"],
    )
    clock.advance(1)

    store.commit_tick(
        agents=[_state(1, tick=1)],
        inflight_upserts=[
            _write(
                "cmd-2",
                2,
                clock.now,
                WriteStatus.GAVE_UP,
                side="cxone",
                target="Unavailable: Break",
                attempts=3,
                last_error="the agent has no CXone session",
            )
        ],
        inflight_deletes=["cmd-1", "cmd-never-stored"],
        cursors={"cxone": "t2"},
        seen_spells=["0Hn1", "0Hn2"],  # the poll overlap sees 0Hn1 again
    )

    assert store.load_agent_memory() == {1: _state(1, tick=1)["memory"]}
    assert store.get_cursor("cxone") == "t2"
    assert store.seen_spells() == {"0Hn1", "0Hn2"}
    assert store.write_counts() == _counts(gave_up=1)
    [gave_up] = store.list_inflight(WriteStatus.GAVE_UP)
    assert (gave_up.attempts, gave_up.last_error) == (3, "the agent has no CXone session")
    assert store.list_inflight(WriteStatus.PENDING) == []


def test_a_crash_mid_tick_leaves_cursors_and_memory_as_they_were(
    store: Store, clock: FakeClock
) -> None:
    store.commit_tick(agents=[_state(1)], cursors={"cxone": "before"}, audit=[_audit(1, clock.now)])

    def crash_on_spells(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if "seen_spell" in statement:  # the last write of a tick, after memory and cursors
            raise RuntimeError("process killed")

    event.listen(store.engine, "before_cursor_execute", crash_on_spells)
    try:
        with pytest.raises(RuntimeError, match="process killed"):
            store.commit_tick(
                agents=[_state(1, tick=5), _state(2, tick=5)],
                audit=[_audit(2, clock.now)],
                inflight_upserts=[_write("cmd-9", 2, clock.now)],
                cursors={"cxone": "after"},
                seen_spells=["0Hn9"],
            )
    finally:
        event.remove(store.engine, "before_cursor_execute", crash_on_spells)

    assert store.get_cursor("cxone") == "before"
    assert store.load_agent_memory() == {1: _state(1)["memory"]}
    assert len(store.audit_for()) == 1
    assert store.write_counts()[WriteStatus.PENDING] == 0
    assert store.seen_spells() == set()


def test_a_row_the_database_refuses_rolls_back_the_whole_tick(
    store: Store, clock: FakeClock
) -> None:
    store.commit_tick(cursors={"cxone": "before"})
    broken = _audit(1, clock.now) | {"reason": None}  # NOT NULL: refused by the database

    with pytest.raises(StoreConflictError, match="refused a write"):
        store.commit_tick(agents=[_state(1)], audit=[broken], cursors={"cxone": "after"})

    assert store.get_cursor("cxone") == "before"
    assert store.load_agent_memory() == {}


def _statements_per_tick(
    store: Store, statement_log: StatementLog, ids: range, at: datetime
) -> list[int]:
    """Statements sent by a busy tick, a settling tick and two memory loads over ``ids``."""
    with statement_log(store.engine) as busy_tick:
        store.commit_tick(
            agents=[_state(i) for i in ids],
            audit=[_audit(i, at) for i in ids],
            inflight_upserts=[_write(f"cmd-{i}", i, at) for i in ids],
            cursors={"cxone": "t1", "salesforce": "w1"},
            seen_spells=[f"0Hn{i}" for i in ids],
        )
    with statement_log(store.engine) as settling_tick:
        store.commit_tick(
            agents=[_state(i, tick=1) for i in ids],
            inflight_deletes=[f"cmd-{i}" for i in ids],
            cursors={"cxone": "t2"},
        )
    with statement_log(store.engine) as loads:
        assert len(store.load_agent_memory(ids)) == len(ids)
        assert store.load_agent_memory()[ids[-1]] == _state(ids[-1], tick=1)["memory"]
    return [len(busy_tick), len(settling_tick), len(loads)]


def test_a_tick_costs_the_same_few_statements_for_10_or_10000_agents(
    store: Store, clock: FakeClock, statement_log: StatementLog
) -> None:
    ten = _statements_per_tick(store, statement_log, range(1, 11), clock.now)
    ten_thousand = _statements_per_tick(store, statement_log, range(11, 10_011), clock.now)

    assert ten == ten_thousand
    # BEGIN (SQLite) + one statement per kind of row; two SELECTs (+ BEGINs) for the loads.
    assert ten_thousand[0] <= 6 and ten_thousand[1] <= 4 and ten_thousand[2] <= 4
    assert store.write_counts()[WriteStatus.PENDING] == 0
    assert len(store.seen_spells()) == 10_010


def test_linking_10000_agents_costs_the_same_few_statements(
    store: Store, statement_log: StatementLog
) -> None:
    def links(team: str) -> list[AgentLink]:
        return [
            AgentLink(
                cxone_agent_id=i,
                cxone_username=f"agent{i}",
                cxone_email=f"agent{i}@example.com",
                team_id=1,
                team_name=team,
                sf_user_id=f"005{i:015d}",
                sf_username=f"agent{i}@example.com",
                linked_by=LinkedBy.EMAIL,
            )
            for i in range(1, 10_001)
        ]

    with statement_log(store.engine) as statements:
        created = store.upsert_links(links("Voice Team A"))
        updated = store.upsert_links(links("Voice Team B")[:5_000], prune=True)

    assert (created.created, updated.updated, updated.removed) == (10_000, 5_000, 5_000)
    assert len(statements) <= 10  # per call: BEGIN, read links, delete changed, insert
    assert store.count_links() == 5_000


def test_pruning_forgets_old_spells_and_old_audit_rows(store: Store, clock: FakeClock) -> None:
    start = clock.now
    store.commit_tick(seen_spells=["old"], audit=[_audit(1, start)])
    clock.advance(600)
    store.commit_tick(seen_spells=["new"], audit=[_audit(1, clock.now)])

    assert store.prune_seen_spells(older_than=start + timedelta(seconds=60)) == 1
    assert store.prune_audit(older_than=start + timedelta(seconds=60)) == 1
    assert store.seen_spells() == {"new"}
    assert [row.at for row in store.audit_for()] == [clock.now]


def test_audit_queries_filter_by_agent_and_time_newest_first(
    store: Store, clock: FakeClock
) -> None:
    start = clock.now
    rows = [
        _audit(1, start),
        _audit(2, start + timedelta(seconds=1), direction=SF_TO_CX),
        _audit(1, start + timedelta(seconds=2), outcome="echo"),
        _audit(1, start + timedelta(seconds=3), direction=SF_TO_CX, outcome="unmapped"),
    ]
    store.commit_tick(audit=rows)

    assert [r.outcome for r in store.audit_for(agent_id=1)] == ["unmapped", "echo", "write"]
    assert [r.agent_id for r in store.audit_for(since=start + timedelta(seconds=1))] == [1, 1, 2]
    assert [r.at for r in store.audit_for(limit=2)] == [rows[3]["at"], rows[2]["at"]]
    assert store.audit_for(agent_id=1, since=start + timedelta(seconds=3))[0].outcome == "unmapped"
    last_out = store.last_audit(CX_TO_SF)
    last_in = store.last_audit(SF_TO_CX)
    assert last_out is not None and (last_out.agent_id, last_out.outcome) == (1, "echo")
    assert last_in is not None and (last_in.agent_id, last_in.outcome) == (1, "unmapped")
    assert store.last_audit("sideways") is None


def test_echo_counts_and_latencies_cover_one_direction_from_a_time_on(store: Store, clock: FakeClock) -> None:
    start = clock.now
    rows = [_audit(agent, start + timedelta(milliseconds=agent), outcome="echo") for agent in range(1, 1201)]
    rows += [_audit(1, start, direction=SF_TO_CX, outcome="echo"), _audit(2, start, outcome="write")]
    rows += [_audit(3, start - timedelta(hours=1), outcome="echo")]
    store.commit_tick(audit=rows)

    assert store.count_echoes(CX_TO_SF, start) == 1200  # not capped by the latency sample's limit
    assert store.count_echoes(SF_TO_CX, start) == 1
    assert len(store.echo_latencies(CX_TO_SF, start, limit=1000)) == 1000
    assert store.echo_latencies(SF_TO_CX, start) == [300.0]


def test_a_limit_below_one_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="limit must be at least 1"):
        store.audit_for(limit=0)


def test_failed_and_given_up_writes_are_counted_and_listed_oldest_first(
    store: Store, clock: FakeClock
) -> None:
    start = clock.now
    store.commit_tick(
        inflight_upserts=[
            _write("late", 1, start + timedelta(seconds=5), WriteStatus.FAILED),
            _write("early", 2, start, WriteStatus.FAILED),
            _write("pending", 3, start),
            _write("gave-up", 4, start, WriteStatus.GAVE_UP),
        ]
    )

    assert store.write_counts() == _counts(pending=1, failed=2, gave_up=1)
    assert [w.command_id for w in store.list_inflight(WriteStatus.FAILED)] == ["early", "late"]
    assert len(store.list_inflight(limit=3)) == 3


@pytest.mark.parametrize(
    ("row_type", "model", "filled_by_store"),
    [
        (AgentStateRow, AgentState, {"updated_at"}),
        (AuditRow, Audit, {"id"}),
        (InflightWriteRow, InflightWrite, set()),
    ],
)
def test_tick_rows_carry_exactly_the_columns_of_their_table(
    row_type: type, model: type, filled_by_store: set[str]
) -> None:
    columns = {column.name for column in model.__table__.columns}

    assert set(row_type.__annotations__) == columns - filled_by_store


def test_cxone_sessions_are_saved_with_the_tick_and_forgotten_when_ended(store: Store) -> None:
    store.commit_tick(cxone_sessions={1: "s-1", 2: "s-2"})
    store.commit_tick(cxone_sessions={1: "s-1b", 2: None, 3: "s-3"})
    assert store.cxone_sessions() == {1: "s-1b", 3: "s-3"}
