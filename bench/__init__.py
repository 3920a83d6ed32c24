"""presence-sync benchmarks: each prints its figures with the machine they ran on, compared with a
baseline measured in the same run, and the team's target (see bench/README.md).

    python -m bench                      # all, default sizes
    python -m bench burst --agents 2000  # one
    python -m bench --quick              # small sizes, a smoke run

    report = asyncio.run(run_benchmark("engine", agents=500, quick=True))
    report.figures["decide_obs_per_s"]
"""

from __future__ import annotations

import importlib
from typing import Any

from bench.report import Report

# name -> module with `async def run(agents: int | None, quick: bool, **options) -> Report`
BENCHMARKS: dict[str, str] = {
    "propagation": "bench.propagation",
    "burst": "bench.burst",
    "engine": "bench.engine_decide",
    "first-output": "bench.first_output",
    "scale": "bench.scale",
    "client": "bench.client_cpu",
    "consoles": "bench.consoles",
    "recovery": "bench.recovery",
    "shards": "bench.shards",
}


async def run_benchmark(name: str, *, agents: int | None = None, quick: bool = False, **options: Any) -> Report:
    """Run one benchmark and return its report (figures, targets, checks)."""
    if name not in BENCHMARKS:
        raise KeyError(f"no benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
    module = importlib.import_module(BENCHMARKS[name])
    report: Report = await module.run(agents=agents, quick=quick, **options)
    return report


__all__ = ["BENCHMARKS", "Report", "run_benchmark"]
