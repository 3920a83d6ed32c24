"""The seed's and product.md's sync behaviours, one example each, with the demo "Default Presence" rule."""

from __future__ import annotations

from presence_sync.engine import (
    ConflictPolicy,
    CxoneState,
    Direction,
    Outcome,
    Side,
    SyncPolicy,
)
from tests.engine.engine_demo import (
    AGENT_A,
    AGENT_B,
    Harness,
    acw,
    available,
    demo_rulebook,
    outcomes,
    refused,
    state,
    targets,
    unavailable,
)


def settled(h: Harness, agent_id: int, cxone: CxoneState, sf: str | None) -> None:
    """Both sides were seen (first sight counts as a human change) and any writes echoed back."""
    first = h.step(h.cx(agent_id, cxone), h.sf(agent_id, sf))
    for write in first.writes:
        echo = h.cx(agent_id, _shown(write.target)) if write.side is Side.CXONE else h.sf(agent_id, write.target)
        h.step(echo)


def _shown(target) -> CxoneState:
    return CxoneState(target.state, target.code)


def test_cxone_available_publishes_available_for_chats_and_its_echo_stays_quiet():
    h = Harness()
    first = h.step(h.cx(AGENT_A, available()))
    assert targets(first) == [(AGENT_A, Side.SALESFORCE, "Available_for_Chats")]
    assert first.audit[0].direction is Direction.CXONE_TO_SALESFORCE
    assert first.audit[0].rule_row == "publisher: Available -> Available_for_Chats"

    echo = h.step(h.sf(AGENT_A, "Available_for_Chats"))
    assert echo.writes == []
    assert outcomes(echo) == [Outcome.ECHO]
    assert echo.audit[0].command_id == first.writes[0].command_id


def test_salesforce_available_is_not_one_to_one_and_does_not_ping_pong():
    h = Harness()
    settled(h, AGENT_A, unavailable("Break"), "On_Break")
    to_cxone = h.step(h.sf(AGENT_A, "Available"))
    assert targets(to_cxone) == [(AGENT_A, Side.CXONE, "Available")]
    # CXone Available would publish Available_for_Chats if it were a person's change: it is our echo.
    echo = h.step(h.cx(AGENT_A, available()))
    assert echo.writes == [] and outcomes(echo) == [Outcome.ECHO]
    for _ in range(3):
        assert h.step().writes == []


def test_available_for_chats_opens_the_agent_in_cxone():
    h = Harness()
    settled(h, AGENT_A, unavailable("Lunch"), "Lunch")
    decision = h.step(h.sf(AGENT_A, "Available_for_Chats"))
    assert targets(decision) == [(AGENT_A, Side.CXONE, "Available")]
    assert decision.writes[0].target.to_api() == {"state": "Available"}


def test_break_lunch_and_crm_work_map_both_ways():
    h = Harness()
    settled(h, AGENT_A, available(), "Available_for_Chats")
    for code, status in (("Break", "On_Break"), ("Lunch", "Lunch"), ("CRM Work", "Case_Work")):
        published = h.step(h.cx(AGENT_A, unavailable(code)))
        assert targets(published) == [(AGENT_A, Side.SALESFORCE, status)]
        assert h.step(h.sf(AGENT_A, status)).writes == []
    for status, code in (("On_Break", "Break"), ("Lunch", "Lunch"), ("Case_Work", "CRM Work")):
        subscribed = h.step(h.sf(AGENT_A, status))
        assert targets(subscribed) == [(AGENT_A, Side.CXONE, f"Unavailable:{code}")]
        assert subscribed.writes[0].target.to_api() == {"state": "Unavailable", "reason": code}
        assert h.step(h.cx(AGENT_A, unavailable(code))).writes == []


def test_team_b_agent_picking_case_work_lands_in_default_unavailable():
    h = Harness()
    settled(h, AGENT_B, available(), "Available_for_Chats")
    decision = h.step(h.sf(AGENT_B, "Case_Work"))
    assert targets(decision) == [(AGENT_B, Side.CXONE, "Unavailable")]
    assert decision.writes[0].target.to_api() == {"state": "Unavailable"}
    assert "no unavailable code 'CRM Work'" in decision.audit[0].reason
    echo = h.step(h.cx(AGENT_B, unavailable()))
    assert echo.writes == [] and outcomes(echo) == [Outcome.ECHO]


def test_resume_previous_after_a_call_and_acw_returns_to_the_state_before_the_call():
    h = Harness()
    settled(h, AGENT_A, unavailable("Lunch"), "Lunch")
    h.step(h.cx(AGENT_A, available()))
    h.step(h.sf(AGENT_A, "Available_for_Chats"))
    h.step(h.cx(AGENT_A, state("InboundContact")))
    h.step(h.sf(AGENT_A, "On_a_Call"))
    h.step(h.cx(AGENT_A, acw()))
    h.step(h.sf(AGENT_A, "After_Call_Work"))
    # ACW times out into the system-default Unavailable: unmapped, Salesforce stays After_Call_Work.
    after_acw = h.step(h.cx(AGENT_A, unavailable()))
    assert after_acw.writes == [] and outcomes(after_acw) == [Outcome.UNMAPPED]

    resumed = h.step(h.sf(AGENT_A, "Resume_Previous"))
    assert targets(resumed) == [(AGENT_A, Side.CXONE, "Available")]
    assert resumed.audit[0].rule_row == "subscriber: Resume_Previous -> Previous State (Available)"
    # The echo makes "previous" the default Unavailable; the resolved target must not move.
    assert h.step(h.cx(AGENT_A, available())).writes == []
    assert all(h.step().writes == [] for _ in range(3))


def test_acw_and_refused_are_published():
    h = Harness()
    settled(h, AGENT_A, available(), "Available_for_Chats")
    assert targets(h.step(h.cx(AGENT_A, state("InboundContact")))) == [(AGENT_A, Side.SALESFORCE, "On_a_Call")]
    h.step(h.sf(AGENT_A, "On_a_Call"))
    assert targets(h.step(h.cx(AGENT_A, acw()))) == [(AGENT_A, Side.SALESFORCE, "After_Call_Work")]
    h.step(h.sf(AGENT_A, "After_Call_Work"))
    assert targets(h.step(h.cx(AGENT_A, available()))) == [(AGENT_A, Side.SALESFORCE, "Available_for_Chats")]
    h.step(h.sf(AGENT_A, "Available_for_Chats"))
    missed = h.step(h.cx(AGENT_A, refused()))
    assert targets(missed) == [(AGENT_A, Side.SALESFORCE, "Missed_Contact")]
    assert missed.audit[0].rule_row == "publisher: Refused -> Missed_Contact"


def test_an_acw_superseded_within_one_batch_is_not_published():
    h = Harness()
    settled(h, AGENT_A, state("InboundContact"), "On_a_Call")
    decision = h.step(h.cx(AGENT_A, acw(), seconds=10), h.cx(AGENT_A, available(), seconds=11), seconds=12)
    assert targets(decision) == [(AGENT_A, Side.SALESFORCE, "Available_for_Chats")]
    assert outcomes(decision) == [Outcome.NOOP, Outcome.WRITE]  # the ACW coalesced away


def test_unmapped_with_skip_validation_off_writes_nothing():
    h = Harness(rulebook=demo_rulebook(skip_validation=False))
    settled(h, AGENT_B, available(), "Available_for_Chats")
    unknown = h.step(h.sf(AGENT_B, "Missed_Contact"))  # no subscriber row
    assert unknown.writes == [] and outcomes(unknown) == [Outcome.UNMAPPED]
    assert "no subscriber row for Missed_Contact" in unknown.audit[0].reason
    lacking = h.step(h.sf(AGENT_B, "Case_Work"))  # Team B has no CRM Work
    assert lacking.writes == [] and outcomes(lacking) == [Outcome.UNMAPPED]
    assert "turn on skip validation" in lacking.audit[0].reason


def test_unmapped_salesforce_status_with_skip_validation_on_goes_default_unavailable():
    h = Harness()
    settled(h, AGENT_A, available(), "Available_for_Chats")
    decision = h.step(h.sf(AGENT_A, "Missed_Contact"))
    assert targets(decision) == [(AGENT_A, Side.CXONE, "Unavailable")]


def test_unmapped_cxone_state_changes_nothing_in_salesforce():
    h = Harness()
    settled(h, AGENT_A, available(), "Available_for_Chats")
    decision = h.step(h.cx(AGENT_A, state("Dialer")))
    assert decision.writes == [] and outcomes(decision) == [Outcome.UNMAPPED]


def test_salesforce_change_during_a_call_is_deferred_then_applied_when_the_call_ends():
    h = Harness()
    settled(h, AGENT_A, available(), "Available_for_Chats")
    h.step(h.cx(AGENT_A, state("InboundContact")))
    h.step(h.sf(AGENT_A, "On_a_Call"))
    during = h.step(h.sf(AGENT_A, "On_Break"))
    assert during.writes == [] and outcomes(during) == [Outcome.DEFERRED]
    # ACW is a newer CXone contact state: it is published over the request...
    assert targets(h.step(h.cx(AGENT_A, acw()))) == [(AGENT_A, Side.SALESFORCE, "After_Call_Work")]
    h.step(h.sf(AGENT_A, "After_Call_Work"))
    # ...and when the contact ends CXone gets the request, Salesforce is set back to it.
    ended = h.step(h.cx(AGENT_A, available()))
    assert sorted(targets(ended)) == [
        (AGENT_A, Side.CXONE, "Unavailable:Break"),
        (AGENT_A, Side.SALESFORCE, "On_Break"),
    ]
    assert "requested in Salesforce during it" in ended.audit[0].reason
    h.step(h.cx(AGENT_A, unavailable("Break")), h.sf(AGENT_A, "On_Break"))
    assert h.step().writes == []


def test_salesforce_keeps_the_deferred_status_while_the_call_lasts():
    h = Harness()
    settled(h, AGENT_A, available(), "Available_for_Chats")
    h.step(h.cx(AGENT_A, state("InboundContact")))
    h.step(h.sf(AGENT_A, "On_a_Call"))
    h.step(h.sf(AGENT_A, "Lunch"))
    assert all(h.step().writes == [] for _ in range(3))
    ended = h.step(h.cx(AGENT_A, available()))
    assert targets(ended) == [(AGENT_A, Side.CXONE, "Unavailable:Lunch")]


def test_newest_change_wins_a_conflict():
    h = Harness()
    settled(h, AGENT_A, available(), "Available_for_Chats")
    lunch, on_break = h.cx(AGENT_A, unavailable("Lunch"), seconds=20), h.sf(AGENT_A, "On_Break", seconds=21)
    decision = h.step(lunch, on_break, seconds=22)
    assert targets(decision) == [(AGENT_A, Side.CXONE, "Unavailable:Break")]
    assert outcomes(decision) == [Outcome.CONFLICT, Outcome.WRITE]
    assert "newer change in Salesforce" in decision.audit[0].reason


def test_conflict_policy_can_make_cxone_or_salesforce_win():
    for policy, expected in (
        (ConflictPolicy.CXONE_WINS, (AGENT_A, Side.SALESFORCE, "Lunch")),
        (ConflictPolicy.SALESFORCE_WINS, (AGENT_A, Side.CXONE, "Unavailable:Break")),
    ):
        h = Harness(policy=SyncPolicy(conflict=policy))
        settled(h, AGENT_A, available(), "Available_for_Chats")
        # Salesforce is the newer change: only the policy can make CXone win.
        lunch, on_break = h.cx(AGENT_A, unavailable("Lunch"), seconds=20), h.sf(AGENT_A, "On_Break", seconds=21)
        decision = h.step(lunch, on_break, seconds=22)
        assert targets(decision) == [expected], policy
        assert Outcome.CONFLICT in outcomes(decision)


def test_a_contact_wins_over_salesforce_whatever_the_policy():
    h = Harness(policy=SyncPolicy(conflict=ConflictPolicy.SALESFORCE_WINS))
    settled(h, AGENT_A, available(), "Available_for_Chats")
    decision = h.step(
        h.sf(AGENT_A, "On_Break", seconds=20), h.cx(AGENT_A, state("OutboundContact"), seconds=21), seconds=22
    )
    assert targets(decision) == [(AGENT_A, Side.SALESFORCE, "On_a_Call")]


def test_flapping_is_reported_and_still_converges():
    h = Harness(policy=SyncPolicy(flap_threshold=3, flap_window_seconds=60))
    settled(h, AGENT_A, available(), "Available_for_Chats")
    codes = ["Break", "Lunch", "Break", "Lunch", "Break"]
    batch = [h.cx(AGENT_A, unavailable(code), seconds=10 + i) for i, code in enumerate(codes)]
    decision = h.step(*batch, seconds=20)
    assert outcomes(decision).count(Outcome.FLAP) == 1
    assert targets(decision) == [(AGENT_A, Side.SALESFORCE, "On_Break")]


def test_flap_window_forgets_old_changes():
    h = Harness(policy=SyncPolicy(flap_threshold=2, flap_window_seconds=5))
    settled(h, AGENT_A, available(), "Available_for_Chats")
    for i, code in enumerate(["Break", "Lunch", "Break", "Lunch"]):
        decision = h.step(h.cx(AGENT_A, unavailable(code)), seconds=10 * (i + 1))
        assert Outcome.FLAP not in outcomes(decision)


def test_agent_logged_out_of_cxone_gets_no_cxone_write():
    h = Harness(rulebook=demo_rulebook(logouts=False))
    settled(h, AGENT_A, available(), "Available_for_Chats")
    logged_out = h.step(h.cx(AGENT_A, state("LoggedOut")))
    assert logged_out.writes == [] and outcomes(logged_out) == [Outcome.LOGGED_OUT]
    decision = h.step(h.sf(AGENT_A, "On_Break"))
    assert decision.writes == [] and outcomes(decision) == [Outcome.LOGGED_OUT]
    assert "logged out of CXone" in decision.audit[0].reason


def test_logging_out_of_omni_changes_nothing_in_cxone_when_the_rule_says_nothing():
    h = Harness(rulebook=demo_rulebook(logouts=False))
    settled(h, AGENT_A, available(), "Available_for_Chats")
    decision = h.step(h.sf(AGENT_A, None))
    assert decision.writes == [] and outcomes(decision) == [Outcome.LOGGED_OUT]
    assert all(h.step().writes == [] for _ in range(2))


def test_salesforce_logged_out_of_omni_is_still_published_to_on_the_next_cxone_change():
    h = Harness()
    settled(h, AGENT_A, available(), None)
    assert targets(h.step(h.cx(AGENT_A, unavailable("Break")))) == [(AGENT_A, Side.SALESFORCE, "On_Break")]


def test_unlinked_agents_and_agents_without_a_rule_are_audited():
    h = Harness()
    h.links[3] = h.links[AGENT_A].__class__(3, "005X", team_id=999, team_codes=frozenset())
    decision = h.step(h.cx(50, available()), h.sf(3, "Lunch"))
    assert decision.writes == [] and decision.memory == {}
    assert sorted(outcomes(decision)) == sorted([Outcome.NOT_LINKED, Outcome.NO_RULE])


def test_a_user_assignment_overrides_the_team_rule():
    from presence_sync.engine import Rule, RuleBook

    quiet = Rule("Quiet", publisher={}, subscriber={})
    demo = demo_rulebook()
    book = RuleBook.build([*demo.rules.values(), quiet], teams=dict(demo.teams), users={AGENT_A: "Quiet"})
    h = Harness(rulebook=book)
    assert h.step(h.cx(AGENT_A, available())).writes == []
    assert targets(h.step(h.cx(AGENT_B, available()))) == [(AGENT_B, Side.SALESFORCE, "Available_for_Chats")]


def test_a_call_that_overtakes_our_write_is_followed_when_cxone_returns_to_the_state_before_it():
    """Our CXone write lands, a call arrives before the next poll (so its echo is never seen), and when
    ACW ends CXone puts the agent back where they were: a contact's end, not our echo. Seen in the demo."""
    h = Harness()
    settled(h, AGENT_A, unavailable("Break"), "On_Break")
    assert targets(h.step(h.sf(AGENT_A, "Available"))) == [(AGENT_A, Side.CXONE, "Available")]
    assert targets(h.step(h.cx(AGENT_A, state("InboundContact")))) == [(AGENT_A, Side.SALESFORCE, "On_a_Call")]
    h.step(h.sf(AGENT_A, "On_a_Call"))
    assert targets(h.step(h.cx(AGENT_A, acw()))) == [(AGENT_A, Side.SALESFORCE, "After_Call_Work")]
    h.step(h.sf(AGENT_A, "After_Call_Work"))
    ended = h.step(h.cx(AGENT_A, available()))
    assert targets(ended) == [(AGENT_A, Side.SALESFORCE, "Available_for_Chats")]
    assert Outcome.ECHO not in outcomes(ended)
    h.step(h.sf(AGENT_A, "Available_for_Chats"))
    assert all(h.step().writes == [] for _ in range(3))


def test_our_write_sent_into_an_unseen_call_lands_when_it_ends_and_salesforce_keeps_the_request():
    """CXone holds a state set during a contact until the contact ends (apis.md C3 via the emulator):
    the Salesforce request that caused the write is kept, and nothing ping-pongs."""
    h = Harness()
    settled(h, AGENT_A, available(), "Available_for_Chats")
    call_began = h.now
    assert targets(h.step(h.sf(AGENT_A, "On_Break"))) == [(AGENT_A, Side.CXONE, "Unavailable:Break")]
    # The poll sees the call late: it began before the Salesforce change, which now waits for its end.
    h.step(h.cx(AGENT_A, state("InboundContact"), seconds=(call_began - h.at(0)).total_seconds() - 0.5))
    h.step(h.cx(AGENT_A, acw()))
    h.step(h.sf(AGENT_A, "After_Call_Work"))
    ended = h.step(h.cx(AGENT_A, unavailable("Break")))
    assert targets(ended) == [(AGENT_A, Side.SALESFORCE, "On_Break")]
    h.step(h.sf(AGENT_A, "On_Break"))
    assert all(h.step().writes == [] for _ in range(3))
