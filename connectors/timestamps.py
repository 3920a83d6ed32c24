"""The one timestamp format both APIs accept: UTC, millisecond precision, `Z` suffix."""

from __future__ import annotations

from datetime import UTC, datetime


def to_utc_iso(value: datetime) -> str:
    """`2026-11-25T10:00:00.000Z` from an aware datetime; naive ones are refused (ambiguous)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"timestamps must be timezone-aware (got naive {value.isoformat()}); "
            "use datetime.now(UTC) or attach a tzinfo"
        )
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
