"""`python -m bench [NAME ...] [--agents N] [--quick] [--strict] [--json FILE]` (see bench/README.md).

Exit status: 0 when every benchmark ran and its correctness checks passed (targets missed are
reported as FAIL but do not change the status unless --strict: then 1); 2 when a benchmark could
not be measured or a correctness check failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from pathlib import Path

from bench import BENCHMARKS, run_benchmark
from bench.center import BenchError
from bench.report import Report, environment_line, print_flush


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="presence-sync benchmarks: each prints its figures, an in-run baseline and the team's target.",
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"benchmarks to run (default: all): {', '.join(BENCHMARKS)}")
    parser.add_argument("--agents", type=int, default=None, help="agents in the contact center / batch (default: per benchmark)")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--store-url", default=None, metavar="URL",
        help="scale, shards: a PostgreSQL server for the PostgreSQL store (a database is created and dropped on it "
        "per run); 'none' for SQLite only (default: the local test server when it answers)",
    )
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the reports as JSON")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    if args.agents is not None and args.agents < 2:
        parser.error("--agents must be at least 2")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    names = args.names or list(BENCHMARKS)
    print_flush(f"presence-sync bench: {', '.join(names)}{' (quick)' if args.quick else ''}")
    print_flush(environment_line())
    reports: list[Report] = []
    broken: list[str] = []
    for name in names:
        print_flush("")
        started = time.monotonic()
        try:
            options = {"store_url": args.store_url} if name in ("scale", "shards") and args.store_url else {}
            report = asyncio.run(run_benchmark(name, agents=args.agents, quick=args.quick, **options))
        except BenchError as error:
            broken.append(name)
            print_flush(f"== {name}: could not be measured ({time.monotonic() - started:.1f} s): {error}")
            continue
        reports.append(report)
        print_flush(report.render())
    missed = [r.name for r in reports if not r.targets_met]
    failed = [r.name for r in reports if not r.checks_passed]
    print_flush("")
    print_flush(
        "summary: "
        + "; ".join(
            f"{r.name} targets {('PASS' if r.targets_met else 'FAIL') if r.targets else 'none set'}, "
            f"checks {'PASS' if r.checks_passed else 'FAIL'}"
            for r in reports
        )
        + "".join(f"; {name} BROKEN" for name in broken)
    )
    if args.json is not None:
        args.json.write_text(json.dumps([r.as_dict() for r in reports], indent=2, default=str), encoding="utf-8")
    if broken or failed:
        return 2
    if args.strict and missed:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
