"""The simulated working day: deterministic per seed, inside the day, respecting who can do what."""

from __future__ import annotations

from presence_sync.emulators.simulator import SimulatedAgent, plan_day

DAY = 60.0
DWELL = 2.0


def agent(index: int = 3, team: str = "Voice Team A", salesforce: bool = True) -> SimulatedAgent:
    return SimulatedAgent(index, f"agent{index}@example.com", team, 1_000_000 + index, "005000000000001AAA" if salesforce else None)


def test_same_seed_same_day_other_seed_other_day() -> None:
    first = plan_day(agent(), seed=7, day_seconds=DAY)
    again = plan_day(agent(), seed=7, day_seconds=DAY)
    other = plan_day(agent(), seed=8, day_seconds=DAY)
    assert first == again
    assert first != other


def test_every_step_happens_inside_the_day_in_order_and_states_last() -> None:
    for index in range(1, 40):
        plan = plan_day(agent(index), seed=1, day_seconds=DAY, min_dwell_seconds=DWELL)
        times = [timed.at for activity in plan for timed in activity.steps]
        assert times == sorted(times)
        assert times[-1] + DWELL <= DAY
        for activity in plan:
            gaps = [b.at - a.at for a, b in zip(activity.steps, activity.steps[1:])]
            # A step right after another is the same instant (offer then accept); otherwise a state lasts.
            assert all(gap == 0 or gap >= DWELL - 1e-9 for gap in gaps), (activity.name, gaps)


def test_each_activity_ends_available_on_the_side_it_started() -> None:
    for index in range(1, 60):
        for activity in plan_day(agent(index), seed=2, day_seconds=DAY):
            last = activity.steps[-1].step
            if last.side == "salesforce":
                assert last.body["status"] in ("Available", "Available_for_Chats"), activity
            elif last.action == "contact":
                assert last.body["action"] == "end_acw", activity
            else:
                assert last.body == {"state": "Available"}, activity


def test_agents_without_a_salesforce_user_act_only_in_cxone() -> None:
    for index in range(1, 40):
        plan = plan_day(agent(index, salesforce=False), seed=3, day_seconds=DAY)
        assert {timed.step.side for activity in plan for timed in activity.steps} == {"cxone"}


def test_team_b_never_picks_a_code_it_lacks() -> None:
    reasons = {
        timed.step.body.get("reason")
        for index in range(1, 80)
        for activity in plan_day(agent(index, team="Voice Team B"), seed=4, day_seconds=DAY)
        for timed in activity.steps
    }
    assert "CRM Work" not in reasons
    assert "Break" in reasons


def test_a_day_has_lunch_calls_and_both_sides() -> None:
    names = [a.name for index in range(1, 30) for a in plan_day(agent(index), seed=5, day_seconds=DAY)]
    assert sum(name.startswith("lunch") for name in names) == 29  # one lunch per agent
    assert "inbound call" in names
    assert {"break in Salesforce", "break in CXone"} <= set(names)
