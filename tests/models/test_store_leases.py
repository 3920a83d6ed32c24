"""`Leases`: one holder at a time, takeover after expiry, handover to a waiter, fencing of a deposed holder."""

from __future__ import annotations

import threading
import uuid
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from presence_sync.models.store import AgentStateRow, Lease, LeaseLostError, Store

if TYPE_CHECKING:
    from tests.models.conftest import FakeClock

TTL = 30.0


def test_a_live_lease_excludes_everyone_else(store: Store) -> None:
    held = store.leases.acquire("sync", "window-1", TTL)

    assert held is not None
    assert (held.name, held.holder, held.fencing_token) == ("sync", "window-1", 1)
    assert store.leases.acquire("sync", "window-2", TTL) is None
    assert store.leases.acquire("reconcile", "window-2", TTL) is not None  # other names are free


def test_an_expired_lease_is_taken_over_with_a_new_fencing_token(
    store: Store, clock: FakeClock
) -> None:
    old = store.leases.acquire("sync", "window-1", TTL)
    assert old is not None
    clock.advance(TTL - 1)
    assert store.leases.acquire("sync", "window-2", TTL) is None

    clock.advance(1)
    new = store.leases.acquire("sync", "window-2", TTL)

    assert new is not None
    assert new.fencing_token > old.fencing_token
    assert new.acquired_at == clock.now
    assert store.leases.renew(old, TTL) is False
    assert store.leases.renew(new, TTL) is True


def test_renewing_keeps_the_lease_past_its_first_expiry(store: Store, clock: FakeClock) -> None:
    held = store.leases.acquire("sync", "window-1", TTL)
    assert held is not None

    for _ in range(5):
        clock.advance(TTL / 2)
        assert store.leases.renew(held, TTL) is True
        assert store.leases.acquire("sync", "window-2", TTL) is None


def test_release_hands_over_at_once(store: Store) -> None:
    old = store.leases.acquire("sync", "window-1", TTL)
    assert old is not None

    store.leases.release(old)
    new = store.leases.acquire("sync", "window-2", TTL)

    assert new is not None
    assert new.fencing_token == old.fencing_token + 1
    store.leases.release(old)  # late release by the old holder must not free the new one
    assert store.leases.acquire("sync", "window-3", TTL) is None


def test_the_same_holder_reacquires_with_a_new_token(store: Store) -> None:
    first = store.leases.acquire("sync", "window-1", TTL)
    again = store.leases.acquire("sync", "window-1", TTL)

    assert first is not None and again is not None
    assert again.fencing_token == first.fencing_token + 1
    assert store.leases.renew(first, TTL) is False  # an older incarnation is fenced off


def test_a_deposed_holder_cannot_commit_a_tick(store: Store, clock: FakeClock) -> None:
    old = store.leases.acquire("sync", "window-1", TTL)
    assert old is not None
    store.sync.commit_tick(cursors={"cxone": "t1"}, lease=old)
    clock.advance(TTL + 1)
    new = store.leases.acquire("sync", "window-2", TTL)
    assert new is not None

    with pytest.raises(LeaseLostError) as lost:
        store.sync.commit_tick(
            agents=[
                AgentStateRow(agent_id=1, memory={"stale": True}, writes=[])
            ],
            cursors={"cxone": "t2"},
            lease=old,
        )

    assert "taken over by another run" in str(lost.value)
    assert "'window-1'" in str(lost.value)
    assert store.sync.get_cursor("cxone") == "t1"
    assert store.sync.load_agent_memory() == {}
    store.sync.commit_tick(cursors={"cxone": "t2"}, lease=new)
    assert store.sync.get_cursor("cxone") == "t2"


def test_an_expired_lease_nobody_took_still_lets_its_holder_commit(
    store: Store, clock: FakeClock
) -> None:
    held = store.leases.acquire("sync", "window-1", TTL)
    assert held is not None
    clock.advance(TTL * 3)

    store.sync.commit_tick(cursors={"cxone": "t1"}, lease=held)

    assert store.sync.get_cursor("cxone") == "t1"


@pytest.mark.parametrize("ttl", [0, -5])
def test_a_lease_needs_a_positive_ttl(store: Store, ttl: float) -> None:
    with pytest.raises(ValueError, match="positive ttl_seconds"):
        store.leases.acquire("sync", "window-1", ttl)


def _race_for_the_lease(store: Store, holders: list[str]) -> list[Lease]:
    """Every holder asks for the lease at the same moment, each from its own thread."""
    barrier = threading.Barrier(len(holders))
    won: list[Lease] = []
    errors: list[BaseException] = []

    def race(holder: str) -> None:
        barrier.wait()
        try:
            lease = store.leases.acquire("sync", holder, TTL)
        except BaseException as exc:  # collected: a thread's exception would vanish
            errors.append(exc)
            return
        if lease is not None:
            won.append(lease)

    threads = [threading.Thread(target=race, args=(holder,)) for holder in holders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return won


def test_racing_threads_get_exactly_one_lease(store: Store) -> None:
    won = _race_for_the_lease(store, [f"window-{n}" for n in range(8)])

    assert len(won) == 1
    assert won[0].fencing_token == 1


def test_racing_takeovers_of_an_expired_lease_get_exactly_one_winner(
    store: Store, clock: FakeClock
) -> None:
    old = store.leases.acquire("sync", "window-0", TTL)
    assert old is not None
    clock.advance(TTL + 1)

    won = _race_for_the_lease(store, [f"window-{n}" for n in range(1, 9)])

    assert len(won) == 1
    assert won[0].fencing_token == old.fencing_token + 1
    assert store.leases.renew(old, TTL) is False


# -- handover to the next holder: no moment free between two windows ------------------------


def test_release_hands_the_lease_to_the_registered_waiter(store: Store) -> None:
    old = store.leases.acquire("sync", "window-1", TTL)
    assert old is not None
    assert store.leases.acquire("sync", "window-2", TTL) is None  # waits: registered as next

    assert store.leases.release(old) == "window-2"

    row = store.leases.get("sync")
    assert row is not None
    assert (row.holder, row.fencing_token, row.next_holder) == ("window-2", old.fencing_token + 1, None)
    assert store.leases.acquire("sync", "window-3", TTL) is None  # held by the waiter, not free
    new = store.leases.acquire("sync", "window-2", TTL)
    assert new is not None
    assert new.fencing_token == old.fencing_token + 2
    assert store.leases.renew(old, TTL) is False


def test_a_stale_registration_is_not_handed_the_lease(store: Store, clock: FakeClock) -> None:
    old = store.leases.acquire("sync", "window-1", TTL)
    assert old is not None
    assert store.leases.acquire("sync", "window-2", TTL) is None
    clock.advance(TTL / 2)
    assert store.leases.renew(old, TTL) is True
    clock.advance(TTL / 2)  # window-2 stopped asking: its registration lapsed

    assert store.leases.release(old) is None

    assert store.leases.acquire("sync", "window-3", TTL) is not None


def test_a_fresh_waiter_keeps_its_place_and_a_stale_one_loses_it(store: Store, clock: FakeClock) -> None:
    old = store.leases.acquire("sync", "window-1", TTL)
    assert old is not None
    assert store.leases.acquire("sync", "window-2", TTL) is None
    assert store.leases.acquire("sync", "window-3", TTL) is None  # window-2 is next, window-3 just waits
    assert _next_holder(store) == "window-2"

    clock.advance(TTL / 2)
    assert store.leases.renew(old, TTL) is True
    clock.advance(TTL / 2)
    assert store.leases.acquire("sync", "window-3", TTL) is None  # window-2's registration lapsed

    assert _next_holder(store) == "window-3"
    assert store.leases.release(old) == "window-3"


def test_an_expired_lease_waits_for_its_registered_waiter(store: Store, clock: FakeClock) -> None:
    old = store.leases.acquire("sync", "window-1", TTL)
    assert old is not None
    clock.advance(TTL - 1)
    assert store.leases.acquire("sync", "window-2", TTL) is None
    clock.advance(2)  # window-1 died without releasing

    assert store.leases.acquire("sync", "window-3", TTL) is None
    assert store.leases.acquire("sync", "window-1", TTL) is None  # its holder, back too late, is not first either
    taken = store.leases.acquire("sync", "window-2", TTL)
    assert taken is not None
    assert taken.fencing_token == old.fencing_token + 1


def test_a_withdrawn_or_unqueued_waiter_is_not_handed_the_lease(store: Store) -> None:
    old = store.leases.acquire("sync", "window-1", TTL)
    assert old is not None
    assert store.leases.acquire("sync", "reconcile-1", TTL, queue=False) is None
    assert _next_holder(store) is None
    assert store.leases.acquire("sync", "window-2", TTL) is None

    store.leases.withdraw("sync", "window-2")

    assert store.leases.release(old) is None
    assert store.leases.acquire("sync", "window-3", TTL) is not None


def test_racing_waiters_get_one_successor_and_one_holder(store: Store) -> None:
    old = store.leases.acquire("sync", "window-0", TTL)
    assert old is not None
    waiters = [f"window-{n}" for n in range(1, 9)]
    assert _race_for_the_lease(store, waiters) == []
    successor = _next_holder(store)
    assert successor in waiters

    assert store.leases.release(old) == successor
    won = _race_for_the_lease(store, waiters)

    assert [lease.holder for lease in won] == [successor]
    assert won[0].fencing_token == old.fencing_token + 2


def _next_holder(store: Store) -> str | None:
    row = store.leases.get("sync")
    assert row is not None
    return row.next_holder


_RUNS = ("a", "b", "c")
_steps = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["acquire", "renew", "release", "commit"]), st.sampled_from(_RUNS)),
        st.tuples(st.just("advance"), st.sampled_from([1.0, TTL / 2, TTL + 1])),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=_steps)
def test_tokens_only_grow_and_only_the_latest_holding_commits(
    store: Store, clock: FakeClock, steps: list[tuple[str, object]]
) -> None:
    name = f"sync-{uuid.uuid4().hex[:8]}"  # one lease per example: the store outlives the examples
    held: dict[str, Lease] = {}
    latest: Lease | None = None  # the last holding anyone acquired, until its holder lets it go
    last_token = 0
    for action, arg in steps:
        if action == "advance":
            clock.advance(float(arg))  # type: ignore[arg-type]
            continue
        run = str(arg)
        lease = held.get(run)
        if action == "acquire":
            got = store.leases.acquire(name, run, TTL)
            if got is not None:
                assert got.fencing_token > last_token
                last_token = got.fencing_token
                held[run] = latest = got
        elif lease is None:
            continue
        elif action == "renew":
            assert store.leases.renew(lease, TTL) is (lease is latest)
        elif action == "release":
            store.leases.release(lease)
            del held[run]
            latest = None if lease is latest else latest
        else:
            try:
                store.sync.commit_tick(cursors={name: run}, lease=lease)
                committed = True
            except LeaseLostError:
                committed = False
            assert committed is (lease is latest), "a deposed holder committed" if committed else "holder refused"
