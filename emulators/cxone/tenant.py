"""The in-memory CXone tenant: codes, teams, agents, their state machine, sessions and contacts.

This is the emulator's Python API: the HTTP API and the `/__emulator/` controls call these methods,
and the demo's agent simulator may call them in-process (`app.state.emulator.tenant`):

    tenant = app.state.emulator.tenant
    agent = tenant.find_agent("agent7@example.com")
    tenant.set_state(agent["agentId"], "Unavailable", "Break")   # the agent clicks Break
    tenant.contact(agent["agentId"], "offer"); tenant.contact(agent["agentId"], "accept")
    tenant.state(agent["agentId"])["agentStateName"]             # 'InboundContact'

Behaviour the real ACD shows and the emulator copies (apis.md C2, C3):
- Logging in puts an agent in the system-default Unavailable; the seed logs everyone in Available.
- A state requested (by the Agent API or by the agent) while the agent is on a contact becomes the
  agent's *next state*: accepted, applied when the contact (and its after-call work) ends.
- A request during after-call work applies at once and ends the ACW.
- Asking for the state the agent already has changes nothing (no new `startDate`).
- Every change stamps `startDate` and `lastUpdateTime`; `/agents/states?updatedSince=T` returns each
  agent whose record changed at or after T (inclusive, so the same millisecond is never lost: clients
  de-duplicate), once, with its current state. An ordered change log answers it without a scan.

Methods raise the typed errors of `errors.py`; each names what is wrong and what to do.
"""

from __future__ import annotations

import threading
import uuid
from bisect import insort
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any, Literal

from presence_sync.emulators.cxone.errors import BadRequest, Conflict, Forbidden, NotFound
from presence_sync.emulators.demo_center import DEFAULT_AGENT_COUNT, TEAMS, UNAVAILABLE_CODES, demo_agents
from presence_sync.emulators.faults import EmulatorClock, iso_z


class AgentStateId(IntEnum):
    """CXone agent states (apis.md C2)."""

    LOGGED_OUT = 0
    AVAILABLE = 1
    UNAVAILABLE = 2
    INBOUND_CONTACT = 3
    OUTBOUND_CONTACT = 4
    INBOUND_CONSULT = 5
    OUTBOUND_CONSULT = 6
    DIALER = 7
    LOGGED_IN = 8

    @property
    def api_name(self) -> str:
        """The `agentStateName` the API shows: `LoggedOut`, `InboundContact`, ..."""
        return "".join(part.capitalize() for part in self.name.split("_"))


ON_CONTACT = frozenset(
    {
        AgentStateId.INBOUND_CONTACT,
        AgentStateId.OUTBOUND_CONTACT,
        AgentStateId.INBOUND_CONSULT,
        AgentStateId.OUTBOUND_CONSULT,
        AgentStateId.DIALER,
    }
)
SETTABLE_STATES = ("Available", "Unavailable")
REFUSED = "Refused"
"""The system out-state a refused or missed contact leaves (apis.md C2, [assumed])."""

ContactAction = Literal["offer", "accept", "refuse", "end", "end_acw", "dial"]
CONTACT_ACTIONS: tuple[ContactAction, ...] = ("offer", "accept", "refuse", "end", "end_acw", "dial")

FIRST_CODE_ID = 1
FIRST_TEAM_ID = 1001
FIRST_AGENT_ID = 1_000_001
FIRST_CONTACT_ID = 600_000_000_001


@dataclass(frozen=True, slots=True)
class Presence:
    """What an agent's state record shows, apart from its timestamps."""

    state: AgentStateId
    out_state_id: int = 0
    """The unavailable code's id; 0 when no code applies (system default, Refused, other states)."""
    out_state_description: str = ""
    is_acw: bool = False
    contact_id: int | None = None


LOGGED_OUT = Presence(AgentStateId.LOGGED_OUT)
AVAILABLE = Presence(AgentStateId.AVAILABLE)
SYSTEM_UNAVAILABLE = Presence(AgentStateId.UNAVAILABLE)
REFUSED_UNAVAILABLE = Presence(AgentStateId.UNAVAILABLE, out_state_description=REFUSED)


@dataclass(slots=True)
class UnavailableCode:
    code_id: int
    name: str
    is_acw: bool
    is_active: bool = True
    agent_timeout: int = 0
    """Seconds before the ACD ends the state by itself; 0: never (the agent or simulator ends it)."""


@dataclass(slots=True)
class Team:
    team_id: int
    name: str
    is_active: bool
    code_ids: list[int]
    active_agent_ids: set[int] = field(default_factory=set)


@dataclass(slots=True)
class Agent:
    agent_id: int
    user_name: str
    first_name: str
    last_name: str
    email: str
    team_id: int
    is_active: bool
    crm_user_name: str | None
    last_updated: datetime
    presence: Presence
    state_start: datetime
    state_updated: datetime
    federated_id: str | None = None
    session_id: str | None = None
    offered_contact_id: int | None = None
    resume: Presence | None = None
    """Where the agent returns when the current contact (and its ACW) ends."""
    next_presence: Presence | None = None
    """A state requested during a contact: applied instead of `resume` when the contact ends."""


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a list: the total that matched, this page's records, and when the list was read."""

    total: int
    records: list[dict[str, Any]]
    polled_at: datetime


class ChangeLog:
    """Keys ordered by their latest change: O(1) to record a change, O(k) to read the k keys changed since T.

    Each key appears once, at the position of its newest change; stamps must never decrease (the
    tenant's `_stamp` guarantees it), so a read walks back from the newest entry and stops at the first
    older one.
    """

    def __init__(self) -> None:
        self._stamps: OrderedDict[int, datetime] = OrderedDict()

    def touch(self, key: int, stamp: datetime) -> None:
        self._stamps[key] = stamp
        self._stamps.move_to_end(key)

    def since(self, moment: datetime) -> list[int]:
        """Keys changed at or after `moment`, oldest change first."""
        keys: list[int] = []
        for key in reversed(self._stamps):
            if self._stamps[key] < moment:
                break
            keys.append(key)
        keys.reverse()
        return keys


class CxoneTenant:
    """One CXone business unit in memory, seeded with the demo contact center. Thread-safe."""

    def __init__(self, clock: EmulatorClock, agent_count: int = DEFAULT_AGENT_COUNT) -> None:
        self.clock = clock
        self._lock = threading.RLock()
        self.reset(agent_count)

    # ------------------------------------------------------------------ seeding

    def reset(self, agent_count: int = DEFAULT_AGENT_COUNT) -> None:
        """Forget everything, then seed the demo center: codes, teams, `agent_count` agents logged in Available."""
        with self._lock:
            self._codes: dict[int, UnavailableCode] = {}
            self._code_ids_by_name: dict[str, int] = {}
            self._teams: dict[int, Team] = {}
            self._team_ids_by_name: dict[str, int] = {}
            self._agents: dict[int, Agent] = {}
            self._agent_ids_by_user: dict[str, int] = {}
            self._all_agent_ids: list[int] = []
            self._active_agent_ids: list[int] = []
            self._sessions: dict[str, int] = {}
            self._agent_log = ChangeLog()
            self._state_log = ChangeLog()
            self._last_stamp = datetime.min.replace(tzinfo=UTC)
            self._next_code_id = FIRST_CODE_ID
            self._next_team_id = FIRST_TEAM_ID
            self._next_agent_id = FIRST_AGENT_ID
            self._next_contact_id = FIRST_CONTACT_ID
            for code in UNAVAILABLE_CODES:
                self.add_code(code.name, is_acw=code.is_acw)
            for team in TEAMS:
                self.add_team(team.name, team.codes)
            for spec in demo_agents(agent_count):
                agent_id = self.add_agent(spec.first_name, spec.last_name, spec.email, self._team_ids_by_name[spec.team])
                self._log_in(self._agents[agent_id], AVAILABLE)

    def add_code(self, name: str, *, is_acw: bool = False, is_active: bool = True) -> int:
        """Create an unavailable code; returns its id (`outStateId`)."""
        name = _required_name(name, "unavailable code name")
        with self._lock:
            if name in self._code_ids_by_name:
                raise Conflict(f"an unavailable code named {name!r} already exists (id {self._code_ids_by_name[name]})")
            code = UnavailableCode(self._next_code_id, name, is_acw, is_active)
            self._next_code_id += 1
            self._codes[code.code_id] = code
            self._code_ids_by_name[name] = code.code_id
            return code.code_id

    def add_team(self, name: str, code_names: Iterable[str] = (), *, is_active: bool = True) -> int:
        """Create a team that may use the named unavailable codes; returns its `teamId`."""
        name = _required_name(name, "teamName")
        with self._lock:
            if name in self._team_ids_by_name:
                raise Conflict(f"a team named {name!r} already exists (teamId {self._team_ids_by_name[name]})")
            names = list(dict.fromkeys(code_names))
            unknown = [code for code in names if code not in self._code_ids_by_name]
            if unknown:
                raise BadRequest(
                    f"unavailableCodes names codes that do not exist: {', '.join(unknown)}; "
                    f"existing codes: {', '.join(self._code_ids_by_name) or 'none'} (create them first)"
                )
            team = Team(self._next_team_id, name, is_active, [self._code_ids_by_name[code] for code in names])
            self._next_team_id += 1
            self._teams[team.team_id] = team
            self._team_ids_by_name[name] = team.team_id
            return team.team_id

    def add_agent(
        self,
        first_name: str,
        last_name: str,
        email: str,
        team_id: int,
        *,
        user_name: str | None = None,
        crm_user_name: str | None = None,
        is_active: bool = True,
    ) -> int:
        """Create an agent (logged out); `user_name` defaults to the email. Returns its `agentId`."""
        email = _required_name(email, "emailAddress")
        if "@" not in email:
            raise BadRequest(f"emailAddress {email!r} is not an email address (expected name@domain)")
        user_name = _required_name(user_name or email, "userName")
        with self._lock:
            team = self._team(team_id, field_name="teamId")
            if user_name.casefold() in self._agent_ids_by_user:
                existing = self._agent_ids_by_user[user_name.casefold()]
                raise Conflict(f"userName {user_name!r} is taken by agent {existing}; user names are unique")
            stamp = self._stamp()
            agent = Agent(
                agent_id=self._next_agent_id,
                user_name=user_name,
                first_name=first_name,
                last_name=last_name,
                email=email,
                team_id=team.team_id,
                is_active=is_active,
                crm_user_name=crm_user_name or None,
                last_updated=stamp,
                presence=LOGGED_OUT,
                state_start=stamp,
                state_updated=stamp,
            )
            self._next_agent_id += 1
            self._agents[agent.agent_id] = agent
            self._agent_ids_by_user[user_name.casefold()] = agent.agent_id
            self._all_agent_ids.append(agent.agent_id)
            if is_active:
                self._active_agent_ids.append(agent.agent_id)
                team.active_agent_ids.add(agent.agent_id)
            self._agent_log.touch(agent.agent_id, stamp)
            self._state_log.touch(agent.agent_id, stamp)
            return agent.agent_id

    def update_agent(
        self,
        agent_id: int,
        *,
        is_active: bool | None = None,
        team_id: int | None = None,
        crm_user_name: str | None = None,
    ) -> dict[str, Any]:
        """Change an agent's record (None leaves a field alone; `crm_user_name=""` clears it).

        Deactivating logs the agent out; moving it to another team keeps its current state.
        """
        with self._lock:
            agent = self._agent(agent_id)
            team = self._teams[agent.team_id]
            new_team = self._team(team_id, field_name="teamId") if team_id is not None else team
            active = agent.is_active if is_active is None else is_active
            if agent.is_active:
                team.active_agent_ids.discard(agent.agent_id)
                if not active:
                    self._active_agent_ids.remove(agent.agent_id)
                    if agent.session_id is not None:
                        self._log_out(agent)
            elif active:
                insort(self._active_agent_ids, agent.agent_id)
            if active:
                new_team.active_agent_ids.add(agent.agent_id)
            agent.is_active = active
            if crm_user_name is not None:
                agent.crm_user_name = crm_user_name or None
            stamp = self._stamp()
            agent.last_updated = stamp
            self._agent_log.touch(agent.agent_id, stamp)
            if new_team is not team:
                # The state record shows the team, so a move is a state-record change too.
                agent.team_id = new_team.team_id
                agent.state_updated = stamp
                self._state_log.touch(agent.agent_id, stamp)
            return self._agent_record(agent)

    # ------------------------------------------------------------------ the agent's own actions

    def set_session(self, agent_id: int, open: bool) -> str | None:
        """The agent logs in to (open) or out of the agent app. Returns the session id, None when closed.

        Logging in starts a new session in the system-default Unavailable; logging in again while
        logged in keeps the running session.
        """
        with self._lock:
            agent = self._agent(agent_id)
            if not open:
                if agent.session_id is not None:
                    self._log_out(agent)
                return None
            if agent.session_id is None:
                self._log_in(agent, SYSTEM_UNAVAILABLE)
            return agent.session_id

    def set_state(self, agent_id: int, state: str, reason: str | None = None) -> dict[str, Any]:
        """The agent picks a state in the agent app. Returns the agent's state record."""
        with self._lock:
            agent = self._logged_in_agent(agent_id)
            self._request(agent, self._requested_presence(agent, state, reason))
            return self._state_record(agent)

    def contact(self, agent_id: int, action: ContactAction) -> dict[str, Any]:
        """A contact's life (apis.md controls): returns the agent's state record.

        offer: routes an inbound contact to an Available agent (its state does not change yet);
        accept: the agent takes it (InboundContact); refuse: Unavailable "Refused";
        dial: the agent places an outbound call (OutboundContact) from Available or Unavailable;
        end: the contact ends: ACW (Unavailable, isACW) when the agent's team has an ACW code, else
        the next/previous state; end_acw: ACW ends: the next state if one was requested, else the
        state before the contact.
        """
        with self._lock:
            agent = self._logged_in_agent(agent_id)
            current = agent.presence
            match action:
                case "offer":
                    if current != AVAILABLE or agent.offered_contact_id is not None:
                        raise Conflict(
                            f"agent {agent_id} is {_describe(current)}"
                            f"{' with a contact already offered' if agent.offered_contact_id else ''}: "
                            "contacts are routed only to Available agents with nothing ringing"
                        )
                    agent.offered_contact_id = self._new_contact_id()
                case "accept" | "refuse":
                    contact_id = agent.offered_contact_id
                    if contact_id is None:
                        raise Conflict(f"agent {agent_id} has no contact offered: offer one first")
                    agent.offered_contact_id = None
                    if action == "refuse":
                        self._enter(agent, REFUSED_UNAVAILABLE)
                    else:
                        self._start_contact(agent, AgentStateId.INBOUND_CONTACT, contact_id)
                case "dial":
                    if current.state not in (AgentStateId.AVAILABLE, AgentStateId.UNAVAILABLE) or current.is_acw:
                        raise Conflict(
                            f"agent {agent_id} is {_describe(current)}: an outbound call starts from Available "
                            "or Unavailable (end the contact or its ACW first)"
                        )
                    self._start_contact(agent, AgentStateId.OUTBOUND_CONTACT, self._new_contact_id())
                case "end":
                    if current.state not in ON_CONTACT:
                        raise Conflict(f"agent {agent_id} is {_describe(current)}, not on a contact: nothing to end")
                    acw = self._acw_code(self._teams[agent.team_id])
                    if acw is None:
                        self._resume(agent)
                    else:
                        self._enter(agent, Presence(AgentStateId.UNAVAILABLE, acw.code_id, acw.name, is_acw=True))
                case "end_acw":
                    if not current.is_acw:
                        raise Conflict(f"agent {agent_id} is {_describe(current)}, not in after-call work")
                    self._resume(agent)
                case _:
                    raise BadRequest(f"action {action!r} is not one of {', '.join(CONTACT_ACTIONS)}")
            return self._state_record(agent)

    # ------------------------------------------------------------------ the Agent API (apis.md C3)

    def join_session(self, agent_id: int, team_scope: frozenset[int] | None = None) -> str:
        """Join the agent's running session; `team_scope`: teams the caller may act for (None: all)."""
        with self._lock:
            agent = self._agent(agent_id)
            _check_scope(agent, team_scope)
            if agent.session_id is None:
                raise Conflict(f"agent {agent_id} has no session (logged out): it must log in before it can be joined")
            return agent.session_id

    def set_session_state(self, session_id: str, state: str, reason: str | None = None) -> dict[str, Any]:
        """Set the state of the agent whose session this is (deferred while on a contact)."""
        with self._lock:
            agent_id = self._sessions.get(session_id)
            if agent_id is None:
                raise NotFound(f"session {session_id!r} has ended or never existed: join the agent's session again")
            agent = self._agents[agent_id]
            self._request(agent, self._requested_presence(agent, state, reason))
            return self._state_record(agent)

    def force_logout(self, agent_id: int, team_scope: frozenset[int] | None = None) -> None:
        """End the agent's session now (a no-op when already logged out)."""
        with self._lock:
            agent = self._agent(agent_id)
            _check_scope(agent, team_scope)
            if agent.session_id is not None:
                self._log_out(agent)

    # ------------------------------------------------------------------ reads

    def agent(self, agent_id: int) -> dict[str, Any]:
        """The agent's record as `GET /agents` shows it."""
        with self._lock:
            return self._agent_record(self._agent(agent_id))

    def find_agent(self, user_name: str) -> dict[str, Any]:
        """The agent with this user name (case-insensitive), as `GET /agents` shows it."""
        with self._lock:
            agent_id = self._agent_ids_by_user.get(user_name.casefold())
            if agent_id is None:
                raise NotFound(f"no agent has userName {user_name!r}")
            return self._agent_record(self._agents[agent_id])

    def state(self, agent_id: int) -> dict[str, Any]:
        """The agent's state record as `GET /agents/states` shows it."""
        with self._lock:
            return self._state_record(self._agent(agent_id))

    def session_of(self, agent_id: int) -> str | None:
        with self._lock:
            return self._agent(agent_id).session_id

    def agents_page(
        self, skip: int, top: int, *, updated_since: datetime | None = None, is_active: bool | None = None
    ) -> Page:
        """`GET /agents`: by agentId, or by change time (inclusive) when `updated_since` is given."""
        with self._lock:
            polled_at = self.clock.now()
            if updated_since is not None:
                ids: Sequence[int] = self._agent_log.since(updated_since)
                if is_active is not None:
                    ids = [i for i in ids if self._agents[i].is_active == is_active]
            elif is_active is None:
                ids = self._all_agent_ids
            elif is_active:
                ids = self._active_agent_ids
            else:
                ids = [i for i in self._all_agent_ids if not self._agents[i].is_active]
            return self._page(ids, skip, top, polled_at, lambda i: self._agent_record(self._agents[i]))

    def states_page(self, skip: int, top: int, *, updated_since: datetime | None = None) -> Page:
        """`GET /agents/states`: every agent's current state, or (delta) those changed at or after T."""
        with self._lock:
            polled_at = self.clock.now()
            ids = self._all_agent_ids if updated_since is None else self._state_log.since(updated_since)
            return self._page(ids, skip, top, polled_at, lambda i: self._state_record(self._agents[i]))

    def teams_page(self, skip: int, top: int, *, is_active: bool | None = None) -> Page:
        with self._lock:
            ids = [t.team_id for t in self._teams.values() if is_active is None or t.is_active == is_active]
            return self._page(ids, skip, top, self.clock.now(), lambda i: _team_record(self._teams[i]))

    def team_codes(self, team_id: int) -> list[dict[str, Any]]:
        """`GET /teams/{teamId}/unavailable-codes`."""
        with self._lock:
            team = self._team(team_id, field_name="teamId", missing=NotFound)
            return [
                {"outStateId": c.code_id, "outStateName": c.name, "isAcw": c.is_acw, "isActive": c.is_active}
                for c in (self._codes[i] for i in team.code_ids)
            ]

    def codes_page(self, skip: int, top: int, *, is_active: bool | None = None) -> Page:
        with self._lock:
            ids = [c.code_id for c in self._codes.values() if is_active is None or c.is_active == is_active]
            return self._page(ids, skip, top, self.clock.now(), lambda i: _code_record(self._codes[i]))

    # ------------------------------------------------------------------ internals

    def _page(
        self, ids: Sequence[int], skip: int, top: int, polled_at: datetime, render: Callable[[int], dict[str, Any]]
    ) -> Page:
        return Page(len(ids), [render(i) for i in ids[skip : skip + top]], polled_at)

    def _stamp(self) -> datetime:
        # Never decreasing, so the change logs stay ordered even if a test moves the clock back.
        self._last_stamp = max(self.clock.now(), self._last_stamp)
        return self._last_stamp

    def _agent(self, agent_id: int) -> Agent:
        agent = self._agents.get(agent_id)
        if agent is None:
            raise NotFound(f"no agent with agentId {agent_id}; list agents with GET /agents")
        return agent

    def _logged_in_agent(self, agent_id: int) -> Agent:
        agent = self._agent(agent_id)
        if agent.session_id is None:
            raise Conflict(f"agent {agent_id} is logged out: open its session (log in) first")
        return agent

    def _team(self, team_id: int, *, field_name: str, missing: type[BadRequest | NotFound] = BadRequest) -> Team:
        team = self._teams.get(team_id)
        if team is None:
            known = ", ".join(f"{t.team_id} ({t.name})" for t in self._teams.values())
            raise missing(f"{field_name} {team_id} is not a team; teams: {known or 'none'}")
        return team

    def _acw_code(self, team: Team) -> UnavailableCode | None:
        return next((c for c in (self._codes[i] for i in team.code_ids) if c.is_acw and c.is_active), None)

    def _requested_presence(self, agent: Agent, state: str, reason: str | None) -> Presence:
        if state not in SETTABLE_STATES:
            raise BadRequest(f"state {state!r} cannot be set: use 'Available' or 'Unavailable' (with a reason)")
        if state == "Available":
            if reason:
                raise BadRequest("a reason goes only with state 'Unavailable'; send 'Available' without one")
            return AVAILABLE
        if not reason:
            return SYSTEM_UNAVAILABLE
        team = self._teams[agent.team_id]
        usable = ", ".join(
            c.name for c in (self._codes[i] for i in team.code_ids) if c.is_active and not c.is_acw
        ) or "none"
        if reason == REFUSED:
            raise BadRequest(f"'{REFUSED}' is system-managed and cannot be set; team {team.name!r} may use: {usable}")
        code_id = self._code_ids_by_name.get(reason)
        if code_id is None or code_id not in team.code_ids:
            raise BadRequest(
                f"reason {reason!r} is not an unavailable code of agent {agent.agent_id}'s team {team.name!r}; "
                f"it may use: {usable}"
            )
        code = self._codes[code_id]
        if code.is_acw:
            raise BadRequest(
                f"{code.name!r} is an after-call-work code: system-managed, it cannot be set; "
                f"team {team.name!r} may use: {usable}"
            )
        if not code.is_active:
            raise BadRequest(f"unavailable code {code.name!r} is inactive; team {team.name!r} may use: {usable}")
        return Presence(AgentStateId.UNAVAILABLE, code.code_id, code.name)

    def _request(self, agent: Agent, presence: Presence) -> None:
        if agent.presence.state in ON_CONTACT:
            agent.next_presence = presence
            return
        # Outside a contact (after-call work included) a request applies at once and ends any ACW.
        agent.resume = agent.next_presence = None
        self._enter(agent, presence)

    def _start_contact(self, agent: Agent, state: AgentStateId, contact_id: int) -> None:
        agent.resume, agent.next_presence = agent.presence, None
        self._enter(agent, Presence(state, contact_id=contact_id))

    def _resume(self, agent: Agent) -> None:
        target = agent.next_presence or agent.resume or SYSTEM_UNAVAILABLE
        agent.resume = agent.next_presence = None
        self._enter(agent, target)

    def _enter(self, agent: Agent, presence: Presence) -> None:
        if presence.state != AgentStateId.AVAILABLE:
            agent.offered_contact_id = None  # routing only rings Available agents
        if presence == agent.presence:
            return
        stamp = self._stamp()
        agent.presence = presence
        agent.state_start = agent.state_updated = stamp
        self._state_log.touch(agent.agent_id, stamp)

    def _log_in(self, agent: Agent, presence: Presence) -> None:
        if not agent.is_active:
            raise Conflict(f"agent {agent.agent_id} is inactive and cannot log in; activate it first")
        agent.session_id = uuid.uuid4().hex
        self._sessions[agent.session_id] = agent.agent_id
        self._enter(agent, presence)

    def _log_out(self, agent: Agent) -> None:
        if agent.session_id is not None:
            del self._sessions[agent.session_id]
        agent.session_id = agent.resume = agent.next_presence = None
        self._enter(agent, LOGGED_OUT)

    def _new_contact_id(self) -> int:
        self._next_contact_id += 1
        return self._next_contact_id - 1

    def _agent_record(self, agent: Agent) -> dict[str, Any]:
        record: dict[str, Any] = {
            "agentId": agent.agent_id,
            "userName": agent.user_name,
            "firstName": agent.first_name,
            "lastName": agent.last_name,
            "emailAddress": agent.email,
            "isActive": agent.is_active,
            "teamId": agent.team_id,
            "teamName": self._teams[agent.team_id].name,
            "federatedId": agent.federated_id,
            "lastUpdated": iso_z(agent.last_updated),
        }
        if agent.crm_user_name:
            record["crmUserName"] = agent.crm_user_name
        return record

    def _state_record(self, agent: Agent) -> dict[str, Any]:
        p = agent.presence
        record: dict[str, Any] = {
            "agentId": agent.agent_id,
            "agentStateId": int(p.state),
            "agentStateName": p.state.api_name,
            "outStateId": p.out_state_id,
            "outStateDescription": p.out_state_description,
            "isACW": p.is_acw,
            "startDate": iso_z(agent.state_start),
            "lastUpdateTime": iso_z(agent.state_updated),
            "teamId": agent.team_id,
            "userName": agent.user_name,
        }
        if p.contact_id is not None:
            record["contactId"] = p.contact_id
        return record


def _team_record(team: Team) -> dict[str, Any]:
    return {
        "teamId": team.team_id,
        "teamName": team.name,
        "isActive": team.is_active,
        "agentCount": len(team.active_agent_ids),
    }


def _code_record(code: UnavailableCode) -> dict[str, Any]:
    return {
        "id": code.code_id,
        "name": code.name,
        "isActive": code.is_active,
        "isACW": code.is_acw,
        "agentTimeout": code.agent_timeout,
    }


def _check_scope(agent: Agent, team_scope: frozenset[int] | None) -> None:
    if team_scope is not None and agent.team_id not in team_scope:
        raise Forbidden(
            f"the access key's user may not act for agent {agent.agent_id} (team {agent.team_id}); "
            "give its security profile access to that team"
        )


def _describe(presence: Presence) -> str:
    name = presence.state.api_name
    if presence.is_acw:
        return f"{name} (after-call work)"
    return f"{name} ({presence.out_state_description})" if presence.out_state_description else name


def _required_name(value: str | None, field_name: str) -> str:
    text = (value or "").strip()
    if not text:
        raise BadRequest(f"{field_name} is required and must not be blank")
    return text


__all__ = [
    "AgentStateId",
    "CONTACT_ACTIONS",
    "ChangeLog",
    "ContactAction",
    "CxoneTenant",
    "Page",
    "Presence",
]
