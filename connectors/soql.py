"""Quoting helpers for building SOQL literals safely (never paste raw values into a query).

    from presence_sync.connectors.soql import quote, quote_in
    soql = (
        "SELECT Id FROM User WHERE Username IN " + quote_in(usernames)
        + " AND LastModifiedDate > " + quote(since)
    )
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import date, datetime

from presence_sync.connectors.timestamps import to_utc_iso

# SOQL's escape sequences for string literals.
_STRING_ESCAPES = str.maketrans(
    {
        "\\": "\\\\",
        "'": "\\'",
        '"': '\\"',
        "\n": "\\n",
        "\r": "\\r",
        "\t": "\\t",
        "\b": "\\b",
        "\f": "\\f",
    }
)

SoqlValue = str | bool | int | float | datetime | date | None


def quote_string(value: str) -> str:
    """`O'Brien` -> `'O\\'Brien'`."""
    return "'" + value.translate(_STRING_ESCAPES) + "'"


def quote_datetime(value: datetime) -> str:
    """An aware datetime as SOQL wants it: UTC, milliseconds, unquoted (`2026-11-25T10:00:00.000Z`)."""
    return to_utc_iso(value)


def quote(value: SoqlValue) -> str:
    """Any supported value as a SOQL literal: strings, booleans, numbers, datetimes, dates, None."""
    match value:
        case None:
            return "null"
        case bool():
            return "true" if value else "false"
        case int():
            return str(value)
        case float() if math.isfinite(value):
            return repr(value)
        case str():
            return quote_string(value)
        case datetime():
            return quote_datetime(value)
        case date():
            return value.isoformat()
    raise TypeError(
        f"can't put {value!r} ({type(value).__name__}) into SOQL; "
        "use str, bool, int, a finite float, datetime or date"
    )


def quote_in(values: Iterable[SoqlValue]) -> str:
    """`('a', 'b')` for an IN clause; an empty list is an error because `IN ()` is not valid SOQL."""
    literals = [quote(value) for value in values]
    if not literals:
        raise ValueError("an IN list needs at least one value; skip the query when there is nothing to match")
    return "(" + ", ".join(literals) + ")"
