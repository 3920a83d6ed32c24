"""`connectors.paging.read_listing` against servers that page as they like (apis.md C2 promises neither
full pages nor that `top` is honoured): whatever each page holds, the listing is read whole, once."""

from __future__ import annotations

import asyncio
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

    handed: list[list[Any]] = []
    read = await read_listing(fetch, top=top, max_pages=1000, key=lambda item: item["id"], on_page=handed.append)

    assert read.items == listing
    assert read.complete
    assert asked[0] == 0 and len(asked) <= 2 * size + 2
    # Pages are handed out as they come, each record once, but only in a listing of more than one page.
    records = [item for page in handed for item in page]
    assert sorted(records, key=lambda item: item["id"]) == (listing if len(asked) > 1 else [])


async def test_each_page_is_handed_out_as_it_arrives_before_the_listing_ends() -> None:
    """A reader deciding a burst starts on the first pages while a later one is still out."""
    listing = [{"id": n} for n in range(10)]
    last_page = asyncio.Event()
    handed: list[list[int]] = []

    async def fetch(skip: int) -> Page:
        if skip == 8:
            await last_page.wait()
        return Page(listing[skip : skip + 4], len(listing))

    reading = asyncio.ensure_future(
        read_listing(fetch, top=4, max_pages=10, key=lambda item: item["id"], on_page=lambda items: handed.append(
            [item["id"] for item in items]))
    )
    async with asyncio.timeout(30):
        while len(handed) < 2:
            await asyncio.sleep(0)
    assert handed == [[0, 1, 2, 3], [4, 5, 6, 7]] and not reading.done()
    last_page.set()
    read = await reading
    assert handed[2:] == [[8, 9]] and [item["id"] for item in read.items] == list(range(10))


async def test_a_single_page_and_a_long_page_cut_are_handed_out_as_the_listing_keeps_them() -> None:
    """One page is the whole answer (nothing handed out); a page longer than planned is cut where the
    next one starts, as the listing keeps it, so no record is handed out twice."""
    listing = [{"id": n} for n in range(6)]
    handed: list[list[int]] = []

    def collect(items: list[Any]) -> None:
        handed.append([item["id"] for item in items])

    async def whole(skip: int) -> Page:
        return Page(listing[skip:], len(listing))

    await read_listing(whole, top=10, max_pages=10, key=lambda item: item["id"], on_page=collect)
    assert handed == []

    async def long_pages(skip: int) -> Page:
        return Page(listing[skip : skip + (2 if skip == 0 else 4)], len(listing))  # the first plans pages of 2

    read = await read_listing(long_pages, top=2, max_pages=10, key=lambda item: item["id"], on_page=collect)
    assert sorted(handed) == [[0, 1], [2, 3], [4, 5]]
    assert [item["id"] for item in read.items] == list(range(6))
