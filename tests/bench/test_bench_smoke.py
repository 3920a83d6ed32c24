"""Smoke runs of the benchmarks (bench/) at tiny sizes: they run end to end and count right.

Assertions are on counts and correctness (every agent converged, one write per change, reads per
tick bounded, the report has its fields), never on wall-clock figures: those belong to
`python -m bench` on a known machine. Each run uses its own emulators on free loopback ports, its
own temporary state store and its own child processes (the sync, the bare client), so the tests are
xdist-safe. The burst and propagation runs poll
every 0.2 s instead of 1 s (`interval=`), only to be quick.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench import BENCHMARKS, run_benchmark
from bench.__main__ import main, parse_args
from bench.report import Report

ENV_FIELDS = {"cpu_count", "python", "prefect", "platform"}


def assert_common(report: Report, name: str) -> None:
    assert report.name == name
    assert ENV_FIELDS <= report.env.keys()
    assert report.env["cpu_count"] == os.cpu_count()
    assert report.env["prefect"] != "not installed"
    text = report.render()
    assert f"{os.cpu_count()} cores" in text and "prefect" in text
    failed = [check for check in report.checks if not check.passed]
    assert not failed, failed
    json.loads(report.to_json())  # machine-readable as well


async def test_engine_decides_one_write_per_mapped_change_and_nothing_for_echoes() -> None:
    report = await run_benchmark("engine", agents=40, quick=True, repeats=1)

    assert_common(report, "engine")
    figures = report.figures
    for batch in ("changes", "echoes", "replay"):
        for field in ("observations", "seconds", "obs_per_s", "baseline_obs_per_s", "relative_cost"):
            assert f"{batch}_{field}" in figures
    assert figures["changes_observations"] == 40
    assert figures["changes_writes"] == figures["changes_mapped"] > 0
    assert figures["echoes_observations"] == figures["changes_writes"]
    assert figures["echo_writes"] == 0
    assert figures["replay_writes"] == 0


async def test_burst_converges_every_linked_agent_with_constant_reads_per_tick() -> None:
    report = await run_benchmark("burst", agents=60, quick=True, interval=0.2, concurrency=(None, 4))

    assert_common(report, "burst")
    figures = report.figures
    linked = report.params["linked"]
    assert linked == 59  # agent 50 has no Salesforce user
    assert figures["max_concurrency"] == 64  # the product default, as the config leaves it
    rows = figures["rows"]
    assert set(rows) == {"64", "4"}
    assert rows["64"]["default"] and not rows["4"]["default"]
    for level, row in rows.items():
        for direction in ("cxone_to_salesforce", "salesforce_to_cxone"):
            assert row[f"{direction}_writes"] == linked, level
            assert row[f"{direction}_writes_back"] == 0, level
            assert row[f"{direction}_ticks"] >= 1
            assert f"{direction}_seconds" in row and f"{direction}_baseline_seconds" in row
            assert f"{direction}_statements" in row
        # Presence commands go 200 to a call; a CXone write is a state request, with or without a join
        # first (whether a window reuses its predecessor's sessions is the product's business).
        assert row["cxone_to_salesforce_write_requests"] == 1
        assert 1.0 <= row["salesforce_to_cxone_write_requests_per_write"] <= 2.0, level
        # One page per system once a quiet tick's poll is past the overlap (Salesforce: one more when a
        # background sweep's read falls in the tick), pages bounded by the window's spells before that,
        # and no read of any other route: reads don't grow with the agents.
        assert row["reads_per_settled_quiet_tick_max"]["cxone"] <= 1, level
        assert row["reads_per_settled_quiet_tick_max"]["salesforce"] <= 2, level
        assert row["salesforce_polls_bounded"] > 0 and row["salesforce_polls_over_bound"] == 0, level
        assert row["other_reads"] == {"cxone": 0, "salesforce": 0}, level
        assert row["statements_per_tick_max"] > 0
    # The first window ran on past the overlap: its quiet ticks there read one page per system.
    assert rows["64"]["settled_quiet_ticks"] >= 1
    quiet = rows["64"]["reads_per_settled_quiet_tick_max"]
    assert quiet["cxone"] == 1 and quiet["salesforce"] in (1, 2)  # 2: the poll's page and a sweep's
    # Every write came back as its echo; the first window's count also holds the morning publish's.
    assert rows["64"]["echoes"] == {"cxone->salesforce": 2 * linked, "salesforce->cxone": linked}
    assert rows["4"]["echoes"] == {"cxone->salesforce": linked, "salesforce->cxone": linked}
    assert figures["echoes"] == rows["64"]["echoes"]  # the flat figures are the default row's
    assert len(report.targets) == 2


async def test_propagation_times_every_change_each_way_against_its_floor() -> None:
    report = await run_benchmark("propagation", agents=12, quick=True, trials=3, interval=0.2)

    assert_common(report, "propagation")
    figures = report.figures
    for direction in ("cxone_to_salesforce", "salesforce_to_cxone"):
        assert figures[f"{direction}_count"] == 3
        assert figures[f"{direction}_writes"] == 3
        for p in ("p50", "p95", "max"):
            assert figures[f"{direction}_{p}"] is not None
            assert figures[f"{direction}_floor_{p}"] > 0
        assert figures[f"{direction}_p50_ratio"] is not None
    assert figures["missed"] == 0
    assert figures["floor_apply_salesforce"] == pytest.approx(0.150)
    for part in ("read_cxone", "read_salesforce", "write_cxone", "write_salesforce"):
        assert figures[f"floor_{part}"] > 0
    assert len(report.targets) == 2


async def test_first_output_times_the_read_only_commands_without_prefect() -> None:
    report = await run_benchmark("first-output", agents=12, quick=True)

    assert_common(report, "first-output")
    assert len(report.env["load_average"]) == 3 and "load average" in report.render()
    figures = report.figures
    assert figures["commands"] == 3  # status, audit, onboard --plan
    for command in ("status", "audit", "onboard_plan"):
        assert figures[f"no_server.{command}.first_line_seconds"] is not None
        assert figures[f"no_server.{command}.done_seconds"] > 0
    assert figures["baseline_seconds"] > 0
    assert len(report.targets) == 1


def test_the_command_line_knows_every_benchmark_and_refuses_others(capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_args([]).names == []
    assert parse_args(["engine", "--quick", "--agents", "30"]).agents == 30
    with pytest.raises(SystemExit):
        parse_args(["no-such-bench"])
    assert "unknown benchmark" in capsys.readouterr().err
    assert set(BENCHMARKS) == {"propagation", "burst", "engine", "first-output", "scale", "client", "consoles", "recovery", "shards"}


def test_the_command_line_runs_one_benchmark_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"

    status = main(["engine", "--quick", "--agents", "20", "--json", str(out)])

    assert status == 0
    printed = capsys.readouterr().out
    assert "cores (os.cpu_count())" in printed and "engine" in printed
    (saved,) = json.loads(out.read_text(encoding="utf-8"))
    assert saved["name"] == "engine" and saved["env"]["cpu_count"] == os.cpu_count()


async def test_scale_times_bursts_and_steady_changes_against_their_floors_and_measures_the_sync_process() -> None:
    # The naive design (bench/naive.py) is left out here: its Prefect server's start-up alone would double
    # the test's time; `python -m bench scale --quick` runs it.
    report = await run_benchmark(
        "scale", agents=40, quick=True, interval=0.2, steady_seconds=3, naive_changes=0, store_url="none"
    )

    assert_common(report, "scale")
    figures = report.figures
    assert set(figures["stores"]) == {"sqlite"}
    assert report.params["latency_ms"] == 50 and report.params["load_before"] and report.params["load_after"]
    for window in ("first", "later"):
        for direction in ("cxone_to_salesforce", "salesforce_to_cxone"):
            key = f"burst_{window}_{direction}"
            assert figures[f"{key}_seconds"] > 0 and figures[f"{key}_floor"] > 0
            assert figures[f"{key}_requests"] >= figures[f"{key}_minimum_requests"] >= 1
            # Where its time went: the sync's share of a core and each emulator thread's, the sync's CPU.
            assert 0 < figures[f"{key}_sync_busy"] and figures[f"{key}_sync_cpu_ms_per_agent"] > 0
            assert {name for name in figures if name.startswith(f"{key}_emulator_busy_")} == {
                f"{key}_emulator_busy_cxone", f"{key}_emulator_busy_salesforce"}
            # The emulators serve every burst: the thread whose system is read and written did some work.
            assert figures[f"{key}_emulator_busy_{'salesforce' if direction.endswith('salesforce') else 'cxone'}"] > 0
    assert any(title.startswith("where each burst's time went") for title, _, _ in report.tables)
    # Sessions were kept (joined ahead in the first window): the later burst is one request per agent.
    assert figures["burst_later_salesforce_to_cxone_requests"] == figures["burst_later_salesforce_to_cxone_minimum_requests"]
    for direction in ("cxone_to_salesforce", "salesforce_to_cxone"):
        assert figures[f"steady_{direction}_missed"] == 0 and figures[f"steady_during_burst_{direction}_missed"] == 0
        assert figures[f"floor_{direction}_p95"] > 0
    assert figures["steady_changes"] > 0 and figures["rss_max_mb"] > 0 and figures["cpu_ms_per_change"] > 0
    assert figures["salesforce_calls_per_day"] > 0
    assert "naive_speedup" not in figures
    assert any("p95" in t.text for t in report.targets) and any("RSS" in t.text for t in report.targets)


async def test_client_measures_cpu_per_request_for_each_concurrency_and_each_client() -> None:
    report = await run_benchmark("client", quick=True, requests=40)

    assert_common(report, "client")
    for level in (8, 32, 64):
        for client in ("poolset", "poolset_httpx_transport", "pools_of_8", "one_pool", "bare"):
            assert report.figures[f"c{level}_{client}_ms_per_request"] > 0
    assert len(report.targets) == 3


@pytest.mark.postgres
async def test_consoles_connects_every_console_and_every_command_comes_back_once() -> None:
    from bench.scale import DEFAULT_PG_SERVER, postgres_answers

    if not postgres_answers(DEFAULT_PG_SERVER):
        pytest.skip("the consoles bench needs PostgreSQL (its broker)")
    report = await run_benchmark("consoles", agents=20, quick=True, commands=5)

    assert_common(report, "consoles")
    assert report.params["consoles"] == 20
    for figure in ("rss_per_console_kib", "cpu_idle_percent", "push_p50_s", "poll_p50_s", "push_cpu_per_command_ms"):
        assert figure in report.figures
    [table] = report.tables
    assert [row[:2] for row in table[2]] == [["push", "5"], ["poll", "5"]]
    assert len(report.checks) == 2 and len(report.targets) == 2


async def test_first_output_prints_rows_beside_a_cpu_hog_next_to_the_idle_ones() -> None:
    report = await run_benchmark("first-output", agents=12, quick=True, oversubscribe=True, hogs=1)  # one: the suite shares the cores

    assert_common(report, "first-output")
    assert report.figures["commands"] == 6  # the three read-only commands, idle then beside the hog
    for mode in ("no_server", "no_server_cpu_hog"):
        assert report.figures[f"{mode}.status.done_seconds"] > 0
    assert any("1 busy-looping processes on" in note for note in report.notes)
    assert len(report.targets) == 1  # the target stays the idle machine's


async def test_shards_write_every_agent_once_across_shards_beside_one_process() -> None:
    report = await run_benchmark("shards", agents=40, quick=True, interval=0.2, store_url="none")

    assert_common(report, "shards")
    figures = report.figures
    linked = report.params["linked"]
    assert report.params["store"] == "sqlite" and report.params["processes"] == "1/2"
    assert report.params["load_before"] and report.params["load_after"]
    for direction in ("cxone_to_salesforce", "salesforce_to_cxone"):
        for count in (1, 2):
            run = f"{direction}_{count}p"
            assert figures[f"{run}_converged"] == linked
            assert figures[f"{run}_written"] == {"once": linked, "twice_or_more": 0, "never": 0, "not_linked": 0}
            assert figures[f"{run}_written_back"] == 0
            assert sum(figures[f"{run}_shard_writes"].values()) == linked
            # Who wrote whom, from each process's own clients: every agent by its shard alone.
            assert figures[f"{run}_by_two_shards"] == 0
            assert not any(figures[f"{run}_shard_foreign"].values()) and not any(figures[f"{run}_shard_missed"].values())
            assert figures[f"{run}_cpu_ms_per_change"] > 0 and figures[f"{run}_seconds_ratio"] > 0
        assert figures[f"{direction}_1p_seconds_ratio"] == 1.0
        # Each shard carries some of the agents, and only its own.
        shard_writes = figures[f"{direction}_2p_shard_writes"]
        assert set(shard_writes) == {"1/2", "2/2"} and all(writes > 0 for writes in shard_writes.values())
    # Sessions were joined ahead by every shard: one CXone request per agent, however many shards.
    assert figures["salesforce_to_cxone_1p_write_requests"]["cxone"] == linked
    assert figures["salesforce_to_cxone_2p_write_requests"]["cxone"] == linked
    assert figures["joins_ahead"] == {"1": linked, "2": linked}
    assert len(report.checks) == 12 and not report.targets  # 3 checks per burst and count; no target on 2 cores


def test_the_sync_child_refuses_a_shard_written_wrongly(capsys: pytest.CaptureFixture[str]) -> None:
    from bench.child import main as child_main

    with pytest.raises(SystemExit) as exited:
        child_main(["sync", "presence-sync.yaml", "--shard", "4/3"])

    assert exited.value.code == 2
    assert "--shard: shard 4/3 does not exist" in capsys.readouterr().err


def test_the_sync_childs_peak_rss_is_its_own_not_the_bench_it_was_forked_from() -> None:
    import subprocess
    import sys

    from bench.center import PROJECT_ROOT, _child_env

    ballast = bytearray(256 * 2**20)  # the bench's emulators hold every agent: a big parent
    ballast[::4096] = b"\x01" * len(range(0, len(ballast), 4096))
    answer = subprocess.run(
        [sys.executable, "-c", "from bench.child import peak_rss_kb; print(peak_rss_kb())"],
        capture_output=True, text=True, env=_child_env(), cwd=str(PROJECT_ROOT), check=True,
    )
    del ballast
    peak_mb = int(answer.stdout.strip()) / 1024
    assert 0 < peak_mb < 128, f"{peak_mb:.0f} MB: the parent's 256 MB counted as the child's"
