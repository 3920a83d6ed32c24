"""Shards: which agents one sync run owns, by a stable rule, and the names of its lease and cursors.

A shard is written `i/n` (1-based): shard 2 of 3 is "2/3". An agent belongs to exactly one shard of a
count, by the CRC-32 of its CXone agent id (the same on every machine and Python run, unlike `hash()`).
"1/1" is the unsharded sync: its lease and cursor names are the plain ones ("sync", "cxone", ...), so a
store written before shards existed carries on unchanged.

    shard = Shard.parse("2/3")
    shard.owns(1000007)            # True for about a third of the agents
    shard.lease_name               # "sync:2/3"
    shard.cursor("cxone")          # "cxone:2/3"
    str(shard)                     # "2/3"
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

from presence_sync.engine.errors import EngineError

SYNC_LEASE = "sync"
MAX_SHARDS = 1024  # far beyond what one contact center needs; a typo like "2/30000" is caught
_SYNTAX = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


class ShardError(EngineError):
    """A shard written wrongly (the message shows the syntax)."""


@dataclass(frozen=True, slots=True, order=True)
class Shard:
    """Shard `index` of `count` (1-based); `ALL` (1/1) is the unsharded sync."""

    index: int = 1
    count: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_SHARDS:
            raise ShardError(f"a shard count must be 1 to {MAX_SHARDS}, got {self.count}: write the shard as i/n, e.g. 2/3")
        if not 1 <= self.index <= self.count:
            raise ShardError(
                f"shard {self.index}/{self.count} does not exist: the index counts from 1 to the count "
                f"(1/{self.count} ... {self.count}/{self.count})"
            )

    @classmethod
    def parse(cls, text: str | None) -> Shard:
        """`"2/3"` -> Shard(2, 3); None or "" -> the unsharded `ALL` (1/1)."""
        if text is None or not str(text).strip():
            return ALL
        match = _SYNTAX.match(str(text))
        if match is None:
            raise ShardError(
                f"shard {text!r} is not written i/n: give this run's shard and the number of shards, "
                "e.g. 2/3 for the second of three (1/1, or none, syncs every agent)"
            )
        return cls(int(match[1]), int(match[2]))

    @property
    def sharded(self) -> bool:
        return self.count > 1

    def owns(self, agent_id: int | str) -> bool:
        """Whether this shard syncs the agent (exactly one shard of a count does)."""
        return self.count == 1 or shard_index(agent_id, self.count) == self.index

    @property
    def lease_name(self) -> str:
        """"sync" for 1/1 (as before shards), else "sync:i/n"."""
        return self.cursor(SYNC_LEASE)

    def cursor(self, name: str) -> str:
        """This shard's name for a per-shard cursor: `name` for 1/1, else `name:i/n`."""
        return f"{name}:{self}" if self.sharded else name

    def siblings(self) -> list[Shard]:
        """Every shard of this count, 1/n first."""
        return [Shard(index, self.count) for index in range(1, self.count + 1)]

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


ALL = Shard(1, 1)


def shard_index(agent_id: int | str, count: int) -> int:
    """The 1-based shard of `count` that owns the agent: CRC-32 of its id, so stable everywhere."""
    return zlib.crc32(str(agent_id).encode()) % count + 1


def shard_of(agent_id: int | str, count: int) -> Shard:
    return Shard(shard_index(agent_id, count), count)


def shard_from_name(name: str, base: str) -> Shard | None:
    """The shard a lease or cursor name belongs to ("sync:2/3" -> 2/3, "sync" -> 1/1); None if it is
    another name altogether."""
    if name == base:
        return ALL
    prefix = f"{base}:"
    if not name.startswith(prefix):
        return None
    try:
        return Shard.parse(name[len(prefix):])
    except ShardError:
        return None


__all__ = ["ALL", "MAX_SHARDS", "SYNC_LEASE", "Shard", "ShardError", "shard_from_name", "shard_index", "shard_of"]
