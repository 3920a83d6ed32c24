"""Agents' Omni-Channel presence as UserServicePresence spells (apis.md S4).

A status change ends the current spell (StatusEndDate, IsCurrentState=false) and starts a new one;
logging out ends it without starting another; choosing the status one is already in changes nothing.

    book = PresenceBook(org)
    book.change(user_id, status_id, now)   # True: a spell ended and/or started
    book.change(user_id, None, now)        # logs out of Omni
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from presence_sync.emulators.salesforce.org import SalesforceOrg
from presence_sync.emulators.salesforce.schema import USER_SERVICE_PRESENCE


@dataclass
class _UserPresence:
    status_id: str | None = None
    spell_id: str | None = None


class PresenceBook:
    def __init__(self, org: SalesforceOrg) -> None:
        self.org = org
        self._by_user: dict[str, _UserPresence] = {}

    def current_status_id(self, user_id: str) -> str | None:
        presence = self._by_user.get(user_id)
        return presence.status_id if presence else None

    def change(self, user_id: str, status_id: str | None, now: datetime) -> bool:
        """Move `user_id` to `status_id` (None: log out of Omni). False when nothing changed."""
        presence = self._by_user.setdefault(user_id, _UserPresence())
        if presence.status_id == status_id:
            return False
        spells = self.org.table(USER_SERVICE_PRESENCE.name)
        current = spells.get(presence.spell_id) if presence.spell_id else None
        # The spell may have been deleted through the API; then there is nothing to end.
        if current is not None:
            duration = (now - current["StatusStartDate"]).total_seconds()
            self.org.update(USER_SERVICE_PRESENCE, current["Id"], {
                "StatusEndDate": now, "IsCurrentState": False, "StatusDuration": duration,
            }, now=now)
        presence.spell_id = None
        if status_id is not None:
            spell = self.org.insert(USER_SERVICE_PRESENCE, {
                "UserId": user_id,
                "ServicePresenceStatusId": status_id,
                "StatusStartDate": now,
                "IsCurrentState": True,
                "IsAway": not self.org.status_is_online(status_id),
            }, now=now)
            presence.spell_id = spell["Id"]
        presence.status_id = status_id
        return True
