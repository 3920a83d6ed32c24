"""SOQL literal quoting: values can never break out of their literal."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from presence_sync.connectors.soql import quote, quote_datetime, quote_in, quote_string

_UNESCAPE = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f"}


def read_soql_string(literal: str) -> tuple[str, str]:
    """Parse one SOQL string literal from the start of `literal`; (its value, what follows it)."""
    assert literal[0] == "'"
    value, index = [], 1
    while literal[index] != "'":
        if literal[index] == "\\":
            value.append(_UNESCAPE[literal[index + 1]])
            index += 2
        else:
            value.append(literal[index])
            index += 1
    return "".join(value), literal[index + 1 :]


@given(st.text())
def test_any_string_round_trips_and_ends_exactly_at_its_closing_quote(text: str) -> None:
    value, rest = read_soql_string(quote_string(text))
    assert value == text
    assert rest == ""


def test_injection_attempt_stays_inside_the_literal() -> None:
    literal = quote_string("x' OR Name != '")
    assert literal == "'x\\' OR Name != \\''"


def test_datetimes_are_utc_with_milliseconds() -> None:
    paris = timezone(timedelta(hours=1))
    moment = datetime(2026, 11, 25, 11, 0, 0, 123456, tzinfo=paris)
    assert quote_datetime(moment) == "2026-11-25T10:00:00.123Z"


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        quote_datetime(datetime(2026, 11, 25, 10, 0))


@pytest.mark.parametrize(
    ("value", "literal"),
    [(None, "null"), (True, "true"), (False, "false"), (42, "42"), (1.5, "1.5"), ("a", "'a'"),
     (date(2026, 11, 25), "2026-11-25"), (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "2026-01-02T03:04:05.000Z")],
)
def test_quote_dispatches_on_type(value: object, literal: str) -> None:
    assert quote(value) == literal  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [float("nan"), object(), b"bytes"])
def test_unsupported_values_are_refused(value: object) -> None:
    with pytest.raises(TypeError, match="SOQL"):
        quote(value)  # type: ignore[arg-type]


def test_in_list() -> None:
    assert quote_in(["a'b", "c"]) == "('a\\'b', 'c')"
    assert quote_in(iter([1, 2])) == "(1, 2)"


def test_empty_in_list_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one value"):
        quote_in([])
