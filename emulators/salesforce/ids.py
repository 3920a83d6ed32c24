"""Salesforce record ids: a 3-character key prefix, 15 case-sensitive characters, a 3-character suffix.

The suffix encodes which of the first 15 characters are upper case, so the 18-character form survives
case-insensitive systems. The API returns 18-character ids and accepts either form.

    factory = IdFactory(pod="5g")
    factory.next("005")          # '0055g0000000001AAA'
    normalize_id("0055g0000000001")  # '0055g0000000001AAA'
"""

from __future__ import annotations

from collections import Counter

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_COUNTER_DIGITS = 9


def _suffix(id15: str) -> str:
    letters = []
    for start in (0, 5, 10):
        flags = 0
        for bit in range(5):
            if "A" <= id15[start + bit] <= "Z":
                flags |= 1 << bit
        letters.append(_SUFFIX_ALPHABET[flags])
    return "".join(letters)


def normalize_id(value: str) -> str | None:
    """The canonical 18-character id for a 15- or 18-character id, or None if `value` is not an id."""
    if not value.isascii() or not value.isalnum():
        return None
    if len(value) == 15:
        return value + _suffix(value)
    if len(value) == 18 and value[15:].upper() == _suffix(value[:15]):
        return value[:15] + _suffix(value[:15])
    return None


def base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, rest = divmod(number, 62)
        digits.append(BASE62[rest])
    if number:
        raise ValueError("id counter overflow")
    return "".join(reversed(digits))


class IdFactory:
    """Sequential ids per key prefix on one pod, like records created in one org."""

    def __init__(self, pod: str) -> None:
        if len(pod) != 2:
            raise ValueError("pod must be 2 characters")
        self.pod = pod
        self._counters: Counter[str] = Counter()

    def next(self, prefix: str) -> str:
        self._counters[prefix] += 1
        return self.make(prefix, self._counters[prefix])

    def make(self, prefix: str, number: int) -> str:
        id15 = f"{prefix}{self.pod}0{base62(number, _COUNTER_DIGITS)}"
        return id15 + _suffix(id15)
