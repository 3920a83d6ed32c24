"""Reading a skip/top listing (CXone, apis.md C2) whole, with its pages in flight at once.

The API promises neither full pages nor that `top` is honoured, so a page's start is where the
records received so far end. Once the first page has said how many records there are
(`totalRecords`) and how many a page holds (its own length), the other pages are asked for at once
(at most `parallel` in flight): a 10,000-agent listing is one round trip after the first, not ten.
A page that comes short is followed by reads from where it ended up to the next page's start; one
that comes long is cut there; a listing that grew meanwhile is read on to its end. Without a
`totalRecords` the pages are read one after another, while `_links.next` says more follow.

A listing that changes while it is read can hide a record from a skip/top reader: when a record
already read moves to the end (CXone's state listing is ordered by change, apis.md C2), every record
after it moves up one place, and the one that crosses into a page already read is read by no page.
The reader therefore checks the read: every key that any page reported is in the listing, and the
listing never loses a key while it is read (a state change only moves its agent), so as many
distinct keys as the largest `totalRecords` any page reported means nothing was hidden. A read that
came short is read again and the two are joined, up to `reads` times, and reported as incomplete if
it still comes short.

A reader that can use records before the whole listing is in (a sync deciding a burst while its
later pages are still out) passes `on_page`: it gets each page's records as the page arrives, once
the first page has said that more follow (a listing of one page is only the answer). What it got
may include a record the final answer drops for a newer read of the same key.

    listing = await read_listing(fetch_page, top=1000, max_pages=1000, key=lambda item: item["agentId"])
    listing.items, listing.first.lastPollTime, listing.complete
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar


class ListingPage(Protocol):
    """One page as the client parsed it."""

    totalRecords: int | None  # noqa: N815 - the API's own name

    @property
    def items(self) -> list[Any]: ...

    def more_after(self, received: int, top: int) -> bool:
        """Whether records follow the `received` ones so far."""
        ...


PageT = TypeVar("PageT", bound=ListingPage)


class EndlessListing(Exception):
    """The listing says more follow after `max_pages` pages: the server does not end it."""

    def __init__(self, pages: int, records: int) -> None:
        super().__init__(f"{pages} pages ({records} records)")


@dataclass
class Listing(Generic[PageT]):
    """A listing's records (one per key, the latest read's), the first page read and whether the
    read was proven whole (see the module docstring)."""

    items: list[Any] = field(default_factory=list)
    first: PageT | None = None
    complete: bool = True


async def read_listing(
    fetch: Callable[[int], Awaitable[PageT | None]],
    *,
    top: int,
    max_pages: int,
    key: Callable[[Any], Hashable | None],
    parallel: int = 8,
    reads: int = 3,
    on_page: Callable[[list[Any]], None] | None = None,
) -> Listing[PageT]:
    """Every record of the listing `fetch` pages through (see the module docstring).

    `key` names a record (None for one without a usable key: it counts as a record of its own).
    `on_page` gets each page's records as it arrives, in a listing of more than one page.
    Raises `EndlessListing` when a read needs more than `max_pages` pages.
    """
    hand_out = on_page or _ignore
    listing: Listing[PageT] = Listing()
    by_key: dict[Hashable, Any] = {}
    keyless: list[Any] = []
    for _ in range(reads):
        read = await _read_once(fetch, top=top, max_pages=max_pages, parallel=parallel, on_page=hand_out)
        listing.first = listing.first or read.first
        keyless = []  # records without a key cannot be matched across reads: the latest read's stand
        for item in read.items:
            name = _key_of(key, item)
            if name is None:
                keyless.append(item)
            else:
                by_key[name] = item  # a later read's record of the same key is the newer one
        if read.pages <= 1 or read.largest_total is None:
            break  # one answer is one moment of the listing; without a total there is nothing to check
        listing.complete = len(by_key) + len(keyless) >= read.largest_total
        if listing.complete:
            break
    listing.items = [*by_key.values(), *keyless]
    return listing


def _ignore(items: list[Any]) -> None:
    pass


def _key_of(key: Callable[[Any], Hashable | None], item: Any) -> Hashable | None:
    try:
        return key(item)
    except (KeyError, TypeError, AttributeError):
        return None


@dataclass
class _Read(Generic[PageT]):
    items: list[Any] = field(default_factory=list)
    first: PageT | None = None
    pages: int = 0
    largest_total: int | None = None

    def took(self, page: PageT) -> None:
        self.pages += 1
        if page.totalRecords is not None:
            self.largest_total = max(self.largest_total or 0, page.totalRecords)


async def _read_once(
    fetch: Callable[[int], Awaitable[PageT | None]], *, top: int, max_pages: int, parallel: int,
    on_page: Callable[[list[Any]], None],
) -> _Read[PageT]:
    read: _Read[PageT] = _Read()
    first = await fetch(0)
    if first is None:
        return read
    read.first = first
    read.took(first)
    read.items += first.items
    step = len(first.items)
    if step == 0 or not first.more_after(step, top):
        return read
    on_page(first.items)
    total = first.totalRecords
    planned = math.ceil(total / step) if total is not None else 0
    starts = list(range(step, total, step)) if total is not None and 1 < planned <= max_pages else []
    if not starts:
        # No total to plan by (or one too large to plan by): page on, one after another.
        return await _read_on(fetch, read, step, first, top=top, max_pages=max_pages, on_page=on_page)
    gate = asyncio.Semaphore(parallel)
    next_starts: list[int | None] = [*starts[1:], None]

    async def at(skip: int, next_start: int | None) -> tuple[PageT, list[Any]] | None:
        """The page at `skip` and the records it keeps (a long page: cut at the next page's start)."""
        async with gate:
            page = await fetch(skip)
        if page is None:
            return None
        items = page.items if next_start is None else page.items[: next_start - skip]
        on_page(items)
        return page, items

    pages = await asyncio.gather(*(at(skip, next_start) for skip, next_start in zip(starts, next_starts, strict=True)))
    last, end = first, step
    for skip, next_start, answer in zip(starts, next_starts, pages, strict=True):
        if answer is None:
            continue
        page, items = answer
        read.took(page)
        read.items += items
        last, end = page, skip + len(items)
        if next_start is not None and items:
            # A short page: read on from where it ended up to the next page's start.
            while end < next_start:
                if read.pages >= max_pages:
                    raise EndlessListing(read.pages, len(read.items))
                filler = await fetch(end)
                if filler is None:
                    break
                read.took(filler)
                more = filler.items[: next_start - end]
                if not more:
                    break
                on_page(more)
                read.items += more
                end += len(more)
    if pages[-1] is None or not last.items or not last.more_after(end, top):
        return read
    return await _read_on(fetch, read, end, last, top=top, max_pages=max_pages, on_page=on_page)  # it grew meanwhile


async def _read_on(
    fetch: Callable[[int], Awaitable[PageT | None]], read: _Read[PageT], skip: int, last: PageT, *, top: int,
    max_pages: int, on_page: Callable[[list[Any]], None],
) -> _Read[PageT]:
    """Pages one after another from `skip`, while the last one says more follow."""
    while True:
        if read.pages >= max_pages:
            raise EndlessListing(read.pages, skip)
        page = await fetch(skip)
        if page is None:
            return read
        read.took(page)
        on_page(page.items)
        read.items += page.items
        skip += len(page.items)
        if not page.items or not page.more_after(skip, top):
            return read
