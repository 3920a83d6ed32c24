"""API records -> engine `Observation`s, built the same way by the incremental polls and by reconcile.

Source ids name each observed change so that seeing it again is recognised (poll overlap, a replay
after a crash, reconcile reading what a poll already saw):
- CXone: ``cx:{agentId}:{agentStateId}:{outStateId}:{startDate}`` (one state spell of one agent);
- Salesforce: the UserServicePresence Id of a spell, and ``{Id}:end`` for the end of a spell that
  logged the agent out of Omni (no next spell); ``{UserId}:no-spell`` when a full read finds none.

    observation = cxone_observation(record)                       # one item of GET /agents/states
    spells = [Spell.from_record(r) for r in records]              # rows of SPELL_FIELDS
    for key, observation in spell_observations(spells, agents_by_user): ...
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from presence_sync.engine import UNKNOWN_SINCE, CxoneState, Observation, Side

SPELL_FIELDS = "Id, UserId, ServicePresenceStatus.DeveloperName, StatusStartDate, StatusEndDate, IsCurrentState"


class RecordError(ValueError):
    """An API record without the fields the sync needs (the message names the record and field)."""


def parse_api_time(text: Any, what: str) -> datetime:
    """`2026-11-25T10:00:00.000Z` or `...+0000` (both APIs' formats) -> an aware UTC datetime."""
    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError:
        raise RecordError(f"{what} is not a timestamp: {text!r}") from None
    if moment.tzinfo is None:
        raise RecordError(f"{what} has no time zone: {text!r}")
    return moment.astimezone(UTC)


def cxone_source_id(record: Mapping[str, Any]) -> str:
    return f"cx:{record['agentId']}:{record.get('agentStateId')}:{record.get('outStateId')}:{record.get('startDate')}"


def cxone_observation(record: Mapping[str, Any]) -> Observation:
    """One `agentStates[]` item of `GET /agents/states` as an observation (at = the state's startDate)."""
    try:
        agent_id = int(record["agentId"])
        at = parse_api_time(record.get("startDate") or record.get("lastUpdateTime"), f"agent {agent_id}'s startDate")
        return Observation(agent_id, Side.CXONE, CxoneState.from_api(record), at, cxone_source_id(record))
    except (KeyError, TypeError, ValueError) as error:
        raise RecordError(f"CXone agent state {dict(record)!r} can't be read: {error}") from None


@dataclass(frozen=True, slots=True)
class Spell:
    """One UserServicePresence record (apis.md S4): a status held from `start` until `end` (None: current)."""

    id: str
    user_id: str
    status: str | None
    start: datetime
    end: datetime | None
    is_current: bool

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Spell:
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
            raise RecordError(f"UserServicePresence record {record.get('Id')!r} lacks {error}") from None

    @property
    def latest(self) -> datetime:
        """The newest timestamp on the record (what a watermark advances to)."""
        return self.end if self.end is not None and self.end > self.start else self.start


def spell_observations(
    spells: Iterable[Spell], agents_by_user: Mapping[str, int]
) -> list[tuple[str, Observation]]:
    """(key, observation) for each spell start, and for each end that logged the agent out of Omni.

    An ended spell followed by a later one of the same user is a status change, which the later
    spell's start already says; one with no successor in `spells` is a log-out. Spells of users not
    linked to a CXone agent are left out. The key is the observation's source id.
    """
    by_user: dict[str, list[Spell]] = defaultdict(list)
    for spell in spells:
        if spell.user_id in agents_by_user:
            by_user[spell.user_id].append(spell)
    found: list[tuple[str, Observation]] = []
    for user_id, own in by_user.items():
        agent_id = agents_by_user[user_id]
        own.sort(key=lambda s: (s.start, s.id))
        for index, spell in enumerate(own):
            found.append((spell.id, Observation(agent_id, Side.SALESFORCE, spell.status, spell.start, spell.id)))
            followed = any(later.start >= spell.end for later in own[index + 1 :]) if spell.end else True
            if not followed:
                key = f"{spell.id}:end"
                found.append((key, Observation(agent_id, Side.SALESFORCE, None, spell.end, key)))  # type: ignore[arg-type]
    return found


def no_spell_observation(agent_id: int, user_id: str) -> Observation:
    """A full read found no current spell: the user is logged out of Omni, since an unknown time."""
    return Observation(agent_id, Side.SALESFORCE, None, UNKNOWN_SINCE, f"{user_id}:no-spell")
