"""Shards: every agent in exactly one shard of a count, by a rule that never changes; names and syntax."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from presence_sync.engine import Shard, ShardError
from presence_sync.engine.shards import ALL, shard_from_name, shard_index, shard_of

KNOWN = [1, 3, 2]  # zlib.crc32(b"1000001") % 3 + 1, ...: written down, so a change of rule is caught
agent_ids = st.integers(min_value=1, max_value=2**53)
counts = st.integers(min_value=1, max_value=64)


@given(agent_id=agent_ids, count=counts)
def test_every_agent_is_in_exactly_one_shard_of_a_count(agent_id: int, count: int) -> None:
    owners = [shard for shard in Shard(1, count).siblings() if shard.owns(agent_id)]
    assert owners == [shard_of(agent_id, count)]
    assert ALL.owns(agent_id)


@given(agent_id=agent_ids, count=counts)
def test_the_rule_is_the_agent_ids_crc32_whether_given_as_int_or_text(agent_id: int, count: int) -> None:
    assert shard_index(agent_id, count) == shard_index(str(agent_id), count)
    assert 1 <= shard_index(agent_id, count) <= count


def test_the_rule_is_stable_across_processes_and_known_values() -> None:
    # Python's hash() of a str changes per process (PYTHONHASHSEED); the shard must not.
    code = "from presence_sync.engine.shards import shard_index; print([shard_index(a, 7) for a in range(1000000, 1000020)])"
    runs = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       env={"PYTHONHASHSEED": seed}).stdout
        for seed in ("1", "2")
    }
    assert runs == {str([shard_index(a, 7) for a in range(1000000, 1000020)]) + "\n"}
    assert [shard_index(a, 3) for a in (1000001, 1000002, 1000003)] == KNOWN


def test_agents_spread_over_the_shards() -> None:
    per_shard = [sum(Shard(i, 4).owns(a) for a in range(1000000, 1004000)) for i in range(1, 5)]
    assert sum(per_shard) == 4000
    assert min(per_shard) > 800  # about 1000 each


@pytest.mark.parametrize(("text", "shard"), [("2/3", Shard(2, 3)), (" 1 / 1 ", ALL), (None, ALL), ("", ALL), ("3/3", Shard(3, 3))])
def test_parse(text: str | None, shard: Shard) -> None:
    assert Shard.parse(text) == shard


@pytest.mark.parametrize(
    ("text", "says"),
    [("2", "not written i/n"), ("two/3", "not written i/n"), ("0/3", "counts from 1"), ("4/3", "1/3 ... 3/3"),
     ("1/0", "count must be 1 to"), ("-1/2", "not written i/n")],
)
def test_bad_shards_say_how_to_write_one(text: str, says: str) -> None:
    with pytest.raises(ShardError, match=says):
        Shard.parse(text)


def test_names_unchanged_for_the_unsharded_sync() -> None:
    assert ALL.lease_name == "sync" and ALL.cursor("cxone") == "cxone" and str(ALL) == "1/1"
    two = Shard.parse("2/3")
    assert (two.lease_name, two.cursor("cxone"), str(two)) == ("sync:2/3", "cxone:2/3", "2/3")


@given(index=st.integers(1, 64), extra=st.integers(0, 64))
def test_lease_names_read_back(index: int, extra: int) -> None:
    shard = Shard(index, index + extra)
    assert shard_from_name(shard.lease_name, "sync") == shard
    assert shard_from_name("syncx", "sync") is None and shard_from_name("sync:x", "sync") is None
