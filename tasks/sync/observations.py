"""The connectors' typed records -> engine `Observation`s, built the same way by the polls and by reconcile.

Source ids name each observed change so that seeing it again is recognised (poll overlap, a replay
after a crash, reconcile reading what a poll already saw):
- CXone: the record's own `source_id` (one state spell of one agent, see `CxoneAgentState`);
- Salesforce: the UserServicePresence Id of a spell, and ``{Id}:end`` for the end of a spell that
  logged the agent out of Omni (no next spell); ``{UserId}:no-spell`` when a full read finds none.

    observation = cxone_observation(record)                     # a CxoneAgentState
    for key, observation in spell_observations(spells, agents_by_user): ...   # PresenceSpells
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Container, Iterable, Mapping

from presence_sync.connectors import CxoneAgentState, PresenceSpell
from presence_sync.engine import UNKNOWN_SINCE, Observation, Side


def cxone_observation(record: CxoneAgentState) -> Observation:
    """One agent's CXone state as an observation (at = the state's startDate)."""
    return Observation(record.agent_id, Side.CXONE, record.state, record.since, record.source_id)


def spell_observations(
    spells: Iterable[PresenceSpell], agents_by_user: Mapping[str, int], known: Container[str] = (), ends: bool = True
) -> list[tuple[str, Observation]]:
    """(key, observation) for each spell start, and (with `ends`) for each end that logged the agent out of Omni.

    An ended spell followed by a later one of the same user is a status change, which the later
    spell's start already says; one with no successor in `spells` is a log-out, so ends need the whole
    read, while starts can be taken page by page. Spells of users not linked to a CXone agent are left
    out, and so are the `known` keys (a sweep reads again thousands already seen). The key is the
    observation's source id.
    """
    by_user: dict[str, list[PresenceSpell]] = defaultdict(list)
    for spell in spells:
        if spell.user_id in agents_by_user:
            by_user[spell.user_id].append(spell)
    found: list[tuple[str, Observation]] = []
    for user_id, own in by_user.items():
        agent_id = agents_by_user[user_id]
        own.sort(key=lambda s: (s.start, s.id))
        last = len(own) - 1
        for index, spell in enumerate(own):
            if spell.id not in known:
                found.append((spell.id, Observation(agent_id, Side.SALESFORCE, spell.status, spell.start, spell.id)))
            if not ends:
                continue
            # Sorted by start, so the last spell starts latest: one began after this one ended.
            followed = (index < last and own[last].start >= spell.end) if spell.end else True
            if not followed:
                key = f"{spell.id}:end"
                if key not in known:
                    found.append((key, Observation(agent_id, Side.SALESFORCE, None, spell.end, key)))  # type: ignore[arg-type]
    return found


def no_spell_observation(agent_id: int, user_id: str) -> Observation:
    """A full read found no current spell: the user is logged out of Omni, since an unknown time."""
    return Observation(agent_id, Side.SALESFORCE, None, UNKNOWN_SINCE, f"{user_id}:no-spell")
