"""Server-side query cursors behind `nextRecordsUrl` (apis.md S2).

The first page answers at most `page_size` rows and, when more remain, a `nextRecordsUrl` of the form
`/services/data/v62.0/query/01g...-2000`. As in Salesforce, a cursor belongs to one user, expires
after 15 minutes unused, closes once its last page is read, and a user holds at most 10: opening an
eleventh drops the oldest. A dead locator answers 400 INVALID_QUERY_LOCATOR.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from presence_sync.emulators.salesforce.errors import SalesforceApiError
from presence_sync.emulators.salesforce.ids import IdFactory

CURSOR_IDLE_TIMEOUT_S = 15 * 60
MAX_CURSORS_PER_USER = 10


@dataclass
class _Cursor:
    user_id: str
    rows: Sequence[dict[str, Any]]  # shaped as each page is served (`query.QueryRows`)
    last_used: datetime


def _invalid_locator() -> SalesforceApiError:
    return SalesforceApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")


class QueryCursors:
    def __init__(self, ids: IdFactory, page_size: int) -> None:
        self._ids = ids
        self.page_size = page_size
        self._cursors: OrderedDict[str, _Cursor] = OrderedDict()

    def __len__(self) -> int:
        return len(self._cursors)

    def first_page(self, user_id: str, total_size: int, rows: Sequence[dict[str, Any]], version: str,
                   now: datetime) -> dict[str, Any]:
        if len(rows) <= self.page_size:
            return {"totalSize": total_size, "done": True, "records": list(rows)}
        locator = self._ids.next("01g")
        self._cursors[locator] = _Cursor(user_id, rows, now)
        owned = [key for key, c in self._cursors.items() if c.user_id == user_id]
        for key in owned[:-MAX_CURSORS_PER_USER]:
            del self._cursors[key]
        return self._page(locator, 0, version)

    def next_page(self, user_id: str, locator_and_offset: str, version: str, now: datetime) -> dict[str, Any]:
        locator, _, offset_text = locator_and_offset.rpartition("-")
        cursor = self._cursors.get(locator)
        if cursor is None or cursor.user_id != user_id or not offset_text.isdigit():
            raise _invalid_locator()
        if (now - cursor.last_used).total_seconds() >= CURSOR_IDLE_TIMEOUT_S:
            del self._cursors[locator]
            raise _invalid_locator()
        offset = int(offset_text)
        if not 0 < offset < len(cursor.rows):
            raise _invalid_locator()
        cursor.last_used = now
        return self._page(locator, offset, version)

    def _page(self, locator: str, offset: int, version: str) -> dict[str, Any]:
        rows = self._cursors[locator].rows
        end = offset + self.page_size
        page: dict[str, Any] = {"totalSize": len(rows), "done": end >= len(rows)}
        if end < len(rows):
            page["nextRecordsUrl"] = f"/services/data/{version}/query/{locator}-{end}"
        else:
            del self._cursors[locator]
        page["records"] = rows[offset:end]
        return page
