"""The whole onboarding against the emulators: what it creates (read back through the APIs), re-runs,
plan mode, drift, and what it records."""

from __future__ import annotations

from pathlib import Path

from presence_sync.emulators.demo_center import STATUSES
from presence_sync.emulators.stack import EmulatorStack
from presence_sync.emulators.faults import LOGIN_ROUTES
from presence_sync.models.config import load_config
from presence_sync.models.store import AssignmentKind, LinkedBy, StepOutcome, Store
from presence_sync.tasks.context import open_context
from presence_sync.tasks.onboarding import Action, StepName, run_steps
from presence_sync.tasks.onboarding.report import markdown_summary, title
from tests.onboarding.onboarding_support import (
    AGENTS,
    data_writes,
    onboard,
    outcomes,
    result_of,
    transports_of,
    variant,
)

ALL_STEPS = [step.value for step in StepName]


def _store(config_path: Path) -> Store:
    return Store.open(load_config(config_path).sync.store_url)


async def _salesforce_setup(config_path: Path, stack: EmulatorStack) -> tuple[dict[str, str], dict[str, set[str]], dict[str, set[str]]]:
    """{DeveloperName: label}, {DeveloperName: channel names}, {profile: granted DeveloperNames}, via the API."""
    async with open_context(config_path, transports_of(stack)) as ctx:
        sf = ctx.salesforce
        statuses = {r["Id"]: r for r in await sf.query("SELECT Id, DeveloperName, MasterLabel FROM ServicePresenceStatus")}
        channels = {r["Id"]: r["DeveloperName"] for r in await sf.query("SELECT Id, DeveloperName FROM ServiceChannel")}
        links = await sf.query("SELECT ServicePresenceStatusId, ServiceChannelId FROM ServiceChannelStatus")
        profiles = {r["Id"]: r["Name"] for r in await sf.query("SELECT Id, Name FROM Profile")}
        owners = {
            r["Id"]: profiles[r["ProfileId"]]
            for r in await sf.query("SELECT Id, ProfileId FROM PermissionSet WHERE IsOwnedByProfile = true")
        }
        grants = await sf.query("SELECT ParentId, SetupEntityId FROM SetupEntityAccess")
    labels = {s["DeveloperName"]: s["MasterLabel"] for s in statuses.values()}
    on_channels: dict[str, set[str]] = {s["DeveloperName"]: set() for s in statuses.values()}
    for link in links:
        on_channels[statuses[link["ServicePresenceStatusId"]]["DeveloperName"]].add(channels[link["ServiceChannelId"]])
    granted: dict[str, set[str]] = {}
    for grant in grants:
        granted.setdefault(owners[grant["ParentId"]], set()).add(statuses[grant["SetupEntityId"]]["DeveloperName"])
    return labels, on_channels, granted


async def test_onboarding_creates_exactly_what_the_config_describes(stack: EmulatorStack, config_path: Path) -> None:
    report = await onboard(config_path, stack)

    assert report.succeeded, report.needs_a_human()
    assert outcomes(report) == {
        "presence-statuses": "created", "profile-access": "created", "connected-app": "unchanged",
        "oauth-flow": "unchanged", "account-mapping": "created", "cxone-users": "created", "presence-rule": "created",
    }
    labels, on_channels, granted = await _salesforce_setup(config_path, stack)
    assert labels == {status.developer_name: status.label for status in STATUSES}
    assert on_channels == {status.developer_name: set(status.channels) for status in STATUSES}
    every_status = {status.developer_name for status in STATUSES}
    assert granted == {"Contact Center Agent": every_status, "Contact Center Supervisor": every_status}
    # 2 collection calls for the statuses and their channel links, 1 for the grants; nothing else.
    assert await data_writes(stack) == {"POST /services/data/{version}/composite/sobjects": 3}

    with _store(config_path) as store:
        links = store.setup.load_links()
        assert len(links) == AGENTS - 1
        assert {link.linked_by for link in links} == {LinkedBy.EMAIL}
        assert all(link.cxone_email == link.sf_username for link in links)
        rule = store.setup.get_rule("Default Presence")
        assert rule is not None and rule.skip_validation
        assert rule.publisher_rows[1] == {"acd": "Unavailable: Break", "salesforce": "On_Break"}
        assert rule.subscriber_rows[-1] == {"salesforce": "Resume_Previous", "acd": "Previous State"}
        assignments = store.setup.list_rule_assignments("Default Presence")
        assert {(a.kind, a.target_name) for a in assignments} == {
            (AssignmentKind.TEAM, "Voice Team A"), (AssignmentKind.TEAM, "Voice Team B"),
        }
        assert [step.step for step in store.setup.list_steps(report.run_id)] == ALL_STEPS

    unlinked = result_of(report, "cxone-users").notes
    assert any("agent50@example.com" in note and "no active Salesforce user" in note for note in unlinked)
    assert any("Voice Team B" in note and "CRM Work" in note for note in result_of(report, "presence-rule").notes)


async def test_a_second_run_changes_nothing_and_says_so(stack: EmulatorStack, config_path: Path) -> None:
    await onboard(config_path, stack)
    writes_after_first = await data_writes(stack)

    again = await onboard(config_path, stack)

    assert set(outcomes(again).values()) == {"unchanged"}
    assert await data_writes(stack) == writes_after_first
    with _store(config_path) as store:
        recorded = store.setup.list_steps(again.run_id)
    assert {step.outcome for step in recorded} == {StepOutcome.UNCHANGED}


async def test_plan_mode_says_what_would_change_and_writes_nothing(stack: EmulatorStack, config_path: Path) -> None:
    plan = await onboard(config_path, stack, plan_only=True)

    assert await data_writes(stack) == {}
    assert outcomes(plan) == {
        "presence-statuses": "planned", "profile-access": "planned", "connected-app": "unchanged",
        "oauth-flow": "unchanged", "account-mapping": "planned", "cxone-users": "planned", "presence-rule": "planned",
    }
    statuses = result_of(plan, "presence-statuses")
    assert statuses.counts() == {"create": len(STATUSES)}
    assert any(item.reason == "new online status 'Available' on sfdc_phone, sfdc_chat, sfdc_case" for item in statuses.items)
    grants = result_of(plan, "profile-access").items
    assert all("once presence-statuses has created them" in item.reason for item in grants)
    with _store(config_path) as store:
        assert store.setup.load_links() == [] and store.setup.get_rule("Default Presence") is None
        assert store.setup.list_steps(plan.run_id) == []

    applied = await onboard(config_path, stack)
    assert [r.summary for r in applied.results][:2] == ["9 statuses: 9 created", "2 profiles: 2 created"]


async def test_plan_after_onboarding_is_unchanged(stack: EmulatorStack, config_path: Path) -> None:
    await onboard(config_path, stack)
    writes = await data_writes(stack)

    plan = await onboard(config_path, stack, plan_only=True)

    assert set(outcomes(plan).values()) == {"unchanged"}
    assert await data_writes(stack) == writes


async def test_drifted_statuses_are_updated_and_unlisted_ones_left_alone(stack: EmulatorStack, config_path: Path) -> None:
    await onboard(config_path, stack)
    async with open_context(config_path, transports_of(stack)) as ctx:
        sf = ctx.salesforce
        ids = {r["DeveloperName"]: r["Id"] for r in await sf.query("SELECT Id, DeveloperName FROM ServicePresenceStatus")}
        await sf.update("ServicePresenceStatus", ids["Lunch"], {"MasterLabel": "Lunch Break"})
        chat_link = next(
            r["Id"] for r in await sf.query(
                f"SELECT Id FROM ServiceChannelStatus WHERE ServicePresenceStatusId = '{ids['Available_for_Chats']}'"
            )
        )
        await sf.delete("ServiceChannelStatus", chat_link)
        phone = next(r["Id"] for r in await sf.query("SELECT Id FROM ServiceChannel WHERE DeveloperName = 'sfdc_phone'"))
        await sf.create("ServiceChannelStatus", {"ServicePresenceStatusId": ids["On_Break"], "ServiceChannelId": phone})
        await sf.create("ServicePresenceStatus", {"DeveloperName": "Training", "MasterLabel": "Training"})

    plan = await onboard(config_path, stack, plan_only=True)
    reasons = {item.key: item.reason for item in result_of(plan, "presence-statuses").items if item.action is Action.UPDATE}
    assert reasons == {
        "Lunch": "label 'Lunch Break' -> 'Lunch'",
        "Available_for_Chats": "add channel sfdc_chat",
        "On_Break": "remove channel sfdc_phone",
    }

    report = await onboard(config_path, stack)

    assert result_of(report, "presence-statuses").outcome is StepOutcome.UPDATED
    assert result_of(report, "presence-statuses").summary == "9 statuses: 3 updated, 6 unchanged"
    labels, on_channels, _ = await _salesforce_setup(config_path, stack)
    assert labels["Lunch"] == "Lunch" and labels["Training"] == "Training"
    assert on_channels["Available_for_Chats"] == {"sfdc_chat"} and on_channels["On_Break"] == set()
    assert set(outcomes(await onboard(config_path, stack)).values()) == {"unchanged"}


async def test_refreshing_users_links_new_agents_and_drops_departed_ones(stack: EmulatorStack, config_path: Path) -> None:
    await onboard(config_path, stack)
    tenant = stack.cxone.tenant
    newcomer = tenant.add_agent("New", "Agent", "agent7b@example.com", 1001)
    tenant.update_agent(tenant.find_agent("agent3@example.com")["agentId"], is_active=False)
    stack.salesforce.create_user("agent7b@example.com", "agent7b@example.com", "New Agent", "Contact Center Agent")

    config = load_config(config_path)
    async with open_context(config, transports_of(stack)) as ctx:
        report = await run_steps(ctx, [StepName.CXONE_USERS])

    result = result_of(report, "cxone-users")
    assert [r.step for r in report.results] == [StepName.CXONE_USERS]
    assert result.counts() == {"create": 1, "remove": 1, "unchanged": AGENTS - 2}
    with _store(config_path) as store:
        linked = {link.cxone_agent_id for link in store.setup.load_links()}
    assert newcomer in linked and tenant.find_agent("agent3@example.com")["agentId"] not in linked


async def test_links_overrides_win_over_email_matching(stack: EmulatorStack, config_path: Path) -> None:
    supervisor = "supervisor1@example.com"

    def link_agent_1_to_the_supervisor(data: dict) -> None:
        data["links"] = [{"cxone_agent": "agent1@example.com", "salesforce_user": supervisor}]

    report = await onboard(variant(config_path, link_agent_1_to_the_supervisor), stack)

    assert report.succeeded
    with _store(config_path) as store:
        link = next(link for link in store.setup.load_links() if link.cxone_email == "agent1@example.com")
    assert (link.sf_username, link.linked_by) == (supervisor, LinkedBy.OVERRIDE)
    assert not any("agent1@" in note for note in result_of(report, "cxone-users").notes)


async def _token_requests(stack: EmulatorStack) -> dict[str, int]:
    counts: dict[str, int] = {}
    for client in (stack.salesforce_http(), stack.cxone_http()):
        async with client:
            requests = (await client.get("/__emulator/stats")).json()["requests"]
        counts |= {route: n for route, n in requests.items() if route in LOGIN_ROUTES}
    return counts


async def test_a_run_logs_in_once_per_system(stack: EmulatorStack, config_path: Path) -> None:
    # The checks reuse the run's own login: the emulators count each token request as a write.
    plan = await onboard(config_path, stack, plan_only=True)
    assert plan.succeeded
    assert await _token_requests(stack) == {"POST /services/oauth2/token": 1, "POST /auth/token": 1}

    assert (await onboard(config_path, stack)).succeeded
    assert await _token_requests(stack) == {"POST /services/oauth2/token": 2, "POST /auth/token": 2}


async def test_the_second_run_says_nothing_changed_in_its_title(stack: EmulatorStack, config_path: Path) -> None:
    first = await onboard(config_path, stack)
    second = await onboard(config_path, stack)

    assert title(first) == "Onboarding: 7 steps, all done"
    assert title(second) == "Onboarding: 7 steps, all done; nothing changed (already as the config says)"
    assert "nothing changed" in markdown_summary(second).splitlines()[0]
