"""Linking CXone agents to Salesforce users: overrides, email, username, and why an agent stays unlinked."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from presence_sync.models.config import LinkOverride
from presence_sync.models.store import LinkedBy
from presence_sync.tasks.onboarding import Action, CxoneAgent, Linking, SalesforceUser, link_agents


def agent(agent_id: int, email: str | None, user_name: str | None = None, crm: str | None = None) -> CxoneAgent:
    return CxoneAgent(agent_id, user_name or email or str(agent_id), email, crm, 1001, "Voice Team A")


def user(number: int, username: str, email: str | None) -> SalesforceUser:
    return SalesforceUser(f"005000000000{number:03d}AAA", username, email)


def linked(linking: Linking) -> dict[int, tuple[str, LinkedBy]]:
    return {link.cxone_agent_id: (link.sf_username, link.linked_by) for link in linking.links}


def test_agents_link_by_email_then_by_crm_user_name_then_by_user_name() -> None:
    agents = [
        agent(1, "ann@acme.com"),
        agent(2, "bob@acme.com", user_name="bob", crm="bob@acme.com.service"),
        agent(3, "cy@old-domain.com", user_name="cy@acme.com"),
    ]
    users = [
        user(1, "ann@acme.com.service", "ANN@acme.com"),
        user(2, "bob@acme.com.service", "robert@acme.com"),
        user(3, "cy@acme.com", "cy@acme.com"),
    ]

    linking = link_agents(agents, users)

    assert linked(linking) == {
        1: ("ann@acme.com.service", LinkedBy.EMAIL),
        2: ("bob@acme.com.service", LinkedBy.USERNAME),
        3: ("cy@acme.com", LinkedBy.USERNAME),
    }
    assert linking.unlinked == () and linking.failures == ()


def test_an_override_wins_and_takes_its_user_out_of_automatic_matching() -> None:
    agents = [agent(1, "ann@acme.com"), agent(2, "ann.b@acme.com")]
    users = [user(1, "ann@acme.com", "ann@acme.com")]
    overrides = [LinkOverride(cxone_agent=2, salesforce_user="005000000000001")]  # 15-character Id

    linking = link_agents(agents, users, overrides)

    assert linked(linking) == {2: ("ann@acme.com", LinkedBy.OVERRIDE)}
    [left] = linking.unlinked
    assert left.agent.agent_id == 1
    assert "linked to another agent by a links entry" in left.reason


def test_a_shared_email_is_settled_by_username_or_reported() -> None:
    users = [user(1, "pat@acme.com", "team@acme.com"), user(2, "sam@acme.com", "team@acme.com")]
    agents = [agent(1, "team@acme.com", user_name="sam@acme.com"), agent(2, "team@acme.com", user_name="kim")]

    linking = link_agents(agents, users)

    assert linked(linking) == {1: ("sam@acme.com", LinkedBy.USERNAME)}
    [left] = linking.unlinked
    assert "2 Salesforce users share the email team@acme.com" in left.reason


def test_two_agents_matching_one_user_are_both_left_for_a_person_to_decide() -> None:
    agents = [agent(1, "desk@acme.com", user_name="desk1"), agent(2, "desk@acme.com", user_name="desk2")]
    users = [user(1, "desk@acme.com", "desk@acme.com")]

    linking = link_agents(agents, users)

    assert linking.links == ()
    assert [u.agent.agent_id for u in linking.unlinked] == [1, 2]
    assert all("add a links entry for the right one" in u.reason for u in linking.unlinked)


def test_overrides_that_name_nothing_are_failures_and_hold_their_agent_back() -> None:
    agents = [agent(1, "ann@acme.com")]
    users = [user(1, "ann@acme.com", "ann@acme.com")]
    overrides = [
        LinkOverride(cxone_agent="nobody@acme.com", salesforce_user="ann@acme.com"),
        LinkOverride(cxone_agent=1, salesforce_user="ghost@acme.com"),
    ]

    linking = link_agents(agents, users, overrides)

    assert [(item.subject, item.action) for item in linking.failures] == [
        ("links[0]", Action.FAILED), ("links[1]", Action.FAILED),
    ]
    assert "fix links[0].cxone_agent" in linking.failures[0].reason
    assert "fix links[1].salesforce_user" in linking.failures[1].reason
    assert linking.links == ()  # not silently linked by email against the admin's explicit entry
    assert "links[1]" in linking.unlinked[0].reason


names = st.sampled_from(["a", "b", "c", "d"])


@given(
    agent_specs=st.lists(st.tuples(names, names, st.none() | names), max_size=8),
    user_specs=st.lists(st.tuples(names, st.none() | names), max_size=6, unique_by=lambda spec: spec[0]),
)
def test_every_agent_is_linked_at_most_once_and_every_user_to_one_agent(
    agent_specs: list[tuple[str, str, str | None]], user_specs: list[tuple[str, str | None]]
) -> None:
    agents = [agent(i, f"{e}@x.com", user_name=f"{u}@x.com", crm=f"{c}@x.com" if c else None)
              for i, (e, u, c) in enumerate(agent_specs, start=1)]
    users = [user(i, f"{u}@x.com", f"{e}@x.com" if e else None) for i, (u, e) in enumerate(user_specs, start=1)]

    linking = link_agents(agents, users)

    linked_agents = [link.cxone_agent_id for link in linking.links]
    linked_users = [link.sf_user_id for link in linking.links]
    assert len(set(linked_users)) == len(linked_users)
    assert sorted(linked_agents + [u.agent.agent_id for u in linking.unlinked]) == list(range(1, len(agents) + 1))
