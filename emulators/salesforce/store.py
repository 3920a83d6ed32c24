"""One object's records with the indexes that keep queries off full scans.

Hash indexes answer `=`/`IN` and sorted indexes answer ranges; strings are indexed case-folded because
SOQL compares text case-insensitively.

    table = Table(USER)
    table.insert({"Id": "005...", "Username": "a@example.com", ...})
    table.lookup("Username", "A@EXAMPLE.COM")   # {'005...'}
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from typing import Any

from presence_sync.emulators.salesforce.schema import FieldDef, ObjectSchema

Record = dict[str, Any]


def index_key(field: FieldDef, value: Any) -> Any:
    """How a value is compared: text case-insensitively, everything else as is."""
    if field.type == "string" and isinstance(value, str):
        return value.casefold()
    return value


class Table:
    def __init__(self, schema: ObjectSchema) -> None:
        self.schema = schema
        self.rows: dict[str, Record] = {}
        self._seq: dict[str, int] = {}
        self._next_seq = 0
        self._hashed = {f.name: f for f in schema.fields if f.indexed}
        self._hash: dict[str, dict[Any, set[str]]] = {name: {} for name in self._hashed}
        self._sorted: dict[str, list[tuple[Any, int, str]]] = {f.name: [] for f in schema.fields if f.ranged}
        # Sorted entries are removed lazily (a list deletion would shift the whole list): a stale entry
        # no longer matches its record and is skipped, and the list is compacted once half is stale.
        self._stale: dict[str, int] = dict.fromkeys(self._sorted, 0)

    def __len__(self) -> int:
        return len(self.rows)

    def get(self, record_id: str) -> Record | None:
        return self.rows.get(record_id)

    def insert(self, record: Record) -> None:
        record_id = record["Id"]
        self._next_seq += 1
        self._seq[record_id] = self._next_seq
        self.rows[record_id] = record
        for name in self._hash:
            self._index(name, record_id, record.get(name))
        for name in self._sorted:
            self._index_sorted(name, record_id, record.get(name))

    def update(self, record_id: str, changes: Record) -> Record:
        record = self.rows[record_id]
        for name, value in changes.items():
            old = record.get(name)
            record[name] = value
            if name in self._hash:
                self._unindex(name, record_id, old)
                self._index(name, record_id, value)
            if name in self._sorted:
                self._unindex_sorted(name, old)
                self._index_sorted(name, record_id, value)
        return record

    def delete(self, record_id: str) -> Record:
        record = self.rows.pop(record_id)
        for name in self._hash:
            self._unindex(name, record_id, record.get(name))
        for name in self._sorted:
            self._unindex_sorted(name, record.get(name))
        del self._seq[record_id]
        return record

    def lookup(self, field_name: str, value: Any) -> set[str]:
        """Ids whose field equals `value` (None finds the nulls); only for indexed fields.

        The set is the index's own: read it, never change it.
        """
        field = self.schema.field(field_name)
        assert field is not None and field.indexed, field_name
        return self._hash[field.name].get(index_key(field, value), set())

    def lookup_one(self, field_name: str, value: Any) -> Record | None:
        ids = self.lookup(field_name, value)
        return self.rows[min(ids, key=self._seq.__getitem__)] if ids else None

    def range(self, field_name: str, low: Any = None, low_inclusive: bool = False, high: Any = None,
              high_inclusive: bool = False) -> list[str]:
        """Ids whose (non-null) field lies between the bounds; a None bound is open."""
        entries = self._sorted[field_name]
        start = 0
        if low is not None:
            probe = (low, 0, "") if low_inclusive else (low, float("inf"), "")
            start = bisect.bisect_left(entries, probe)
        end = len(entries)
        if high is not None:
            probe = (high, float("inf"), "") if high_inclusive else (high, 0, "")
            end = bisect.bisect_left(entries, probe)
        found = (
            record_id for value, _, record_id in entries[start:end]
            if record_id in self.rows and self.rows[record_id][field_name] == value
        )
        return list(dict.fromkeys(found))

    def in_insertion_order(self, ids: Iterable[str]) -> list[str]:
        return sorted(ids, key=self._seq.__getitem__)

    def all_ids(self) -> list[str]:
        return list(self.rows)  # dicts keep insertion order

    def _index(self, name: str, record_id: str, value: Any) -> None:
        self._hash[name].setdefault(index_key(self._hashed[name], value), set()).add(record_id)

    def _unindex(self, name: str, record_id: str, value: Any) -> None:
        key = index_key(self._hashed[name], value)
        bucket = self._hash[name].get(key)
        if bucket is not None:
            bucket.discard(record_id)
            if not bucket:
                del self._hash[name][key]

    def _index_sorted(self, name: str, record_id: str, value: Any) -> None:
        if value is not None:
            bisect.insort(self._sorted[name], (value, self._seq[record_id], record_id))

    def _unindex_sorted(self, name: str, old_value: Any) -> None:
        """Count the entry of `old_value` as stale (call after the record changed or left)."""
        if old_value is None:
            return
        self._stale[name] += 1
        entries = self._sorted[name]
        if self._stale[name] * 2 > len(entries):
            live = (e for e in entries if e[2] in self.rows and self.rows[e[2]][name] == e[0])
            entries[:] = list(dict.fromkeys(live))
            self._stale[name] = 0
