"""Async client for NICE CXone (apis.md C2-C4): admin and real-time data, and setting agent states
through the Agent API.

    creds = CxoneCredentials(
        tenant_id="11eb0000-...", client_id="...", client_secret=SecretStr("..."),
        access_key_id="...", access_key_secret=SecretStr("..."),
    )
    async with creds.get_client() as cx:
        page = await cx.agent_states(updated_since=None)     # page.states: typed CxoneAgentState records
        await cx.set_state(agent_id=1234, state="Unavailable", reason="Break")
        page = await cx.agent_states(updated_since=page.last_poll_time)   # only the changes
        cx.session_changes()                                 # {1234: "<session id>"}: joined, to be saved

Discovery and tokens are the credentials' (connectors/cxone_auth.py, which imports this module to
build clients); the client only needs the `CxoneLogin` they provide, and keeps what it found.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal, Protocol, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, with_config
from typing_extensions import Required, TypedDict  # pydantic needs this one on Python < 3.12

from presence_sync.connectors.auth import BearerAuth, TokenGate
from presence_sync.connectors.errors import (
    AgentLoggedOut,
    ApiError,
    InvalidReason,
    MalformedResponse,
    NotFound,
    NotPermitted,
    SessionRejected,
    TransientError,
    redact,
)
from presence_sync.connectors.http import (
    DEFAULT_DEADLINE_SECONDS,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_TIMEOUT,
    HttpSession,
    Pace,
    describe_error_body,
    endpoint_of,
    parse_json,
)
from presence_sync.connectors.paging import EndlessListing, Listing, read_listing
from presence_sync.connectors.presence import CxoneAgentState, RecordError, Records
from presence_sync.connectors.retry import RetryPolicy
from presence_sync.connectors.timestamps import to_utc_iso
from presence_sync.engine import CxoneState

logger = logging.getLogger(__name__)

SYSTEM = "CXone"
SETTABLE_STATES = ("Available", "Unavailable")
SettableState = Literal["Available", "Unavailable"]


@dataclass(frozen=True, slots=True)
class CxoneEndpoints:
    """Where the tenant lives: from discovery or the configuration."""

    auth_url: str
    api_url: str
    token_url: str


@dataclass(frozen=True, slots=True)
class CxoneToken:
    """A bearer token, its refresh token, when to renew it (on the client's clock), and the tenant it is for."""

    access_token: SecretStr
    refresh_token: SecretStr | None
    refresh_at: float
    tenant_id: str | None


class CxoneLogin(Protocol):
    """What a client needs from its credentials: `CxoneCredentials` provides it."""

    @property
    def tenant_id(self) -> str | None: ...

    @property
    def api_version(self) -> str: ...

    async def discover(self, session: HttpSession) -> CxoneEndpoints:
        """The tenant's auth, API and token URLs."""
        ...

    async def fetch_token(
        self,
        session: HttpSession,
        token_url: str,
        previous: CxoneToken | None,
        *,
        clock: Callable[[], float],
        refresh_fraction: float,
    ) -> CxoneToken:
        """A new token (through `previous`'s refresh token when it has one), due for renewal at
        `refresh_fraction` of its lifetime on `clock`; AuthenticationError with the fix."""
        ...

    def secret_values(self) -> list[str]:
        """Every secret the credentials hold (for scrubbing server text)."""
        ...


@dataclass(frozen=True, slots=True)
class AgentStatesPage:
    """Agent states changed since the cursor, typed, and the cursor to send next time (`updated_since`).

    `problems` says which records could not be read (they are left out of `states`).
    `last_poll_time` is the first page's: states changing while later pages are read are seen
    again next time rather than missed. It is the cursor given in when CXone reported none.
    """

    states: list[CxoneAgentState]
    last_poll_time: str | None
    problems: list[str] = field(default_factory=list)


@with_config(ConfigDict(extra="allow"))
class _Agent(TypedDict, total=False):
    agentId: Required[int]


@with_config(ConfigDict(extra="allow"))
class _Team(TypedDict, total=False):
    teamId: Required[int | str]


@with_config(ConfigDict(extra="allow"))
class _TeamCode(TypedDict, total=False):
    outStateName: Required[str]


@with_config(ConfigDict(extra="allow"))
class _Code(TypedDict, total=False):
    name: Required[str]


class _Links(BaseModel):
    next: str | None = None


class _Listing(BaseModel):
    """One page of a skip/top listing (field names are the API's own)."""

    totalRecords: int | None = None  # noqa: N815
    links: _Links | None = Field(None, alias="_links")

    key_field: ClassVar[str]  # what names a record, for proving a read whole (connectors.paging)

    @property
    def items(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    @classmethod
    def key_of(cls, item: Any) -> Hashable | None:
        value = item.get(cls.key_field) if isinstance(item, dict) else None
        return value if isinstance(value, Hashable) else None

    def more_after(self, received: int, top: int) -> bool:
        """Whether records follow the `received` ones so far: `_links.next` or `totalRecords` says so,
        or, from a server that reports neither, this page came full."""
        if self.links is not None and self.links.next:
            return True
        if self.totalRecords is not None:
            return received < self.totalRecords
        return self.links is None and len(self.items) >= top


class _AgentsPage(_Listing):
    key_field = "agentId"
    agents: list[_Agent]

    @property
    def items(self) -> list[dict[str, Any]]:
        return list(self.agents)


class _AgentStatesPage(_Listing):
    key_field = "agentId"
    lastPollTime: str | None = None  # noqa: N815
    # Items are read one by one (CxoneAgentState.from_api): a malformed one is skipped, not the page.
    agentStates: list[Any]  # noqa: N815

    @property
    def items(self) -> list[Any]:
        return list(self.agentStates)


class _TeamsPage(_Listing):
    key_field = "teamId"
    teams: list[_Team]

    @property
    def items(self) -> list[dict[str, Any]]:
        return list(self.teams)


ListingT = TypeVar("ListingT", bound=_Listing)


class _TeamCodes(BaseModel):
    unavailableCodes: list[_TeamCode]  # noqa: N815


class _CodesPage(_Listing):
    key_field = "id"
    unavailableCodes: list[_Code]  # noqa: N815

    @property
    def items(self) -> list[dict[str, Any]]:
        return list(self.unavailableCodes)


class _JoinAnswer(BaseModel):
    sessionId: str | int  # noqa: N815


class CxoneClient:
    """Async CXone client: one connection pool, at most `max_concurrency` requests in flight.

        async with CxoneClient(creds, transport=httpx.ASGITransport(app), clock=fake_clock) as cx:
            agents = await cx.list_agents(is_active=True)

    The token is renewed ahead of expiry (at `refresh_fraction` of its lifetime, read on `clock`)
    with the refresh token, single-flight; a 401 renews once and retries.
    """

    max_pages: int = 1_000
    """A listing of more pages is refused (MalformedResponse): the server does not end it."""
    listing_reads: int = 3
    """How often a listing that changed while it was read is read again (`connectors.paging`)."""
    max_state_resends: int = 2
    """How often a state change whose answer was lost, and which did not take effect, is sent again."""

    def __init__(
        self,
        credentials: CxoneLogin,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        max_concurrency: int = 16,
        retry: RetryPolicy | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        page_size: int = 1000,
        clock: Callable[[], float] = time.monotonic,
        refresh_fraction: float = 0.8,
    ) -> None:
        if page_size < 1:
            raise ValueError(f"page_size must be at least 1; got {page_size}")
        if not 0 < refresh_fraction <= 1:
            raise ValueError(f"refresh_fraction must be in (0, 1]; got {refresh_fraction}")
        self.credentials = credentials
        self._page_size = page_size
        self._http = HttpSession(
            SYSTEM,
            transport=transport,
            max_concurrency=max_concurrency,
            retry=retry or RetryPolicy(),
            timeout=timeout,
            deadline_seconds=deadline_seconds,
            max_body_bytes=max_body_bytes,
            headers={"Accept": "application/json"},
            redact=self._redact,
        )
        self._clock = clock
        self._refresh_fraction = refresh_fraction
        self._endpoints: CxoneEndpoints | None = None
        self._endpoints_lock = asyncio.Lock()
        self._tokens: TokenGate[CxoneToken] = TokenGate(self._fetch_token, is_stale=self._is_stale)
        self._sessions: dict[int, str] = {}
        self._session_changes: dict[int, str | None] = {}
        self._joins: dict[int, asyncio.Future[str]] = {}  # joins under way, by agent
        self._incomplete_listings: set[str] = set()  # listings already warned about (connectors.paging)

    async def __aenter__(self) -> CxoneClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def pace_requests(self, pace: Pace | None) -> None:
        """Await `pace` before every API request from now on (None: no pacing beyond the retry policy)."""
        self._http.pace = pace

    # ----------------------------------------------------------------- identity

    @property
    def tenant_id(self) -> str | None:
        """The tenant from the id_token's claims once authenticated, else the configured one."""
        token = self._tokens.token
        if token is not None and token.tenant_id:
            return token.tenant_id
        return self.credentials.tenant_id

    async def endpoints(self) -> CxoneEndpoints:
        """The tenant's auth, API and token URLs (discovered once, then cached)."""
        async with self._endpoints_lock:
            if self._endpoints is None:
                self._endpoints = await self.credentials.discover(self._http)
            return self._endpoints

    async def authenticate(self) -> str | None:
        """Obtain a new token now (raising AuthenticationError subclasses with the fix); the tenant id."""
        await self._tokens.renew(self._tokens.generation)
        return self.tenant_id

    # ----------------------------------------------------------------- admin and real-time data

    async def list_agents(
        self, updated_since: datetime | str | None = None, is_active: bool | None = None
    ) -> list[dict[str, Any]]:
        """Every agent (all pages), optionally only those updated since a time, or (in)active ones."""
        params: dict[str, str] = {}
        if updated_since is not None:
            params["updatedSince"] = _timestamp(updated_since)
        if is_active is not None:
            params["isActive"] = _flag(is_active)
        return (await self._all_pages("/agents", params, _AgentsPage, "agents")).items

    async def list_teams(self) -> list[dict[str, Any]]:
        """Every active team."""
        return (await self._all_pages("/teams", {"isActive": "true"}, _TeamsPage, "teams")).items

    async def team_unavailable_codes(self, team_id: int | str) -> list[dict[str, Any]]:
        """The unavailable codes a team's agents may use (`outStateName`, `isAcw`, ...)."""
        path = f"/teams/{quote(str(team_id), safe='')}/unavailable-codes"
        response = self._checked(await self._call("GET", path))
        if response.status_code == 204:
            return []
        codes: _TeamCodes = self._parse(response, _TeamCodes, "a team's unavailable codes")
        return list(codes.unavailableCodes)

    async def list_unavailable_codes(self) -> list[dict[str, Any]]:
        """Every active unavailable code of the tenant (`name`, `isACW`, ...)."""
        return (await self._all_pages("/unavailable-codes", {"isActive": "true"}, _CodesPage, "unavailable codes")).items

    async def agent_states(
        self, updated_since: datetime | str | None = None,
        on_page: Callable[[list[CxoneAgentState]], None] | None = None,
    ) -> AgentStatesPage:
        """Agent states changed since `updated_since` (all of them when None), every page.

        Pass the previous answer's `last_poll_time` back as `updated_since` to get only deltas. With
        `on_page`, a listing of more than one page also hands each page's readable states to it as the
        page arrives (`connectors.paging`); the answer still holds every state, and says which records
        could not be read.
        """
        params = {} if updated_since is None else {"updatedSince": _timestamp(updated_since)}
        # Each raw item is read once: by id(), the item kept beside its state (so that no id is reused).
        parsed: dict[int, tuple[Any, CxoneAgentState]] = {}

        def page_in(items: list[Any]) -> None:
            states: list[CxoneAgentState] = []
            for item in items:
                try:
                    state = CxoneAgentState.from_api(item)
                except RecordError:
                    continue  # reported with the whole answer
                parsed[id(item)] = (item, state)
                states.append(state)
            if on_page is not None:
                on_page(states)

        def read(item: Mapping[str, Any]) -> CxoneAgentState:
            known = parsed.get(id(item))
            return known[1] if known is not None and known[0] is item else CxoneAgentState.from_api(item)

        listing = await self._all_pages(
            "/agents/states", params, _AgentStatesPage, "agent states", on_page=None if on_page is None else page_in
        )
        states = Records.read(listing.items, read)
        cursor = listing.first.lastPollTime if listing.first is not None and listing.first.lastPollTime else None
        if cursor is None and updated_since is not None:
            cursor = _timestamp(updated_since)
        return AgentStatesPage(states.records, cursor, states.problems)

    # ----------------------------------------------------------------- Agent API

    def adopt_sessions(self, sessions: Mapping[int, str]) -> None:
        """Reuse sessions joined earlier (e.g. by the previous sync window): no join request for them.

        An adopted session that has ended since answers 404 and is joined again, as any cached one.
        """
        self._sessions.update(sessions)

    def has_session(self, agent_id: int) -> bool:
        """Whether a session is cached for the agent (joined, or adopted from an earlier window)."""
        return agent_id in self._sessions

    def session_changes(self) -> dict[int, str | None]:
        """The sessions this client joined (their id) or found ended (None) since the last call, by agent.

        For whoever keeps sessions beyond this client (the sync saves them for its next window, which
        adopts them); each change is handed out once.
        """
        changes, self._session_changes = self._session_changes, {}
        return changes

    def _session(self, agent_id: int, session_id: str | None) -> None:
        if session_id is None:
            self._sessions.pop(agent_id, None)
        else:
            self._sessions[agent_id] = session_id
        self._session_changes[agent_id] = session_id

    async def join_session(self, agent_id: int) -> str:
        """Join the agent's running session; its id (also cached for set_state).

        One join per agent at a time: a second caller (a write while the session is being joined
        ahead) waits for the first's answer. Two joins could answer in either order, and the cache
        must not end up holding a session a later join has replaced.
        """
        pending = self._joins.get(agent_id)
        if pending is None:
            pending = self._joins[agent_id] = asyncio.ensure_future(self._join(agent_id))
            pending.add_done_callback(lambda done: self._join_done(agent_id, done))
        return await asyncio.shield(pending)

    def _join_done(self, agent_id: int, done: asyncio.Future[str]) -> None:
        if self._joins.get(agent_id) is done:
            del self._joins[agent_id]
        if not done.cancelled():
            done.exception()  # retrieved: whoever awaited it got it; nobody else must be warned

    async def _join(self, agent_id: int) -> str:
        response = await self._call("POST", "/agent-sessions/join", json={"asAgentId": agent_id}, idempotent=True)
        endpoint = endpoint_of(response)
        if response.status_code == 409:
            raise AgentLoggedOut(
                f"CXone agent {agent_id} is logged out (no session to join on {endpoint}); their state "
                "can only be set once they log in to the agent app.",
                system=SYSTEM, endpoint=endpoint, status_code=409,
            )
        if response.status_code == 403:
            raise NotPermitted(
                f"CXone refused to let the access key's user act for agent {agent_id} ({endpoint}, HTTP 403): "
                "give that user a security profile allowed to manage this agent's team (Agent API / "
                "'Agent State' permissions), or use an access key of a user who has it.",
                system=SYSTEM, endpoint=endpoint, status_code=403,
            )
        answer: _JoinAnswer = self._parse(self._checked(response), _JoinAnswer, "a session id")
        session_id = str(answer.sessionId)
        self._session(agent_id, session_id)
        return session_id

    async def set_state(self, agent_id: int, state: SettableState, reason: str | None = None) -> None:
        """Set an agent to Available, or Unavailable with an optional unavailable code name.

        Uses the agent's cached session, joining it first if needed; a 404 (the session ended)
        re-joins once and retries.

        The set-state POST is not idempotent and the API documents no idempotency key, so it is never
        blindly re-sent: when its answer is lost (a dropped connection, a deadline, a 5xx after the
        request may have been handled), the agent's state is read first and the request is sent again
        only if it did not take effect, at most `max_state_resends` times.
        """
        if state not in SETTABLE_STATES:
            raise ValueError(f"state must be one of {', '.join(SETTABLE_STATES)}; got {state!r}")
        if reason is not None and state != "Unavailable":
            raise ValueError(f"a reason (unavailable code) only goes with state 'Unavailable'; got {state!r}")
        for resend in range(self.max_state_resends + 1):
            try:
                await self._send_state(agent_id, state, reason)
                return
            except TransientError as error:
                if not error.outcome_unknown:
                    raise
                if await self._shows(agent_id, state, reason):
                    logger.info(
                        "CXone: the answer to agent %s's state change was lost, and the change had taken effect",
                        agent_id,
                    )
                    return
                if resend == self.max_state_resends:
                    raise
                logger.info(
                    "CXone: the answer to agent %s's state change was lost and it did not take effect; "
                    "sending it again", agent_id,
                )

    async def _send_state(self, agent_id: int, state: SettableState, reason: str | None) -> None:
        body: dict[str, str] = {"state": state} if reason is None else {"state": state, "reason": reason}
        for attempt in (1, 2):
            session_id = self._sessions.get(agent_id) or await self.join_session(agent_id)
            path = f"/agent-sessions/{quote(session_id, safe='')}/state"
            response = await self._call("POST", path, json=body, idempotent=False)
            if response.status_code != 404:
                break
            self._session(agent_id, None)
            if attempt == 2:
                raise NotFound(
                    f"CXone ended agent {agent_id}'s session again right after it was joined "
                    f"({endpoint_of(response)}, HTTP 404); the agent is probably logging out. Try again later.",
                    system=SYSTEM, endpoint=endpoint_of(response), status_code=404,
                )
            logger.info("CXone: the session of agent %s has ended; joining it again", agent_id)
        if response.status_code == 400 and reason is not None:
            raise InvalidReason(
                f"CXone refused unavailable code {reason!r} for agent {agent_id} ({endpoint_of(response)}, "
                f"HTTP 400): the agent's team lacks that code. Add it to the team in CXone (ACD > Teams > "
                "Unavailable codes), or map this status to a code the team has.",
                system=SYSTEM, endpoint=endpoint_of(response), status_code=400,
            )
        self._checked(response)

    async def _shows(self, agent_id: int, state: SettableState, reason: str | None) -> bool:
        """Whether CXone shows the agent in `state` (with `reason`) now. The API has no read of one
        agent's state, so this reads the listing (only after a lost answer: rare)."""
        wanted = CxoneState(state, reason)
        page = await self.agent_states()
        return any(record.agent_id == agent_id and record.state == wanted for record in page.states)

    async def logout_agent(self, agent_id: int) -> None:
        """Force the agent out of their session."""
        response = await self._call("POST", f"/agents/{agent_id}/logout", idempotent=True)
        self._checked(response)
        self._session(agent_id, None)

    # ----------------------------------------------------------------- plumbing

    async def _all_pages(
        self, path: str, params: Mapping[str, str], shape: type[ListingT], what: str,
        on_page: Callable[[list[Any]], None] | None = None,
    ) -> Listing[ListingT]:
        """Every record of a skip/top listing (apis.md C2), however many records each page holds
        (`connectors.paging`: the pages after the first in flight at once, a read proven whole;
        `on_page` gets each page's records as it arrives).

        The next link is read as a signal, never followed: the token only goes to the configured API host.
        """

        endpoint = f"GET {path}"

        async def page_at(skip: int) -> ListingT | None:
            nonlocal endpoint
            query = {**params, "skip": str(skip), "top": str(self._page_size)}
            response = self._checked(await self._call("GET", path, params=query))
            endpoint = endpoint_of(response)
            return None if response.status_code == 204 else self._parse(response, shape, f"a page of {what}")

        try:
            listing = await read_listing(
                page_at, top=self._page_size, max_pages=self.max_pages, key=shape.key_of, reads=self.listing_reads,
                on_page=on_page,
            )
        except EndlessListing as endless:
            raise MalformedResponse(
                f"CXone's listing of {what} on {endpoint} does not end: {endless} read, and it still says more "
                "follow (totalRecords / _links.next). Try again later; if it persists, report it to NICE support.",
                system=SYSTEM, endpoint=endpoint, status_code=200,
            ) from None
        if not listing.complete:
            # Once per listing and client at warning level: a server whose totalRecords is simply wrong
            # would otherwise say it at every poll.
            level = logging.DEBUG if path in self._incomplete_listings else logging.WARNING
            self._incomplete_listings.add(path)
            logger.log(
                level,
                "CXone's listing of %s on %s changed while it was read, %d reads in a row: a record may have "
                "been missed until it next changes (if this repeats while nothing changes, CXone's "
                "totalRecords disagrees with the records it lists: report it to NICE support)",
                what, endpoint, self.listing_reads,
            )
        return listing

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        idempotent: bool | None = None,
    ) -> httpx.Response:
        """An authorised API request; the response is returned whatever its status, except a lasting 401."""
        endpoints = await self.endpoints()
        url = f"{endpoints.api_url}/incontactapi/services/{self.credentials.api_version}{path}"
        auth = await BearerAuth.current(self._tokens)
        response = await self._http.request(method, url, params=params, json=json, idempotent=idempotent, auth=auth)
        if response.status_code == 401:
            raise SessionRejected(
                f"CXone refused a freshly issued token on {endpoint_of(response)} (HTTP 401): check that the "
                "access key's user is active and that the app is approved for this tenant.",
                system=SYSTEM, endpoint=endpoint_of(response), status_code=401,
            )
        return response

    async def _fetch_token(self, previous: CxoneToken | None) -> CxoneToken:
        endpoints = await self.endpoints()
        return await self.credentials.fetch_token(
            self._http, endpoints.token_url, previous, clock=self._clock, refresh_fraction=self._refresh_fraction
        )

    def _is_stale(self, token: CxoneToken) -> bool:
        """True once the token is old enough to renew ahead of its expiry."""
        return self._clock() >= token.refresh_at

    def _checked(self, response: httpx.Response) -> httpx.Response:
        """The response if 2xx, else the typed error for its status."""
        if response.is_success:
            return response
        endpoint = endpoint_of(response)
        status = response.status_code
        server_says = describe_error_body(response)
        said = f": {self._redact(server_says)}" if server_says else ""
        error_type, advice = {
            404: (NotFound, "it does not exist (wrong id, or deleted)"),
            403: (NotPermitted, "the access key's user lacks the permission; check their security profile"),
        }.get(status, (ApiError, "see CXone's message"))
        raise error_type(
            f"CXone refused {endpoint} (HTTP {status}{said}): {advice}.",
            system=SYSTEM, endpoint=endpoint, status_code=status,
        )

    def _parse(self, response: httpx.Response, shape: type[Any], expected: str) -> Any:
        return parse_json(response, shape, system=SYSTEM, endpoint=endpoint_of(response), expected=expected)

    def _redact(self, text: str) -> str:
        return redact(text, [*self.credentials.secret_values(), *self._tokens.secret_values()])


def _timestamp(value: datetime | str) -> str:
    return to_utc_iso(value) if isinstance(value, datetime) else value


def _flag(value: bool) -> str:
    return "true" if value else "false"
