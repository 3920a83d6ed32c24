"""`connectors.paging.read_listing` against servers that page as they like (apis.md C2 promises neither
full pages nor that `top` is honoured): whatever each page holds, the listing is read whole, once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from presence_sync.connectors.paging import read_listing


@dataclass
class Page:
    records: list[dict[str, int]]
    totalRecords: int | None  # noqa: N815

    @property
    def items(self) -> list[Any]:
        return self.records

    def more_after(self, received: int, top: int) -> bool:
        return received < self.totalRecords if self.totalRecords is not None else len(self.records) >= top


@settings(max_examples=200, deadline=None)
@given(
    size=st.integers(0, 60),
    top=st.integers(1, 12),
    lengths=st.lists(st.integers(1, 15), min_size=1, max_size=40),
    with_total=st.booleans(),
)
async def test_any_page_lengths_read_the_listing_whole_and_once(
    size: int, top: int, lengths: list[int], with_total: bool
) -> None:
    listing = [{"id": n} for n in range(size)]
    asked: list[int] = []

    async def fetch(skip: int) -> Page:
        asked.append(skip)
        # The server's own page length for this skip (short or long against `top`), never past the end.
        length = lengths[len(asked) % len(lengths)] if with_total else top
        return Page(listing[skip : skip + length], size if with_total else None)

    read = await read_listing(fetch, top=top, max_pages=1000, key=lambda item: item["id"])

    assert read.items == listing
    assert read.complete
    assert asked[0] == 0 and len(asked) <= 2 * size + 2
