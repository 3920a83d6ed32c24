"""`SetupRecords`: account mapping, rule + assignments, agent links, step outcomes."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
from pydantic import SecretStr

from presence_sync.models.store import (
    AccountMapping,
    AgentLink,
    AssignmentKind,
    LinkedBy,
    OnboardingStep,
    PresenceRule,
    RuleAssignment,
    StepOutcome,
    Store,
    StoreConflictError,
)
from presence_sync.models.store.migrations import schema_version_table
from presence_sync.models.store.tables import STORE_TABLES

if TYPE_CHECKING:
    from tests.models.conftest import FakeClock, StatementLog

SECRET_WORDS = re.compile(
    r"secret|password|passwd|private_key|security_token|access_token|refresh_token|credential"
    r"|api_key|bearer",
    re.IGNORECASE,
)


def _mapping(**changes: object) -> AccountMapping:
    fields: dict[str, object] = {
        "cxone_tenant_id": "11EB0C34-DEMO",
        "cxone_access_key_user": "integration@acme.example",
        "sf_environment": "production",
        "sf_login_host": "acme.my.salesforce.com",
        "sf_auth_flow": "client_credentials",
    } | changes
    return AccountMapping(**fields)


def _link(agent_id: int, sf_user: str | None = None, **changes: object) -> AgentLink:
    fields: dict[str, object] = {
        "cxone_agent_id": agent_id,
        "cxone_username": f"agent{agent_id}@example.com",
        "cxone_email": f"agent{agent_id}@example.com",
        "team_id": 10 + agent_id % 2,
        "team_name": "Voice Team A" if agent_id % 2 == 0 else "Voice Team B",
        "sf_user_id": sf_user or f"005{agent_id:015d}",
        "sf_username": f"agent{agent_id}@example.com",
        "linked_by": LinkedBy.EMAIL,
    } | changes
    return AgentLink(**fields)


DEFAULT_PRESENCE = PresenceRule(
    name="Default Presence",
    skip_validation=True,
    publisher_rows=[{"acd": "Available", "salesforce": "Available_for_Chats"}],
    subscriber_rows=[{"salesforce": "Available_for_Chats", "acd": "Available"}],
)
TEAMS = {10: "Voice Team A", 11: "Voice Team B"}


# --- account mapping -------------------------------------------------------------------------


def test_account_mapping_is_created_then_unchanged_then_updated(
    store: Store, clock: FakeClock
) -> None:
    assert store.setup.upsert_account_mapping(_mapping()) is StepOutcome.CREATED
    created_at = clock.now
    clock.advance(60)
    assert store.setup.upsert_account_mapping(_mapping()) is StepOutcome.UNCHANGED
    with_org_id = _mapping(sf_org_id="00D000000000001")
    assert store.setup.upsert_account_mapping(with_org_id) is StepOutcome.UPDATED

    stored = store.setup.get_account_mapping("11EB0C34-DEMO")
    assert stored is not None
    assert stored.sf_org_id == "00D000000000001"
    assert stored.updated_at == clock.now != created_at
    assert store.setup.get_account_mapping("some-other-tenant") is None


def test_reverifying_an_account_mapping_is_stored_but_reported_unchanged(
    store: Store, clock: FakeClock
) -> None:
    store.setup.upsert_account_mapping(_mapping(verified_at=clock.now))
    stamped_at = clock.now
    verified_again = clock.advance(3600)

    reverified = _mapping(verified_at=verified_again)
    assert store.setup.upsert_account_mapping(reverified) is StepOutcome.UNCHANGED

    stored = store.setup.get_account_mapping("11EB0C34-DEMO")
    assert stored is not None
    assert stored.verified_at == verified_again
    assert stored.updated_at == stamped_at


# --- presence rule -------------------------------------------------------------------------


def test_a_rule_and_its_assignments_are_stored_idempotently(store: Store) -> None:
    first = store.setup.replace_rule(DEFAULT_PRESENCE, teams=TEAMS, users={4242: "agent4242"})
    again = store.setup.replace_rule(DEFAULT_PRESENCE, teams=TEAMS, users={4242: "agent4242"})

    assert first.outcome is StepOutcome.CREATED
    assert again.outcome is StepOutcome.UNCHANGED
    stored = store.setup.get_rule("Default Presence")
    assert stored is not None
    assert (stored.skip_validation, stored.publisher_rows, stored.subscriber_rows) == (
        True,
        DEFAULT_PRESENCE.publisher_rows,
        DEFAULT_PRESENCE.subscriber_rows,
    )
    assigned = {(a.kind, a.target_id, a.target_name) for a in store.setup.list_rule_assignments()}
    assert assigned == {
        (AssignmentKind.TEAM, 10, "Voice Team A"),
        (AssignmentKind.TEAM, 11, "Voice Team B"),
        (AssignmentKind.USER, 4242, "agent4242"),
    }


def test_replacing_a_rule_replaces_its_whole_assignment_list(store: Store) -> None:
    store.setup.replace_rule(DEFAULT_PRESENCE, teams=TEAMS, users={4242: "agent4242"})

    change = store.setup.replace_rule(DEFAULT_PRESENCE, teams={10: "Voice Team A"})

    assert change.outcome is StepOutcome.UPDATED
    assert [(a.kind, a.target_id) for a in store.setup.list_rule_assignments("Default Presence")] == [
        (AssignmentKind.TEAM, 10)
    ]


def test_changed_rule_rows_are_an_update(store: Store) -> None:
    store.setup.replace_rule(DEFAULT_PRESENCE, teams=TEAMS)
    acw_row = {"acd": "ACW", "salesforce": "After_Call_Work"}
    edited = DEFAULT_PRESENCE.model_copy(
        update={"publisher_rows": [*DEFAULT_PRESENCE.publisher_rows, acw_row]}
    )

    assert store.setup.replace_rule(edited, teams=TEAMS).outcome is StepOutcome.UPDATED
    stored = store.setup.get_rule("Default Presence")
    assert stored is not None
    assert stored.publisher_rows[-1] == acw_row


def test_a_team_moves_to_the_rule_the_config_now_gives_it(store: Store) -> None:
    store.setup.replace_rule(DEFAULT_PRESENCE, teams=TEAMS)
    night_shift = PresenceRule(name="Night Shift", skip_validation=False)

    change = store.setup.replace_rule(night_shift, teams={11: "Voice Team B"})

    assert change.outcome is StepOutcome.CREATED
    assert [(a.rule_name, a.target_id) for a in change.taken_over] == [("Default Presence", 11)]
    by_team = {a.target_id: a.rule_name for a in store.setup.list_rule_assignments()}
    assert by_team == {10: "Default Presence", 11: "Night Shift"}


def _assigned(rule: str, kind: AssignmentKind, target_id: int, name: str) -> RuleAssignment:
    return RuleAssignment(kind=kind, target_id=target_id, rule_name=rule, target_name=name)


CHAT = PresenceRule(name="Chat Presence", skip_validation=False, on_cxone_logout="nothing", managed_by_config=True)
VOICE = DEFAULT_PRESENCE.model_copy(update={"managed_by_config": True})
BOTH = [
    _assigned("Default Presence", AssignmentKind.TEAM, 10, "Voice Team A"),
    _assigned("Chat Presence", AssignmentKind.TEAM, 12, "Chat Team"),
    _assigned("Chat Presence", AssignmentKind.USER, 4242, "agent4242"),
]


def test_several_rules_are_stored_with_their_assignments_in_one_go_idempotently(store: Store) -> None:
    first = store.setup.replace_rules([VOICE, CHAT], BOTH)
    revision = store.setup.setup_revision()
    again = store.setup.replace_rules([VOICE, CHAT], BOTH)

    assert (first.created, first.outcome) == (("Default Presence", "Chat Presence"), StepOutcome.CREATED)
    assert again.outcome is StepOutcome.UNCHANGED and again == type(again)()
    assert revision == 1 and store.setup.setup_revision() == 1  # nothing changed: no new revision
    assert [(r.name, r.on_cxone_logout, r.on_omni_logout, r.managed_by_config) for r in store.setup.list_rules()] == [
        ("Chat Presence", "nothing", "Unavailable", True),
        ("Default Presence", "Offline", "Unavailable", True),
    ]
    assert {(a.rule_name, a.target_id) for a in store.setup.list_rule_assignments()} == {
        ("Default Presence", 10), ("Chat Presence", 12), ("Chat Presence", 4242),
    }


def test_rules_are_updated_moved_and_removed_and_each_change_is_a_new_revision(store: Store) -> None:
    store.setup.replace_rules([VOICE, CHAT], BOTH)
    edited = CHAT.model_copy(update={"on_omni_logout": "LoggedOut"})
    moved = [BOTH[0], BOTH[1], _assigned("Default Presence", AssignmentKind.USER, 4242, "agent4242")]

    change = store.setup.replace_rules([VOICE, edited], moved)

    assert (change.updated, change.assignments_changed, change.outcome) == (("Chat Presence",), 1, StepOutcome.UPDATED)
    assert store.setup.setup_revision() == 2
    removal = store.setup.replace_rules([VOICE], [BOTH[0]], remove=["Chat Presence", "Never Stored"])
    assert (removal.removed, removal.outcome) == (("Chat Presence",), StepOutcome.UPDATED)
    assert [r.name for r in store.setup.list_rules()] == ["Default Presence"]
    assert [(a.rule_name, a.target_id) for a in store.setup.list_rule_assignments()] == [("Default Presence", 10)]
    assert store.setup.setup_revision() == 3


def test_an_assignment_to_two_rules_or_to_a_rule_not_stored_is_refused_and_changes_nothing(store: Store) -> None:
    with pytest.raises(StoreConflictError, match="assigned to two rules"):
        store.setup.replace_rules(
            [VOICE, CHAT], [*BOTH, _assigned("Default Presence", AssignmentKind.TEAM, 12, "Chat Team")]
        )
    with pytest.raises(StoreConflictError, match="not among the rules stored with it"):
        store.setup.replace_rules([VOICE], BOTH)
    assert store.setup.list_rules() == [] and store.setup.setup_revision() == 0


def test_changed_links_are_a_new_setup_revision(store: Store) -> None:
    store.setup.upsert_links([_link(1), _link(2)])
    assert store.setup.setup_revision() == 1
    store.setup.upsert_links([_link(1), _link(2)])
    assert store.setup.setup_revision() == 1
    store.setup.upsert_links([_link(1, team_id=12, team_name="Chat Team"), _link(2)])
    assert store.setup.setup_revision() == 2


# --- agent links -----------------------------------------------------------------------------


def test_links_report_created_updated_unchanged_and_removed(store: Store, clock: FakeClock) -> None:
    assert store.setup.upsert_links([_link(i) for i in range(1, 6)]).outcome is StepOutcome.CREATED
    linked_at = clock.now
    clock.advance(60)

    changes = store.setup.upsert_links(
        [_link(1), _link(2), _link(3, team_name="Voice Team C"), _link(6)], prune=True
    )

    assert (changes.created, changes.updated, changes.unchanged, changes.removed) == (1, 1, 2, 2)
    assert changes.outcome is StepOutcome.UPDATED
    links = {link.cxone_agent_id: link for link in store.setup.load_links()}
    assert sorted(links) == [1, 2, 3, 6]
    assert links[3].team_name == "Voice Team C"
    assert links[3].updated_at == clock.now
    assert links[1].updated_at == linked_at  # untouched rows keep their stamp
    assert links[1].linked_by is LinkedBy.EMAIL
    assert store.setup.count_links() == 4


def test_links_without_prune_leave_other_agents_alone(store: Store) -> None:
    store.setup.upsert_links([_link(1), _link(2)])

    changes = store.setup.upsert_links([_link(3)])

    assert (changes.created, changes.removed) == (1, 0)
    assert [link.cxone_agent_id for link in store.setup.load_links()] == [1, 2, 3]


def test_two_agents_may_swap_salesforce_users_in_one_update(store: Store) -> None:
    store.setup.upsert_links([_link(1, "005A"), _link(2, "005B")])

    changes = store.setup.upsert_links([_link(1, "005B"), _link(2, "005A")])

    assert changes.updated == 2
    users = {link.cxone_agent_id: link.sf_user_id for link in store.setup.load_links()}
    assert users == {1: "005B", 2: "005A"}


def test_a_salesforce_user_linked_to_two_agents_is_refused_and_nothing_changes(
    store: Store,
) -> None:
    store.setup.upsert_links([_link(1, "005A")])

    with pytest.raises(StoreConflictError) as refused:
        store.setup.upsert_links([_link(2, "005B"), _link(3, "005A", linked_by=LinkedBy.OVERRIDE)])

    assert "Salesforce user 005A <- CXone agents 1, 3" in str(refused.value)
    assert "explicit links" in str(refused.value)
    assert [link.cxone_agent_id for link in store.setup.load_links()] == [1]


def test_an_agent_given_twice_in_one_update_is_refused(store: Store) -> None:
    with pytest.raises(StoreConflictError, match="CXone agent 7 is linked twice"):
        store.setup.upsert_links([_link(7, "005A"), _link(7, "005B")])

    assert store.setup.load_links() == []


def test_linking_10000_agents_costs_the_same_few_statements(
    store: Store, statement_log: StatementLog
) -> None:
    def links(team: str) -> list[AgentLink]:
        return [_link(i, team_name=team, team_id=1) for i in range(1, 10_001)]

    with statement_log(store.engine) as statements:
        created = store.setup.upsert_links(links("Voice Team A"))
        updated = store.setup.upsert_links(links("Voice Team B")[:5_000], prune=True)

    assert (created.created, updated.updated, updated.removed) == (10_000, 5_000, 5_000)
    assert len(statements) <= 10  # per call: BEGIN, read links, delete changed, insert
    assert store.setup.count_links() == 5_000


# --- step outcomes -------------------------------------------------------------------------


def test_step_outcomes_are_listed_per_run_in_order(store: Store, clock: FakeClock) -> None:
    started_at = clock.now
    first = store.setup.record_step(
        OnboardingStep(
            run_id="run-1",
            step="presence-statuses",
            outcome=StepOutcome.CREATED,
            summary="9 statuses created",
            details={"created": 9},
        )
    )
    clock.advance(1)
    for run_id, step, outcome, summary in [
        ("run-2", "presence-statuses", StepOutcome.UNCHANGED, "nothing to do"),
        ("run-1", "connected-app", StepOutcome.FAILED, "raise a Salesforce Support case"),
    ]:
        store.setup.record_step(
            OnboardingStep(run_id=run_id, step=step, outcome=outcome, summary=summary)
        )

    steps = store.setup.list_steps("run-1")

    assert first.id is not None
    assert first.at == started_at
    assert [(s.step, s.outcome) for s in steps] == [
        ("presence-statuses", StepOutcome.CREATED),
        ("connected-app", StepOutcome.FAILED),
    ]
    assert steps[0].details == {"created": 9}
    assert steps[1].at == clock.now
    assert store.setup.list_steps("run-that-never-ran") == []


# --- secrets -------------------------------------------------------------------------------


def test_no_table_has_a_column_for_a_secret() -> None:
    tables = (*STORE_TABLES, schema_version_table)
    columns = [f"{table.name}.{column.name}" for table in tables for column in table.columns]

    assert len(columns) > 50
    assert [column for column in columns if SECRET_WORDS.search(column)] == []
    assert SecretStr not in {field.annotation for field in AccountMapping.model_fields.values()}
