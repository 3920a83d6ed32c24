"""Several rules: each agent is carried by its own (user over team), and by its new one once it changes."""

from __future__ import annotations

from dataclasses import replace

from presence_sync.engine import (
    AgentLink,
    AgentMemory,
    CxoneTarget,
    Outcome,
    Rule,
    RuleBook,
    Side,
    decide,
    resolution_basis,
)
from tests.engine.engine_demo import (
    AGENT_A,
    AGENT_B,
    DEMO_PUBLISHER,
    DEMO_SUBSCRIBER,
    TEAM_A,
    TEAM_B,
    TEAM_CODES,
    Harness,
    available,
    demo_rule,
    outcomes,
    targets,
    unavailable,
)
from tests.engine.test_engine_seed_behaviours import settled

CHAT = Rule(
    "Chat Presence",
    publisher={**DEMO_PUBLISHER, "Available": "Available", "Unavailable: CRM Work": "Available_for_Chats"},
    subscriber={**DEMO_SUBSCRIBER, "Available_for_Chats": CxoneTarget.unavailable("CRM Work")},
    skip_unavailable_code_validation=True,
)
AGENT_C = 3  # on Team A, but assigned Chat Presence as a user


def book(*, chat_team: int = TEAM_B, users: dict[int, str] | None = None) -> RuleBook:
    teams = {TEAM_A: "Default Presence", TEAM_B: "Default Presence", chat_team: CHAT.name}
    return RuleBook.build([demo_rule(), CHAT], teams=teams, users=users or {})


def test_each_agent_is_carried_by_its_own_rule_and_a_user_assignment_wins():
    h = Harness(rulebook=book(users={AGENT_C: CHAT.name}))
    h.links[AGENT_C] = AgentLink(AGENT_C, "005C", TEAM_A, TEAM_CODES[TEAM_A])
    decision = h.step(h.cx(AGENT_A, available()), h.cx(AGENT_B, available()), h.cx(AGENT_C, available()))
    assert sorted(targets(decision)) == [
        (AGENT_A, Side.SALESFORCE, "Available_for_Chats"),  # Default Presence (Team A)
        (AGENT_B, Side.SALESFORCE, "Available"),  # Chat Presence (Team B)
        (AGENT_C, Side.SALESFORCE, "Available"),  # Chat Presence (user assignment over Team A's rule)
    ]
    assert {r.agent_id: r.rule for r in decision.audit} == {
        AGENT_A: "Default Presence", AGENT_B: CHAT.name, AGENT_C: CHAT.name,
    }
    chat = h.step(h.sf(AGENT_C, "Available_for_Chats"))
    assert targets(chat) == [(AGENT_C, Side.CXONE, "Unavailable:CRM Work")]
    assert chat.audit[0].rule_row == "subscriber: Available_for_Chats -> Unavailable: CRM Work"


def test_every_decision_names_the_rule_and_agents_without_one_are_not_synced():
    h = Harness(rulebook=RuleBook.build([CHAT], teams={TEAM_B: CHAT.name}))
    decision = h.step(h.cx(AGENT_A, available()), h.cx(AGENT_B, available()))
    by_agent = {r.agent_id: r for r in decision.audit}
    assert by_agent[AGENT_A].outcome is Outcome.NO_RULE and by_agent[AGENT_A].rule is None
    assert "not synced" in by_agent[AGENT_A].reason
    assert by_agent[AGENT_B].rule == CHAT.name
    assert AGENT_A not in decision.memory and targets(decision) == [(AGENT_B, Side.SALESFORCE, "Available")]
    echo = h.step(h.sf(AGENT_B, "Available"))
    assert [(r.outcome, r.rule) for r in echo.audit] == [(Outcome.ECHO, CHAT.name)]


def test_a_changed_assignment_resolves_the_latest_change_again_with_the_new_rule():
    h = Harness(rulebook=book(chat_team=999))  # nobody on the chat team yet
    settled(h, AGENT_A, available(), "Available_for_Chats")
    h.rulebook = book(chat_team=999, users={AGENT_A: CHAT.name})  # onboarding assigned the agent to Chat
    h.now = h.at(100)
    decision = decide(h.rulebook, h.links, h.memory, [], h.now, h.policy, due_agents={AGENT_A})
    assert targets(decision) == [(AGENT_A, Side.SALESFORCE, "Available")]
    [record] = decision.audit
    assert record.rule == CHAT.name and "the agent's rule changed (now 'Chat Presence')" in record.reason
    h.memory.update(decision.memory)
    assert h.memory[AGENT_A].intent.basis == resolution_basis(CHAT, h.links[AGENT_A])
    # The same rule again: nothing to resolve, nothing written.
    assert decide(h.rulebook, h.links, h.memory, [], h.at(101), h.policy, due_agents={AGENT_A}).writes == []


def test_a_move_to_a_team_without_a_code_resolves_the_latest_change_again():
    h = Harness()
    settled(h, AGENT_A, unavailable("Break"), "On_Break")
    to_cxone = h.step(h.sf(AGENT_A, "Case_Work"))
    assert targets(to_cxone) == [(AGENT_A, Side.CXONE, "Unavailable:CRM Work")]
    # Before the write's echo, refresh-users finds the agent moved to Team B, which has no CRM Work.
    h.links[AGENT_A] = AgentLink(AGENT_A, h.links[AGENT_A].sf_user_id, TEAM_B, TEAM_CODES[TEAM_B])
    again = decide(h.rulebook, h.links, h.memory, [], h.at(60), h.policy, due_agents={AGENT_A})
    assert targets(again) == [(AGENT_A, Side.CXONE, "Unavailable")]  # skip validation: the default Unavailable


def test_a_rule_changed_in_place_is_resolved_again_and_the_same_rule_is_not():
    h = Harness()
    settled(h, AGENT_A, available(), "Available_for_Chats")
    same = RuleBook.build([demo_rule()], teams=dict(h.rulebook.teams))
    assert decide(same, h.links, h.memory, [], h.at(50), h.policy, due_agents={AGENT_A}).memory == {}
    edited = replace(demo_rule(), publisher={**DEMO_PUBLISHER, "Available": "Available"})
    changed = RuleBook.build([edited], teams=dict(h.rulebook.teams))
    assert targets(decide(changed, h.links, h.memory, [], h.at(51), h.policy, due_agents={AGENT_A})) == [
        (AGENT_A, Side.SALESFORCE, "Available")
    ]


def test_memory_written_before_rules_were_recorded_is_read_and_kept_as_it_was():
    h = Harness()
    settled(h, AGENT_A, available(), "Available_for_Chats")
    old = h.memory[AGENT_A].to_json()
    old["v"] = 1
    del old["intent"]["basis"], old["intent"]["previous"]
    for command in old["echo_watch"]:
        command.pop("rule", None)
    memory = {AGENT_A: AgentMemory.from_json(old)}
    assert memory[AGENT_A].intent.basis is None
    decision = decide(h.rulebook, h.links, memory, [], h.at(50), h.policy, due_agents={AGENT_A})
    assert decision.writes == []
    assert decision.memory[AGENT_A].intent.basis == resolution_basis(demo_rule(), h.links[AGENT_A])
