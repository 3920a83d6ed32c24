"""`SyncState`: commit_tick, agent memory with its writes, cursors, spells, sessions, pruning."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import event

from presence_sync.models.store import (
    AgentState,
    AgentStateRow,
    AgentWrite,
    Audit,
    AuditRow,
    Store,
    StoreConflictError,
    WriteRow,
    WriteStatus,
)
from presence_sync.models.store.connection import SQLITE_WAL_CHECKPOINT_PAGES
from tests.models.tick_rows import audit, counts, state, write

if TYPE_CHECKING:
    from tests.models.conftest import FakeClock, StatementLog


def test_a_tick_is_saved_and_read_back(store: Store, clock: FakeClock) -> None:
    store.sync.commit_tick(
        agents=[state(1, writes=(write("cmd-1", clock.now),)), state(2)],
        audit=[audit(1, clock.now)],
        cursors={"cxone": "2026-11-25T10:00:00.000Z", "salesforce": "2026-11-25T09:59:58.000Z"},
        seen_spells=["0Hn000000000001", "0Hn000000000002"],
    )

    assert store.sync.load_agent_memory() == {1: state(1)["memory"], 2: state(2)["memory"]}
    assert store.sync.load_agent_memory([2, 99]) == {2: state(2)["memory"]}
    assert store.sync.load_agent_memory([]) == {}
    assert store.sync.get_cursor("cxone") == "2026-11-25T10:00:00.000Z"
    assert store.sync.get_cursor("never-saved") is None
    assert store.sync.seen_spells() == {"0Hn000000000001", "0Hn000000000002"}
    assert store.reports.write_counts() == counts(pending=1)
    [saved] = store.reports.audit_for(agent_id=1)
    assert saved.model_dump(exclude={"id"}) == audit(1, clock.now)


def test_later_ticks_update_memory_settle_writes_and_advance_cursors(
    store: Store, clock: FakeClock
) -> None:
    store.sync.commit_tick(
        agents=[state(1, writes=(write("cmd-1", clock.now),)), state(2, writes=(write("cmd-2", clock.now),))],
        cursors={"cxone": "t1"},
        seen_spells=["0Hn1"],
    )
    clock.advance(1)

    given_up = write(
        "cmd-2",
        clock.now,
        WriteStatus.GAVE_UP,
        attempts=3,
        last_error="the agent has no CXone session",
    )
    store.sync.commit_tick(
        agents=[state(1, tick=1), state(2, tick=1, writes=(given_up,))],  # agent 1's write settled
        cursors={"cxone": "t2"},
        seen_spells=["0Hn1", "0Hn2"],  # the poll overlap sees 0Hn1 again
    )

    assert store.sync.load_agent_memory() == {1: state(1, tick=1)["memory"], 2: state(2, tick=1)["memory"]}
    assert store.sync.get_cursor("cxone") == "t2"
    assert store.sync.seen_spells() == {"0Hn1", "0Hn2"}
    assert store.reports.write_counts() == counts(gave_up=1)
    [gave_up] = store.reports.list_writes(WriteStatus.GAVE_UP)
    assert (gave_up.agent_id, gave_up.attempts, gave_up.last_error) == (2, 3, "the agent has no CXone session")
    assert store.reports.list_writes(WriteStatus.PENDING) == []


def test_a_write_counts_while_the_memory_it_was_saved_with_is_the_agents(store: Store, clock: FakeClock) -> None:
    to_cxone = write("cmd-cx", clock.now, side="cxone", target="Unavailable: Break")
    store.sync.commit_tick(agents=[state(1, writes=(write("cmd-sf", clock.now), to_cxone))])
    assert store.reports.write_counts() == counts(pending=2)

    store.sync.commit_tick(agents=[state(1, tick=1, writes=(to_cxone | {"status": WriteStatus.FAILED},))])
    [failed] = store.reports.list_writes()
    assert (failed.command_id, failed.side, failed.status) == ("cmd-cx", "cxone", WriteStatus.FAILED)

    store.sync.commit_tick(agents=[state(2, writes=(write("cmd-2", clock.now),))])  # other agents' saves
    assert store.reports.write_counts() == counts(pending=1, failed=1)

    store.sync.commit_tick(agents=[state(1, tick=2, writes=(write("cmd-sf-2", clock.now),))])
    assert [w.command_id for w in store.reports.list_writes()] == ["cmd-2", "cmd-sf-2"]


def test_a_crash_mid_tick_leaves_cursors_and_memory_as_they_were(
    store: Store, clock: FakeClock
) -> None:
    store.sync.commit_tick(agents=[state(1)], cursors={"cxone": "before"}, audit=[audit(1, clock.now)])

    def crash_on_spells(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if "seen_spell" in statement:  # the last write of a tick, after memory and cursors
            raise RuntimeError("process killed")

    event.listen(store.engine, "before_cursor_execute", crash_on_spells)
    try:
        with pytest.raises(RuntimeError, match="process killed"):
            store.sync.commit_tick(
                agents=[state(1, tick=5), state(2, tick=5, writes=(write("cmd-9", clock.now),))],
                audit=[audit(2, clock.now)],
                cursors={"cxone": "after"},
                seen_spells=["0Hn9"],
            )
    finally:
        event.remove(store.engine, "before_cursor_execute", crash_on_spells)

    assert store.sync.get_cursor("cxone") == "before"
    assert store.sync.load_agent_memory() == {1: state(1)["memory"]}
    assert len(store.reports.audit_for()) == 1
    assert store.reports.write_counts()[WriteStatus.PENDING] == 0
    assert store.sync.seen_spells() == set()


def test_a_row_the_database_refuses_rolls_back_the_whole_tick(
    store: Store, clock: FakeClock
) -> None:
    store.sync.commit_tick(cursors={"cxone": "before"})
    broken = audit(1, clock.now) | {"reason": None}  # NOT NULL: refused by the database

    with pytest.raises(StoreConflictError, match="refused a write"):
        store.sync.commit_tick(agents=[state(1)], audit=[broken], cursors={"cxone": "after"})

    assert store.sync.get_cursor("cxone") == "before"
    assert store.sync.load_agent_memory() == {}


def _statements_per_tick(
    store: Store, statement_log: StatementLog, ids: range, at: datetime
) -> list[int]:
    """Statements sent by a busy tick, a settling tick and two memory loads over ``ids``."""
    with statement_log(store.engine) as busy_tick:
        store.sync.commit_tick(
            agents=[state(i, writes=(write(f"cmd-{i}", at),)) for i in ids],
            audit=[audit(i, at) for i in ids],
            cursors={"cxone": "t1", "salesforce": "w1"},
            seen_spells=[f"0Hn{i}" for i in ids],
        )
    with statement_log(store.engine) as settling_tick:
        store.sync.commit_tick(agents=[state(i, tick=1) for i in ids], cursors={"cxone": "t2"})
    with statement_log(store.engine) as loads:
        assert len(store.sync.load_agent_memory(ids)) == len(ids)
        assert store.sync.load_agent_memory()[ids[-1]] == state(ids[-1], tick=1)["memory"]
    return [len(busy_tick), len(settling_tick), len(loads)]


def test_a_tick_costs_the_same_few_statements_for_10_or_10000_agents(
    store: Store, clock: FakeClock, statement_log: StatementLog
) -> None:
    ten = _statements_per_tick(store, statement_log, range(1, 11), clock.now)
    ten_thousand = _statements_per_tick(store, statement_log, range(11, 10_011), clock.now)

    assert ten == ten_thousand
    # BEGIN (SQLite) + one statement per kind of row; two SELECTs (+ BEGINs) for the loads.
    assert ten_thousand[0] <= 6 and ten_thousand[1] <= 4 and ten_thousand[2] <= 4
    assert store.reports.write_counts()[WriteStatus.PENDING] == 0
    assert len(store.sync.seen_spells()) == 10_010


def test_pruning_forgets_old_spells_and_old_audit_rows(store: Store, clock: FakeClock) -> None:
    start = clock.now
    store.sync.commit_tick(seen_spells=["old"], audit=[audit(1, start)])
    clock.advance(600)
    store.sync.commit_tick(seen_spells=["new"], audit=[audit(1, clock.now)])

    assert store.sync.prune_seen_spells(older_than=start + timedelta(seconds=60)) == 1
    assert store.sync.prune_audit(older_than=start + timedelta(seconds=60)) == 1
    assert store.sync.seen_spells() == {"new"}
    assert [row.at for row in store.reports.audit_for()] == [clock.now]


@pytest.mark.parametrize(
    ("row_type", "model", "filled_by_store"),
    [
        (AgentStateRow, AgentState, {"updated_at", "save_id"}),
        (WriteRow, AgentWrite, {"agent_id", "save_id"}),
        (AuditRow, Audit, {"id"}),
    ],
)
def test_tick_rows_carry_exactly_the_columns_of_their_table(
    row_type: type, model: type, filled_by_store: set[str]
) -> None:
    columns = {column.name for column in model.__table__.columns}
    carried = set(row_type.__annotations__) - {"writes"}  # an agent's writes: rows of AgentWrite

    assert carried == columns - filled_by_store


def test_cxone_sessions_are_saved_with_the_tick_and_forgotten_when_ended(store: Store) -> None:
    store.sync.commit_tick(cxone_sessions={1: "s-1", 2: "s-2"})
    store.sync.commit_tick(cxone_sessions={1: "s-1b", 2: None, 3: "s-3"})
    assert store.sync.cxone_sessions() == {1: "s-1b", 3: "s-3"}


def test_memory_json_reads_back_as_written_with_non_string_keys_as_json_writes_them(store: Store) -> None:
    memory = {"v": 3, "nested": {"list": [1, 2.5, None, True, "é"]}, "issued": 7, 42: "forty-two"}
    store.sync.commit_tick(agents=[AgentStateRow(agent_id=5, memory=memory, writes=[])])

    # What json.dumps does with an int key (orjson serialises the column, ~10x faster).
    assert store.sync.load_agent_memory() == {5: {**{k: v for k, v in memory.items() if k != 42}, "42": "forty-two"}}


def test_a_sqlite_store_copies_its_log_back_every_ten_thousand_pages(tmp_path: Any) -> None:
    # A burst's commit writes more than SQLite's default 1,000 pages: each commit would then checkpoint.
    store = Store.open(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == SQLITE_WAL_CHECKPOINT_PAGES == 10_000
    finally:
        store.engine.dispose()


def test_an_agent_given_twice_in_a_tick_is_saved_as_its_last_row(store: Store, clock: FakeClock) -> None:
    # PostgreSQL saves a table's rows in one statement, which may not update a row twice.
    store.sync.commit_tick(agents=[
        state(1, tick=1, writes=(write("cmd-old", clock.now),)),
        state(1, tick=2),
        state(2, tick=1),
    ])
    assert store.sync.load_agent_memory() == {1: state(1, tick=2)["memory"], 2: state(2, tick=1)["memory"]}
    assert store.reports.write_counts() == counts()  # the first row's write went with it
