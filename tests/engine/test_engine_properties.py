"""Property tests: random rules and random people on both sides, against the world simulator.

Each world has one to three rules, assigned to its two teams and overriding some agents by user
assignment, each with its own logout settings; now and then the assignments change (a team or a user
moves to another rule, an agent to another team) and, as the sync tick does on a changed setup, a
reconcile follows.

Per decide (checked inside `World`): deterministic; a replayed batch is all duplicates and writes
nothing; every observation is audited; CXone writes are settable targets the team may use; an echo
never causes a write to the other side; no two commands for one change unless that side changed
in between; at most one write per side per agent per decide.

Also per decide: every decision of an agent with a rule names that rule; a CXone session is never
ended while the agent is (as last seen) on a contact.

At the end (checked here), after people stop and a reconcile and idle ticks: the world is quiet,
both sides show what the engine's intent maps to (or memory says why not), that intent is the latest
change a person made whenever that change is unambiguous, and it was resolved by the agent's current rule.
"""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from presence_sync.engine import (
    PREVIOUS_STATE,
    AgentLink,
    CommandStatus,
    ConflictPolicy,
    CxoneState,
    CxoneTarget,
    Rule,
    RuleBook,
    OMNI_OFFLINE,
    Side,
    SyncPolicy,
    resolution_basis,
    salesforce_shows,
)
from tests.engine.engine_demo import T0
from tests.engine.engine_world import CONTACT_END, Faults, Violation, World

CODES = ("Break", "Lunch", "CRM Work")
STATUSES = ("S_A", "S_B", "S_C", "S_D")
UNMAPPED_STATUS = "S_X"
PUBLISHER_KEYS = (
    "Available",
    "Unavailable",
    *(f"Unavailable:{code}" for code in CODES),
    "InboundContact",
    "OutboundContact",
    "Dialer",
    "ACW",
    "Refused",
    "LoggedOut",
)
SUBSCRIBER_TARGETS = (
    CxoneTarget.available(),
    CxoneTarget.unavailable(),
    *(CxoneTarget.unavailable(code) for code in CODES),
    PREVIOUS_STATE,
)
SYSTEM_STATES = (
    CxoneState("InboundContact"),
    CxoneState("OutboundContact"),
    CxoneState("Dialer"),
    CxoneState("Unavailable", "ACW", is_acw=True),
    CxoneState("Unavailable", "Refused"),
    CxoneState("LoggedOut"),
)
# The world's clocks agree exactly, so little clock skew is allowed when matching echoes.
POLICY = dict(
    echo_timeout_seconds=10, retry_base_seconds=1, retry_cap_seconds=4, max_attempts=3, clock_skew_seconds=0.05
)
QUIET_TICKS = 60  # longer than any retry sequence: 3 x (10 s echo timeout + 4 s backoff)


def cxone_choices(team_codes: frozenset[str]) -> list[CxoneState]:
    settable = [CxoneState("Available"), CxoneState("Unavailable")]
    settable += [CxoneState("Unavailable", code) for code in sorted(team_codes) if code in CODES]
    return settable + list(SYSTEM_STATES)


ON_CXONE_LOGOUT = (OMNI_OFFLINE, OMNI_OFFLINE, STATUSES[0], None)  # the default, most often
ON_OMNI_LOGOUT = (
    CxoneTarget.unavailable(),
    CxoneTarget.unavailable(),
    CxoneTarget.unavailable(CODES[0]),
    CxoneTarget.logged_out(),
    None,
)
TEAMS = (1, 2)


def rules(name: str) -> st.SearchStrategy[Rule]:
    return st.builds(
        lambda publisher, subscriber, skip, on_cxone, on_omni: Rule(name, publisher, subscriber, skip, on_cxone, on_omni),
        # Mostly full tables (so that most changes travel), sometimes sparse ones (unmapped states).
        st.dictionaries(st.sampled_from(PUBLISHER_KEYS), st.sampled_from(STATUSES), min_size=2),
        st.dictionaries(st.sampled_from(STATUSES + (UNMAPPED_STATUS,)), st.sampled_from(SUBSCRIBER_TARGETS), min_size=2),
        st.booleans(),
        st.sampled_from(ON_CXONE_LOGOUT),
        st.sampled_from(ON_OMNI_LOGOUT),
    )


@st.composite
def team_codes(draw: st.DrawFn) -> frozenset[str]:
    return draw(st.frozensets(st.sampled_from(CODES))) | {"ACW"}


@st.composite
def assignments(draw: st.DrawFn, names: list[str], agents: range) -> tuple[dict[int, str], dict[int, str]]:
    """Each team's rule, and the agents whose user assignment overrides it."""
    teams = {team: draw(st.sampled_from(names)) for team in TEAMS}
    users = {a: draw(st.sampled_from(names)) for a in agents if len(names) > 1 and draw(st.integers(0, 3)) == 0}
    return teams, users


@st.composite
def worlds(draw: st.DrawFn, data: st.DataObject) -> World:
    book = [draw(rules(f"R{n}")) for n in range(1, draw(st.integers(1, 3)) + 1)]
    agents = range(1, draw(st.integers(1, 3)) + 1)
    codes = {team: draw(team_codes()) for team in TEAMS}
    links = {}
    for a in agents:
        team = draw(st.sampled_from(TEAMS))
        links[a] = AgentLink(a, f"005{a:03d}", team_id=team, team_codes=codes[team])
    teams, users = draw(assignments([rule.name for rule in book], agents))
    policy = SyncPolicy(
        conflict=draw(st.sampled_from(ConflictPolicy)),
        flap_threshold=draw(st.integers(2, 6)),
        flap_window_seconds=30,
        **POLICY,
    )
    return World(
        rulebook=RuleBook.build(book, teams=teams, users=users),
        links=links,
        policy=policy,
        cxone={a: draw(st.sampled_from(cxone_choices(links[a].team_codes))) for a in agents},
        salesforce={a: draw(st.sampled_from((*STATUSES, UNMAPPED_STATUS, None))) for a in agents},
        console_open={a: draw(st.integers(0, 9)) > 0 for a in agents},
        land_delay=lambda: timedelta(milliseconds=data.draw(st.integers(100, 2000), label="land delay")),
    )


@st.composite
def reassignments(draw: st.DrawFn, world: World) -> tuple[RuleBook, dict[int, AgentLink]]:
    """The same rules assigned anew (teams, users), and maybe an agent moved to the other team."""
    book = world.rulebook
    teams, users = draw(assignments(sorted(book.rules), range(1, len(world.links) + 1)))
    links = dict(world.links)
    codes = {link.team_id: link.team_codes for link in links.values()}
    if draw(st.booleans()):
        agent = draw(st.sampled_from(sorted(links)))
        team = TEAMS[1] if links[agent].team_id == TEAMS[0] else TEAMS[0]
        links[agent] = AgentLink(agent, links[agent].sf_user_id, team, codes.get(team) or draw(team_codes()))
    return RuleBook.build(book.rules.values(), teams=teams, users=users), links


Plan = list[tuple[list[tuple[int, Side, object, int]], Faults, "tuple[RuleBook, dict[int, AgentLink]] | None"]]


@st.composite
def steps(draw: st.DrawFn, world: World) -> Plan:
    """Ticks of people acting (distinct milliseconds) and poll faults (a side skipped at most twice in a
    row); after some ticks, the setup changes (new assignments, a team move)."""
    plan = []
    skipped = {Side.CXONE: 0, Side.SALESFORCE: 0}
    for _ in range(draw(st.integers(1, 15))):
        acts = []
        offsets = draw(st.lists(st.integers(1, 999), max_size=3, unique=True))
        for offset in offsets:
            agent = draw(st.sampled_from(sorted(world.links)))
            if draw(st.booleans()):
                # Calls that begin and end (CXone's own move back) often, else a state a person picks.
                calls = [CxoneState("InboundContact")] * 2 + [CONTACT_END] * 4
                choices = [*cxone_choices(world.links[agent].team_codes), *calls]
                acts.append((agent, Side.CXONE, draw(st.sampled_from(choices)), offset))
            else:
                value = draw(st.sampled_from((*STATUSES, UNMAPPED_STATUS, None)))
                acts.append((agent, Side.SALESFORCE, value, offset))
        faults = Faults(
            skip_cxone=skipped[Side.CXONE] < 2 and draw(st.integers(0, 3)) == 0,
            skip_salesforce=skipped[Side.SALESFORCE] < 2 and draw(st.integers(0, 3)) == 0,
            overlap=draw(st.booleans()),
            drop_salesforce=draw(st.integers(0, 9)) == 0,
            replay=draw(st.one_of(st.none(), st.integers(0, 3))),
        )
        skipped[Side.CXONE] = skipped[Side.CXONE] + 1 if faults.skip_cxone else 0
        skipped[Side.SALESFORCE] = skipped[Side.SALESFORCE] + 1 if faults.skip_salesforce else 0
        setup = draw(reassignments(world)) if draw(st.integers(0, 7)) == 0 else None
        plan.append((acts, faults, setup))
    return plan


def play(world: World, plan: Plan) -> None:
    for acts, faults, setup in plan:
        for agent, side, value, offset in acts:
            world.person(agent, side, value, offset)
        world.tick(faults)
        if setup is not None:
            world.change_setup(*setup)
            world.reconcile()
    world.reconcile()
    for _ in range(QUIET_TICKS):
        world.tick()
    assert world.settled


def check_quiet(world: World) -> None:
    if any(world.writes_per_tick[-10:]):
        raise Violation(f"the world does not settle: writes per tick {world.writes_per_tick[-15:]}")
    before = dict(world.memory)
    for _ in range(3):
        decision = world.tick()
        if decision.writes or decision.audit:
            raise Violation(f"a quiet world wrote or audited: {decision}")
    if world.memory != before:
        raise Violation("a quiet world changed memory")


def check_sides_show_the_intent(world: World) -> None:
    for agent_id in world.links:
        memory = world.memory.get(agent_id)
        intent = None if memory is None else memory.intent
        if intent is None:
            continue
        for side in Side:
            if side is Side.SALESFORCE and memory.deferred is not None and memory.deferred.at >= intent.at:
                continue  # Salesforce keeps what was requested during the contact
            target = intent.resolution(side).target
            if target is None:
                continue  # unmapped, logged out, no previous state: audited, nothing to show
            if side is Side.CXONE:
                shown = world.cxone[agent_id]
                if target.matches(shown) or shown.is_contact or shown.is_logged_out:
                    continue
            elif salesforce_shows(target, world.salesforce[agent_id]):
                continue
            command = memory.command(side)
            if command is not None and command.status in (CommandStatus.FAILED, CommandStatus.GAVE_UP):
                continue  # audited as failed / gave up (a closed console, an agent without session)
            shown = world.cxone[agent_id] if side is Side.CXONE else world.salesforce[agent_id]
            raise Violation(
                f"agent {agent_id}: {side} shows {shown!r}, "
                f"but the intent {intent.side}={intent.value!r} maps to {target!r}"
            )


def check_intent_is_current(world: World) -> None:
    """Once quiet, the change the engine syncs from is still what its own side shows, where the engine
    does not write that side itself (a system-managed CXone state, a log-out): else a later change of
    that side was taken for something it was not (e.g. the end of a contact for our echo)."""
    for agent_id in world.links:
        memory = world.memory.get(agent_id)
        intent = None if memory is None else memory.intent
        if intent is None or intent.resolution(intent.side).target is not None:
            continue  # no intent, or check_sides_show_the_intent covers that side
        if agent_id in world.ever_ambiguous:
            continue  # a person once picked what our write was about to set: either may have read as the other
        if intent.side is Side.SALESFORCE and (memory.deferred is not None or intent.value is None):
            continue  # a deferred request; or a log-out of Omni that our write, landing after it, undid
        shown = world.cxone[agent_id] if intent.side is Side.CXONE else world.salesforce[agent_id]
        last = world.log[agent_id, intent.side][-1]
        if last.by_command is not None or last.source_id in world.queued_landings:
            continue  # our own write is what that side shows now: its echo changes no intent
        if shown != intent.value:
            raise Violation(f"agent {agent_id}: the intent {intent.side}={intent.value!r} is stale: it shows {shown!r}")


def check_intents_follow_the_current_rule(world: World) -> None:
    """Every agent's intent was resolved by the rule (and team codes) the agent has now."""
    for agent_id, link in world.links.items():
        memory = world.memory.get(agent_id)
        rule = world.rulebook.rule_for(link)
        if memory is None or memory.intent is None or rule is None:
            continue
        if memory.intent.basis != resolution_basis(rule, link):
            raise Violation(f"agent {agent_id}: the intent was resolved by another rule than {rule.name!r}: {memory.intent}")


def check_latest_person_wins(world: World) -> None:
    """With newest-wins, the intent is the last change a person made, unless that change is gone or ambiguous."""
    if world.policy.conflict is not ConflictPolicy.NEWEST_WINS:
        return
    for agent_id in world.links:
        people = [
            change
            for side in Side
            for change in world.log[agent_id, side]
            if change.by_command is None and change.at > T0  # not the starting state
            and change.source_id not in world.queued_landings  # nor our write, applied as a contact ended
        ]
        if not people:
            continue
        last = max(people, key=lambda c: c.at)
        shown = world.cxone[agent_id] if last.side is Side.CXONE else world.salesforce[agent_id]
        if shown != last.value or last.source_id not in world.delivered:
            continue  # one of our earlier writes landed over it before any poll could show it
        if any(c.by_command is not None and c.at > last.at for c in world.log[agent_id, last.side]):
            continue  # a write of ours, issued before the change was seen, landed over it
        if agent_id in world.ever_ambiguous:
            continue  # a person once picked what our write was about to set: either may have read as the other
        memory = world.memory[agent_id]
        intent = memory.intent
        if intent is not None and intent.side is last.side and intent.value == last.value:
            continue
        deferred = memory.deferred
        if deferred is not None and deferred.status == last.value and world.cxone[agent_id].is_contact:
            continue
        if last.side is Side.CXONE and intent is not None and _deferred_request(world, agent_id, intent.value):
            continue  # a Salesforce request made during a contact is applied when the engine sees it end
        raise Violation(f"agent {agent_id}: the last change by a person {last} is not the intent {intent}")


def _deferred_request(world: World, agent_id: int, status) -> bool:
    """A person picked `status` in Salesforce after a CXone contact began, and CXone left the contact since.

    Polls may miss CXone states (the one ending the contact, too), so the engine may see the request
    as made during the contact and apply it at a later CXone change: that is accepted.
    """
    cxone = world.log[agent_id, Side.CXONE]
    return any(
        change.by_command is None
        and change.value == status
        and any(c.value.is_contact and c.at <= change.at for c in cxone)
        and any(c.at > change.at and not c.value.is_contact for c in cxone)
        for change in world.log[agent_id, Side.SALESFORCE]
    )


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_worlds_converge_without_ping_pong(data):
    world = data.draw(worlds(data))
    plan = data.draw(steps(world))
    play(world, plan)
    check_quiet(world)
    check_sides_show_the_intent(world)
    check_intent_is_current(world)
    check_latest_person_wins(world)
    check_intents_follow_the_current_rule(world)


@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_a_world_without_people_writes_only_the_first_sync(data):
    world = data.draw(worlds(data))
    world.tick()  # first sight of both sides
    for _ in range(QUIET_TICKS):
        decision = world.tick()
        if decision.writes and all(w.attempt == 1 for w in decision.writes):
            raise Violation(f"nobody changed anything, yet new writes: {decision.writes}")
    check_quiet(world)
    check_sides_show_the_intent(world)
