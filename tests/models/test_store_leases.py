"""The sync lease: one holder at a time, takeover after expiry, fencing of a deposed holder."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import pytest

from presence_sync.models.store import AgentStateRow, Lease, LeaseLostError, Store

if TYPE_CHECKING:
    from tests.models.conftest import FakeClock

TTL = 30.0


def test_a_live_lease_excludes_everyone_else(store: Store) -> None:
    held = store.acquire_lease("sync", "window-1", TTL)

    assert held is not None
    assert (held.name, held.holder, held.fencing_token) == ("sync", "window-1", 1)
    assert store.acquire_lease("sync", "window-2", TTL) is None
    assert store.acquire_lease("reconcile", "window-2", TTL) is not None  # other names are free


def test_an_expired_lease_is_taken_over_with_a_new_fencing_token(
    store: Store, clock: FakeClock
) -> None:
    old = store.acquire_lease("sync", "window-1", TTL)
    assert old is not None
    clock.advance(TTL - 1)
    assert store.acquire_lease("sync", "window-2", TTL) is None

    clock.advance(1)
    new = store.acquire_lease("sync", "window-2", TTL)

    assert new is not None
    assert new.fencing_token > old.fencing_token
    assert new.acquired_at == clock.now
    assert store.renew_lease(old, TTL) is False
    assert store.renew_lease(new, TTL) is True


def test_renewing_keeps_the_lease_past_its_first_expiry(store: Store, clock: FakeClock) -> None:
    held = store.acquire_lease("sync", "window-1", TTL)
    assert held is not None

    for _ in range(5):
        clock.advance(TTL / 2)
        assert store.renew_lease(held, TTL) is True
        assert store.acquire_lease("sync", "window-2", TTL) is None


def test_release_hands_over_at_once(store: Store) -> None:
    old = store.acquire_lease("sync", "window-1", TTL)
    assert old is not None

    store.release_lease(old)
    new = store.acquire_lease("sync", "window-2", TTL)

    assert new is not None
    assert new.fencing_token == old.fencing_token + 1
    store.release_lease(old)  # late release by the old holder must not free the new one
    assert store.acquire_lease("sync", "window-3", TTL) is None


def test_the_same_holder_reacquires_with_a_new_token(store: Store) -> None:
    first = store.acquire_lease("sync", "window-1", TTL)
    again = store.acquire_lease("sync", "window-1", TTL)

    assert first is not None and again is not None
    assert again.fencing_token == first.fencing_token + 1
    assert store.renew_lease(first, TTL) is False  # an older incarnation is fenced off


def test_a_deposed_holder_cannot_commit_a_tick(store: Store, clock: FakeClock) -> None:
    old = store.acquire_lease("sync", "window-1", TTL)
    assert old is not None
    store.commit_tick(cursors={"cxone": "t1"}, lease=old)
    clock.advance(TTL + 1)
    new = store.acquire_lease("sync", "window-2", TTL)
    assert new is not None

    with pytest.raises(LeaseLostError) as lost:
        store.commit_tick(
            agents=[
                AgentStateRow(agent_id=1, memory={"stale": True}, cxone_state=None, sf_status=None,
                              truth_side=None)
            ],
            cursors={"cxone": "t2"},
            lease=old,
        )

    assert "taken over by another run" in str(lost.value)
    assert "'window-1'" in str(lost.value)
    assert store.get_cursor("cxone") == "t1"
    assert store.load_agent_memory() == {}
    store.commit_tick(cursors={"cxone": "t2"}, lease=new)
    assert store.get_cursor("cxone") == "t2"


def test_an_expired_lease_nobody_took_still_lets_its_holder_commit(
    store: Store, clock: FakeClock
) -> None:
    held = store.acquire_lease("sync", "window-1", TTL)
    assert held is not None
    clock.advance(TTL * 3)

    store.commit_tick(cursors={"cxone": "t1"}, lease=held)

    assert store.get_cursor("cxone") == "t1"


@pytest.mark.parametrize("ttl", [0, -5])
def test_a_lease_needs_a_positive_ttl(store: Store, ttl: float) -> None:
    with pytest.raises(ValueError, match="positive ttl_seconds"):
        store.acquire_lease("sync", "window-1", ttl)


def _race_for_the_lease(store: Store, holders: list[str]) -> list[Lease]:
    """Every holder asks for the lease at the same moment, each from its own thread."""
    barrier = threading.Barrier(len(holders))
    won: list[Lease] = []
    errors: list[BaseException] = []

    def race(holder: str) -> None:
        barrier.wait()
        try:
            lease = store.acquire_lease("sync", holder, TTL)
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
    old = store.acquire_lease("sync", "window-0", TTL)
    assert old is not None
    clock.advance(TTL + 1)

    won = _race_for_the_lease(store, [f"window-{n}" for n in range(1, 9)])

    assert len(won) == 1
    assert won[0].fencing_token == old.fencing_token + 1
    assert store.renew_lease(old, TTL) is False
