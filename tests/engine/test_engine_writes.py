"""Writes after they leave the engine: echoes, retries, failures, replays, reconcile and wake-ups."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from presence_sync.engine import (
    UNKNOWN_SINCE,
    AgentMemory,
    Decision,
    Observation,
    CommandStatus,
    Outcome,
    Side,
    SyncPolicy,
    WakeQueue,
    WriteOutcome,
    WriteResult,
    decide,
    reconcile,
)
from tests.engine.engine_demo import (
    AGENT_A,
    AGENT_B,
    Harness,
    available,
    demo_links,
    demo_rulebook,
    outcomes,
    state,
    targets,
    unavailable,
)

FAST = SyncPolicy(echo_timeout_seconds=10, retry_base_seconds=2, retry_cap_seconds=8, max_attempts=3)


def publish_break(h: Harness):
    h.step(h.cx(AGENT_A, available()), h.sf(AGENT_A, "Available_for_Chats"), seconds=0)
    return h.step(h.cx(AGENT_A, unavailable("Break")), seconds=1)


def test_a_write_without_echo_is_retried_with_the_same_command_then_given_up():
    h = Harness(policy=FAST)
    first = publish_break(h).writes[0]
    assert h.step(seconds=5).writes == []  # echo not due yet

    late = h.step(seconds=11)  # echo timeout: wait for the backoff
    assert late.writes == [] and outcomes(late) == [Outcome.RETRYING]
    assert h.memory[AGENT_A].salesforce_command.status is CommandStatus.RETRY_WAIT

    attempts = [first]
    clock = 11
    while True:
        clock += 30  # past any backoff or echo timeout
        decision = h.step(seconds=clock)
        attempts += decision.writes
        if Outcome.GAVE_UP in outcomes(decision):
            break
        assert clock < 1000
    assert [w.attempt for w in attempts] == [1, 2, 3]
    assert {w.command_id for w in attempts} == {first.command_id}
    gave_up = next(r for r in decision.audit if r.outcome is Outcome.GAVE_UP)
    assert "presence applier" in gave_up.reason and "3 attempts" in gave_up.reason
    assert all(h.step(seconds=clock + 100 * i).writes == [] for i in range(1, 3))


def test_an_echo_after_a_retry_settles_the_write():
    h = Harness(policy=FAST)
    publish_break(h)
    h.step(seconds=11)
    retried = h.step(seconds=25)
    assert retried.writes and retried.writes[0].attempt == 2
    echo = h.step(h.sf(AGENT_A, "On_Break", seconds=26), seconds=27)
    assert outcomes(echo) == [Outcome.ECHO] and echo.writes == []
    assert h.memory[AGENT_A].next_due_at is None


def test_a_permanent_failure_is_audited_and_not_retried():
    h = Harness(policy=FAST)
    write = publish_break(h).writes[0]
    audit = h.report(WriteResult(AGENT_A, write.command_id, WriteOutcome.PERMANENT, "status On_Break does not exist"))
    assert [r.outcome for r in audit] == [Outcome.FAILED]
    assert "On_Break does not exist" in audit[0].reason
    assert all(h.step(seconds=100 * i).writes == [] for i in range(1, 4))
    # The next change by a person tries again.
    assert targets(h.step(h.cx(AGENT_A, unavailable("Lunch")), seconds=500)) == [(AGENT_A, Side.SALESFORCE, "Lunch")]


def test_a_transient_failure_is_retried_after_backoff_honouring_retry_after():
    h = Harness(policy=FAST)
    write = publish_break(h).writes[0]
    audit = h.report(WriteResult(AGENT_A, write.command_id, WriteOutcome.TRANSIENT, "429", retry_after_seconds=20))
    assert [r.outcome for r in audit] == [Outcome.RETRYING]
    assert h.step(seconds=15).writes == []  # inside Retry-After
    retry = h.step(seconds=22)
    assert [(w.command_id, w.attempt) for w in retry.writes] == [(write.command_id, 2)]


def test_transient_failures_give_up_after_max_attempts():
    h = Harness(policy=FAST)
    write = publish_break(h).writes[0]
    clock = 1
    for _ in range(FAST.max_attempts - 1):
        h.report(WriteResult(AGENT_A, write.command_id, WriteOutcome.TRANSIENT, "503"))
        clock += 30
        assert len(h.step(seconds=clock).writes) == 1
    audit = h.report(WriteResult(AGENT_A, write.command_id, WriteOutcome.TRANSIENT, "503"))
    assert [r.outcome for r in audit] == [Outcome.GAVE_UP]


def test_ok_results_and_unknown_commands_change_nothing():
    h = Harness(policy=FAST)
    write = publish_break(h).writes[0]
    before = dict(h.memory)
    assert h.report(WriteResult(AGENT_A, write.command_id, WriteOutcome.OK)) == []
    assert h.report(WriteResult(AGENT_A, "ps-1-unknown", WriteOutcome.PERMANENT, "x")) == []
    assert h.report(WriteResult(99, "ps-99-x", WriteOutcome.PERMANENT, "x")) == []
    assert h.memory == before


def test_a_write_that_lands_late_in_a_burst_is_awaited_again_not_written_twice():
    # A burst queues writes behind the concurrency bound for longer than the echo timeout: one that
    # lands then has its echo awaited from now, and one declared late meanwhile is not retried.
    h = Harness(policy=FAST)
    write = publish_break(h).writes[0]
    h.step(seconds=8)  # 7 s after the write: most of its 10 s echo wait is gone
    assert h.report(WriteResult(AGENT_A, write.command_id, WriteOutcome.OK)) == []
    assert h.memory[AGENT_A].salesforce_command.due_at == h.at(8 + FAST.echo_timeout_seconds)
    assert h.step(seconds=15).writes == []  # past the first due time: still awaited, nothing late

    h = Harness(policy=FAST)
    write = publish_break(h).writes[0]
    assert outcomes(h.step(seconds=12)) == [Outcome.RETRYING]  # declared late while it still waited
    assert h.report(WriteResult(AGENT_A, write.command_id, WriteOutcome.OK)) == []
    command = h.memory[AGENT_A].salesforce_command
    assert command.status is CommandStatus.IN_FLIGHT and command.due_at == h.at(12 + FAST.echo_timeout_seconds)
    assert h.step(seconds=20).writes == []  # the retry it was waiting for is not sent
    echoed = h.step(h.sf(AGENT_A, write.target), seconds=21)
    assert echoed.writes == [] and Outcome.ECHO in outcomes(echoed)


def test_replaying_a_batch_writes_nothing_new_and_is_deterministic():
    h = Harness()
    batch = [h.cx(AGENT_A, available()), h.sf(AGENT_A, "On_Break"), h.cx(AGENT_B, unavailable("Lunch"))]
    memory_before = dict(h.memory)
    first = h.step(*batch)
    again_from_old_memory = decide(h.rulebook, h.links, memory_before, batch, h.now, h.policy)
    assert again_from_old_memory == first
    replayed = h.step(*batch)
    assert replayed.writes == []
    assert set(outcomes(replayed)) == {Outcome.DUPLICATE}
    assert len(replayed.audit) == len(batch)


def test_duplicates_inside_one_batch_are_harmless():
    h = Harness()
    change = h.cx(AGENT_A, unavailable("Break"))
    decision = h.step(change, change, change)
    assert len(decision.writes) == 1
    assert outcomes(decision).count(Outcome.DUPLICATE) == 2


def test_an_older_observation_than_what_was_seen_is_stale():
    h = Harness()
    h.step(h.cx(AGENT_A, available(), seconds=10), seconds=11)
    decision = h.step(h.cx(AGENT_A, unavailable("Lunch"), seconds=5), seconds=12)
    assert decision.writes == [] and outcomes(decision) == [Outcome.STALE]


def test_a_late_echo_of_a_superseded_write_is_recognised_and_heals():
    h = Harness()
    h.step(h.cx(AGENT_A, available()), h.sf(AGENT_A, "Available_for_Chats"), seconds=0)
    to_break = h.step(h.sf(AGENT_A, "On_Break", seconds=1), seconds=2)
    assert targets(to_break) == [(AGENT_A, Side.CXONE, "Unavailable:Break")]
    # The agent picks Lunch in CXone before our write lands; then our write lands.
    human = h.step(h.cx(AGENT_A, unavailable("Lunch"), seconds=3), seconds=4)
    assert targets(human) == [(AGENT_A, Side.SALESFORCE, "Lunch")]
    landed = h.step(h.cx(AGENT_A, unavailable("Break"), seconds=5), seconds=6)
    # Our late write is an echo, not a person: Salesforce is not touched; CXone gets the person's Lunch back.
    assert outcomes(landed)[0] is Outcome.ECHO
    assert targets(landed) == [(AGENT_A, Side.CXONE, "Unavailable:Lunch")]


def test_a_superseded_write_is_no_longer_awaited_after_its_echo_timeout():
    """Long after a superseded write could have landed, a person picking its value is a change to sync."""
    h = Harness()
    h.step(h.cx(AGENT_A, available()), h.sf(AGENT_A, "Available_for_Chats"), seconds=0)
    h.step(h.sf(AGENT_A, "On_Break", seconds=1), seconds=2)  # our write of Break never lands
    h.step(h.cx(AGENT_A, unavailable("Lunch"), seconds=3), seconds=4)
    h.step(h.sf(AGENT_A, "Lunch", seconds=4), seconds=5)
    later = h.policy.echo_timeout_seconds + 10
    picked = h.step(h.cx(AGENT_A, unavailable("Break"), seconds=later), seconds=later + 1)
    assert Outcome.ECHO not in outcomes(picked)
    assert targets(picked) == [(AGENT_A, Side.SALESFORCE, "On_Break")]


def test_reconcile_heals_drift_the_polls_missed():
    h = Harness()
    seen = [h.cx(AGENT_A, available()), h.sf(AGENT_A, "Available_for_Chats")]
    seen += [h.cx(AGENT_B, available()), h.sf(AGENT_B, "Available_for_Chats")]
    h.step(*seen, seconds=0)
    # A full read: A's CXone changed without the poll seeing it; the rest is what was seen.
    missed = h.cx(AGENT_A, unavailable("Lunch"), seconds=30)
    full_read = [missed, *seen[1:]]
    decision = reconcile(h.rulebook, h.links, h.memory, full_read, h.at(60), h.policy)
    assert targets(decision) == [(AGENT_A, Side.SALESFORCE, "Lunch")]
    assert set(decision.memory) == {AGENT_A} and outcomes(decision) == [Outcome.WRITE]
    h.memory.update(decision.memory)
    landed = h.sf(AGENT_A, "Lunch", seconds=62)
    settled = reconcile(h.rulebook, h.links, h.memory, [missed, landed, *seen[2:]], h.at(80), h.policy)
    assert settled.writes == [] and outcomes(settled) == [Outcome.ECHO]
    h.memory.update(settled.memory)
    assert reconcile(h.rulebook, h.links, h.memory, [missed, landed, *seen[2:]], h.at(100), h.policy) == Decision()


def test_reconcile_of_a_fresh_store_publishes_cxone_to_agents_never_in_omni():
    # The demo's starting point: CXone Available, Salesforce consoles open but never logged in to Omni.
    h = Harness()
    full_read = [h.cx(AGENT_A, available(), seconds=0), h.cx(AGENT_B, available(), seconds=0)] + [
        Observation(a, Side.SALESFORCE, None, UNKNOWN_SINCE, f"never-{a}") for a in (AGENT_A, AGENT_B)
    ]
    decision = reconcile(h.rulebook, h.links, {}, full_read, h.at(5), h.policy)
    assert sorted(targets(decision)) == [
        (AGENT_A, Side.SALESFORCE, "Available_for_Chats"),
        (AGENT_B, Side.SALESFORCE, "Available_for_Chats"),
    ]


def test_reconcile_seeing_a_change_before_the_poll_does_not_hide_it():
    h = Harness()
    h.step(h.cx(AGENT_A, available()), h.sf(AGENT_A, "Available_for_Chats"), seconds=0)
    missed = h.sf(AGENT_A, "On_Break", seconds=3)
    decision = reconcile(h.rulebook, h.links, h.memory, [missed], h.at(4), h.policy)
    assert targets(decision) == [(AGENT_A, Side.CXONE, "Unavailable:Break")]
    h.memory.update(decision.memory)
    polled = h.step(missed, seconds=5)  # the incremental poll brings the same spell
    assert polled.writes == [] and outcomes(polled) == [Outcome.DUPLICATE]


def test_reconcile_tries_a_given_up_write_again_with_a_fresh_command():
    h = Harness(policy=FAST)
    first = publish_break(h).writes[0]
    h.report(WriteResult(AGENT_A, first.command_id, WriteOutcome.PERMANENT, "console closed"))
    assert h.step(seconds=100).writes == []
    full_read = [h.cx(AGENT_A, unavailable("Break"), seconds=1), h.sf(AGENT_A, "Available_for_Chats", seconds=0)]
    decision = reconcile(h.rulebook, h.links, h.memory, full_read, h.at(200), h.policy)
    assert targets(decision) == [(AGENT_A, Side.SALESFORCE, "On_Break")]
    assert decision.writes[0].command_id != first.command_id


def test_reconcile_ignores_agents_it_cannot_sync():
    h = Harness()
    full_read = [h.cx(77, available()), h.sf(77, "Lunch")]
    assert reconcile(h.rulebook, h.links, {}, full_read, h.at(0), h.policy) == Decision()


def test_wake_queue_hands_decide_only_the_due_agents():
    h = Harness(policy=FAST)
    queue = WakeQueue()
    decision = h.step(h.cx(AGENT_A, unavailable("Break")), h.cx(AGENT_B, available()), seconds=0)
    queue.update(decision.memory)
    assert len(queue) == 2
    assert queue.pop_due(h.at(5)) == set()
    due = queue.pop_due(h.at(11))
    assert due == {AGENT_A, AGENT_B}
    late = decide(h.rulebook, h.links, h.memory, [], h.at(11), h.policy, due_agents=due)
    assert outcomes(late) == [Outcome.RETRYING, Outcome.RETRYING]
    queue.update(late.memory)
    assert len(queue) == 2 and queue.pop_due(h.at(11)) == set()
    # An echo settles agent B: it leaves the queue.
    h.memory.update(late.memory)
    settled = h.step(h.sf(AGENT_B, "Available_for_Chats"), seconds=12)
    queue.update(settled.memory)
    assert queue.pop_due(h.at(1000)) == {AGENT_A}


def test_decide_without_due_agents_scans_memory_for_due_writes():
    h = Harness(policy=FAST)
    publish_break(h)
    assert outcomes(h.step(seconds=11)) == [Outcome.RETRYING]


def test_the_quiet_world_writes_nothing():
    h = Harness()
    h.step(h.cx(AGENT_A, available()), h.sf(AGENT_A, "Available_for_Chats"))
    h.step(h.cx(AGENT_B, state("InboundContact")), h.sf(AGENT_B, "On_a_Call"))
    for _ in range(5):
        decision = h.step()
        assert decision.writes == [] and decision.audit == [] and decision.memory == {}


def test_memory_round_trips_through_json():
    h = Harness(policy=FAST)
    publish_break(h)
    h.step(h.sf(AGENT_A, "Lunch"), seconds=2)  # a Salesforce change while our write is in flight
    h.step(h.cx(AGENT_B, state("InboundContact"), seconds=2), h.sf(AGENT_B, "On_Break", seconds=2.5), seconds=3)
    for memory in h.memory.values():
        assert AgentMemory.from_json(memory.to_json()) == memory
    assert any(m.echo_watch for m in h.memory.values()) and any(m.deferred for m in h.memory.values())


def test_memory_tells_the_likely_echo_of_its_write_in_flight_from_a_persons_change():
    h = Harness(policy=FAST)
    publish_break(h)  # On_Break is on its way to Salesforce
    memory = h.memory[AGENT_A]
    assert memory.awaits_echo(Side.SALESFORCE, "On_Break")
    assert not memory.awaits_echo(Side.SALESFORCE, "Lunch")
    assert not memory.awaits_echo(Side.CXONE, unavailable("Break"))  # nothing in flight to CXone
    echo = h.step(h.sf(AGENT_A, "On_Break", seconds=2), seconds=3)
    assert outcomes(echo) == [Outcome.ECHO]
    assert not h.memory[AGENT_A].awaits_echo(Side.SALESFORCE, "On_Break")  # settled: a later On_Break is a person's


def test_memory_for_10000_agents_changes_only_for_agents_observed():
    links = demo_links(range(1, 10_001))
    book = demo_rulebook()
    h = Harness(rulebook=book, links=links)
    everyone = [h.cx(a, available()) for a in links] + [h.sf(a, "Available_for_Chats") for a in links]
    h.step(*everyone, seconds=0)
    decision = h.step(h.cx(42, unavailable("Break")), seconds=1, )
    assert set(decision.memory) == {42} and len(decision.writes) == 1
    assert decide(book, links, h.memory, [], h.at(2), h.policy, due_agents=()).memory == {}
    assert timedelta(0) < h.policy.echo_timeout


def test_an_initial_alignment_is_marked_and_times_nothing_while_a_later_change_is_timed():
    # After onboarding the sync first sees agents in states they took hours ago: aligning the other
    # side answers no human change, so its echo must not report hours of "lag".
    h = Harness(policy=FAST)
    first = h.step(h.cx(AGENT_A, unavailable("Break"), seconds=0), h.sf(AGENT_A, "Available_for_Chats", seconds=0),
                   seconds=3600)
    assert [w.initial for w in first.writes] == [True]
    echo = h.step(h.sf(AGENT_A, "On_Break", seconds=3601), seconds=3602)
    [record] = [r for r in echo.audit if r.outcome is Outcome.ECHO]
    assert record.latency_ms is None and "initial alignment" in record.reason

    change = h.step(h.cx(AGENT_A, available(), seconds=3700), seconds=3701)
    assert [w.initial for w in change.writes] == [False]
    echo = h.step(h.sf(AGENT_A, "Available_for_Chats", seconds=3702), seconds=3703)
    [record] = [r for r in echo.audit if r.outcome is Outcome.ECHO]
    assert record.latency_ms == 2000


def test_a_salesforce_write_carries_what_the_console_may_show_for_it_to_apply():
    # Compare-and-set (issue 9): what the sync last saw, plus what a write of its own still landing leaves.
    h = Harness(policy=FAST)
    [first] = publish_break(h).writes
    assert first.side is Side.SALESFORCE and first.applies_if_showing == ("Available_for_Chats", "On_Break")

    [second] = h.step(h.cx(AGENT_A, unavailable("Lunch")), seconds=2).writes  # On_Break not echoed yet
    assert second.target == "Lunch"
    assert second.applies_if_showing == ("Available_for_Chats", "Lunch", "On_Break")

    h.step(h.sf(AGENT_A, "Lunch"), seconds=3)  # its echo: the first write's is no longer awaited there
    [third] = h.step(h.cx(AGENT_A, unavailable("Break")), seconds=20).writes
    assert third.applies_if_showing == ("Lunch", "On_Break")


def test_a_first_sight_write_and_a_cxone_write_carry_no_precondition():
    h = Harness(policy=FAST)
    [initial] = h.step(h.cx(AGENT_A, available()), seconds=0).writes
    assert initial.side is Side.SALESFORCE and initial.applies_if_showing is None  # Salesforce never seen
    h.step(h.sf(AGENT_A, "Available_for_Chats"), seconds=1)
    [to_cxone] = h.step(h.sf(AGENT_A, "On_Break"), seconds=2).writes
    assert to_cxone.side is Side.CXONE and to_cxone.applies_if_showing is None


def test_a_write_behind_a_first_sight_write_still_landing_applies_only_over_that_writes_target():
    # Salesforce never seen: the first write has no precondition. A CXone change before its echo is polled
    # gives a second write that applies only if the console shows what the first left: an agent who picked
    # something else meanwhile keeps it (the console refuses the command, their change then decides).
    h = Harness(policy=FAST)
    [initial] = h.step(h.cx(AGENT_A, available()), seconds=0).writes
    [second] = h.step(h.cx(AGENT_A, unavailable("Break")), seconds=1).writes
    assert (second.target, second.applies_if_showing) == ("On_Break", ("Available_for_Chats",))
    # Once the first echo is in, a later write compares with what Salesforce showed and what is still landing.
    h.step(h.sf(AGENT_A, "Available_for_Chats", seconds=2), seconds=2)
    [third] = h.step(h.cx(AGENT_A, unavailable("Lunch")), seconds=3).writes
    assert third.applies_if_showing == ("Available_for_Chats", "Lunch", "On_Break")
    assert initial.applies_if_showing is None


def _named_echo(h: Harness, status: str, command_id: str, seconds: float) -> Observation:
    return Observation(AGENT_A, Side.SALESFORCE, status, h.at(seconds), f"push-{seconds}", command_id)


def test_a_superseded_write_landing_after_the_side_already_showed_the_new_target_is_written_over():
    # CXone goes to Break and straight back to Available: Salesforce still shows Available_for_Chats, so
    # the second change writes nothing; then the first write (On_Break) lands after all. The console
    # names it: the engine learns what Salesforce shows and writes Available_for_Chats again.
    h = Harness(policy=FAST)
    [first] = publish_break(h).writes
    assert h.step(h.cx(AGENT_A, available()), seconds=2).writes == []

    landed = h.step(_named_echo(h, "On_Break", first.command_id, 3), seconds=3)
    assert Outcome.ECHO in outcomes(landed)
    [again] = landed.writes
    assert (again.side, again.target) == (Side.SALESFORCE, "Available_for_Chats")
    assert again.applies_if_showing is not None and "On_Break" in again.applies_if_showing


def test_a_write_named_by_its_console_long_after_its_echo_wait_is_still_ours_not_a_persons_change():
    h = Harness(policy=FAST)
    [first] = publish_break(h).writes
    h.step(h.cx(AGENT_A, available()), seconds=2)
    h.memory[AGENT_A] = replace(h.memory[AGENT_A], echo_watch=())  # pruned, as a later decide does
    late = h.step(_named_echo(h, "On_Break", first.command_id, 120), seconds=120)  # far past the echo timeout
    assert [w.side for w in late.writes] == [Side.SALESFORCE]  # CXone is not sent to Break: no one chose it
    assert Outcome.ECHO in outcomes(late) and Outcome.CONFLICT not in outcomes(late)
    [record] = [r for r in late.audit if r.outcome is Outcome.ECHO]
    assert record.command_id == first.command_id and "no longer awaited" in record.reason
