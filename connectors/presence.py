"""What an agent shows now, typed: one record type per system, read from its API here and nowhere else.

- CXone: `CxoneAgentState`, one item of `GET /agents/states` (apis.md C2): the agent's `CxoneState`
  since its `startDate`. `CxoneClient.agent_states` hands these out.
- Salesforce: `PresenceSpell`, one `UserServicePresence` record (apis.md S4): a status held from
  `start` until `end` (None: still held). `spell_pages` and `current_spells` read them.

Records are read one by one: a record that can't be read is a problem (a plain-words line naming the
record and the field) and is skipped; the rest are used.

    page = await cx.agent_states(updated_since=cursor)      # page.states: list[CxoneAgentState]
    spells = await current_spells(sf, user_id="005...")      # spells.records: list[PresenceSpell]
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from presence_sync.connectors.salesforce import SalesforceClient
from presence_sync.connectors.soql import quote, quote_string
from presence_sync.engine import CxoneState, StateError
from presence_sync.engine.audit import OFFLINE

SPELL_FIELDS = "Id, UserId, ServicePresenceStatus.DeveloperName, StatusStartDate, StatusEndDate, IsCurrentState"

RecordT = TypeVar("RecordT")


class RecordError(ValueError):
    """An API record without the fields the sync needs (the message names the record and the field)."""


def _excerpt(value: Any, limit: int = 60) -> str:
    """A value as a message may quote it: repr, shortened."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


def parse_api_time(text: Any, what: str) -> datetime:
    """`2026-11-25T10:00:00.000Z` or `...+0000` (both APIs' formats) -> an aware UTC datetime."""
    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError:
        raise RecordError(f"{what} is not a timestamp: {text!r}") from None
    if moment.tzinfo is None:
        raise RecordError(f"{what} has no time zone: {text!r}")
    return moment.astimezone(UTC)


@dataclass
class Records(Generic[RecordT]):
    """The records that could be read, and a line per record that could not (skipped)."""

    records: list[RecordT] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, raw: Iterable[Mapping[str, Any]], parse: Callable[[Mapping[str, Any]], RecordT]) -> Records[RecordT]:
        records = cls()
        for item in raw:
            try:
                records.records.append(parse(item))
            except RecordError as error:
                records.problems.append(str(error))
        return records

    def extend(self, other: Records[RecordT]) -> None:
        self.records += other.records
        self.problems += other.problems


# --- CXone ----------------------------------------------------------------------------------------------


def cxone_state_from_api(item: Mapping[str, Any]) -> CxoneState:
    """The state fields of one `agentStates[]` item: name (or id), unavailable code, ACW flag.

    >>> cxone_state_from_api({"agentStateId": 2, "outStateDescription": "ACW", "isACW": True}).key
    'ACW'
    """
    name = item.get("agentStateName")
    if name in (None, ""):
        name = item.get("agentStateId")
    if name in (None, ""):
        raise RecordError(
            "CXone agent state has neither 'agentStateName' nor 'agentStateId'; "
            "pass an item of the 'agentStates' list from GET /agents/states"
        )
    try:
        return CxoneState(name, item.get("outStateDescription"), bool(item.get("isACW", False)))
    except StateError as error:
        raise RecordError(str(error)) from None


@dataclass(frozen=True, slots=True)
class CxoneAgentState:
    """One agent's CXone state, as one item of `GET /agents/states` says it (apis.md C2).

    `since` is the state's `startDate`; `source_id` names this state spell of this agent
    (``cx:{agentId}:{agentStateId}:{outStateId}:{startDate}``), so that reading it again is recognised.

        record = CxoneAgentState.from_api(item)
        record.agent_id, record.state.key, record.since
    """

    agent_id: int
    state: CxoneState
    since: datetime
    source_id: str

    @classmethod
    def from_api(cls, item: Mapping[str, Any]) -> CxoneAgentState:
        """`RecordError` naming the record (its agent when known) when it lacks what the sync needs."""
        if not isinstance(item, Mapping):
            raise RecordError(f"a CXone agent state is not an object but {type(item).__name__} {_excerpt(item)}")
        try:
            agent_id = int(item["agentId"])
            since = parse_api_time(item.get("startDate") or item.get("lastUpdateTime"), f"agent {agent_id}'s startDate")
            source_id = f"cx:{item['agentId']}:{item.get('agentStateId')}:{item.get('outStateId')}:{item.get('startDate')}"
            return cls(agent_id, cxone_state_from_api(item), since, source_id)
        except (KeyError, TypeError, ValueError) as error:
            agent = item.get("agentId")
            whose = f"of agent {_excerpt(agent)}" if agent is not None else "without an agentId"
            raise RecordError(f"the CXone agent state {whose} can't be read: {error}") from None


# --- Salesforce -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PresenceSpell:
    """One UserServicePresence record (apis.md S4): `status` held from `start` until `end` (None: current).

        spell = PresenceSpell.from_record(row)      # a row of SPELL_FIELDS
        spell.status, spell.label, spell.latest
    """

    id: str
    user_id: str
    status: str | None
    start: datetime
    end: datetime | None
    is_current: bool

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> PresenceSpell:
        """`RecordError` naming the record when it lacks what the sync needs."""
        if not isinstance(record, Mapping):
            raise RecordError(f"a UserServicePresence record is not an object but {type(record).__name__} {_excerpt(record)}")
        try:
            spell_id = str(record["Id"])
            end = record.get("StatusEndDate")
            status = (record.get("ServicePresenceStatus") or {}).get("DeveloperName")
            return cls(
                id=spell_id,
                user_id=str(record["UserId"]),
                status=None if status is None else str(status),
                start=parse_api_time(record["StatusStartDate"], f"spell {spell_id}'s StatusStartDate"),
                end=None if end is None else parse_api_time(end, f"spell {spell_id}'s StatusEndDate"),
                is_current=bool(record.get("IsCurrentState")),
            )
        except (KeyError, TypeError, AttributeError) as error:
            raise RecordError(
                f"UserServicePresence record {_excerpt(record.get('Id'))} (user {_excerpt(record.get('UserId'))}) "
                f"can't be read: {type(error).__name__} {error}"
            ) from None

    @property
    def latest(self) -> datetime:
        """The newest timestamp on the record (what a watermark advances to)."""
        return self.end if self.end is not None and self.end > self.start else self.start

    @property
    def label(self) -> str:
        return self.status or OFFLINE


def spell_query(
    changed_after: datetime | None = None, *, user_id: str | None = None, user_ids: Iterable[str] = ()
) -> str:
    """Spells that started or ended after `changed_after`, the current ones first; without it, the
    current ones (of `user_id`, or of `user_ids`). Oldest start first, after that.

    Current first: the spells a burst ended started before the watermark, so ordered by start alone
    they fill a read's first pages, and what agents did just before the burst came on its last; a poll
    hands out each page's starts as the page arrives (tasks/sync/sources.py)."""
    order = "StatusStartDate"
    if changed_after is not None:
        since = quote(changed_after)
        where = f"StatusStartDate > {since} OR StatusEndDate > {since}"
        order = "IsCurrentState DESC, StatusStartDate"
    else:
        where = "IsCurrentState = true"
        users = sorted({*user_ids, *([user_id] if user_id is not None else [])})
        if len(users) == 1:
            where = f"UserId = {quote_string(users[0])} AND {where}"
        elif users:
            where = f"UserId IN ({', '.join(quote_string(user) for user in users)}) AND {where}"
    return f"SELECT {SPELL_FIELDS} FROM UserServicePresence WHERE {where} ORDER BY {order}"


async def spell_pages(salesforce: SalesforceClient, changed_after: datetime | None) -> AsyncIterator[Records[PresenceSpell]]:
    """The spells of `spell_query(changed_after)`, a result page at a time (one API request each)."""
    async for page in salesforce.query_pages(spell_query(changed_after)):
        yield Records.read(page, PresenceSpell.from_record)


async def current_spells(
    salesforce: SalesforceClient, user_id: str | None = None, *, user_ids: Iterable[str] = ()
) -> Records[PresenceSpell]:
    """Every user's current spell (or one user's, or those of `user_ids`), oldest first: who is in
    which Omni status now."""
    spells: Records[PresenceSpell] = Records()
    async for page in salesforce.query_pages(spell_query(user_id=user_id, user_ids=user_ids)):
        spells.extend(Records.read(page, PresenceSpell.from_record))
    return spells


async def current_spell(salesforce: SalesforceClient, user_id: str) -> PresenceSpell | None:
    """The user's current spell (the newest, should a read catch two), or None: logged out of Omni."""
    spells = (await current_spells(salesforce, user_id)).records
    return spells[-1] if spells else None
