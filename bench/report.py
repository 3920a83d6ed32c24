"""What a benchmark hands back: its figures, its in-run baseline, the team's target and correctness checks.

Every report prints the machine it ran on (core count, load average, Python, prefect), because a figure
without its machine is not a figure. A target is compared with a baseline measured in the same run, never
with a number from another machine.

    report = Report("engine", "decide() throughput", params={"agents": 10_000})
    report.figure("decide", 61_000.0, "obs/s")
    report.target("decide within 200x of the dict-lookup loop", passed=True, detail="41x")
    report.check("every observation decided", passed=True)
    print(report.render())
"""

from __future__ import annotations

import json
import functools
import os
import time
import platform
import sys
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any


def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


@functools.lru_cache(maxsize=1)
def python_step_ns() -> float:
    """Nanoseconds per step of a fixed pure-Python loop (best of 3; ~0.3 s): how fast this machine runs
    Python. CPU figures (ms per change, per request) scale with it, so a figure brought from another
    machine says something only next to this one."""
    steps = 1_000_000

    def loop() -> float:
        started, total = time.process_time(), 0
        for i in range(steps):
            total += i
        return time.process_time() - started

    return round(min(loop() for _ in range(3)) * 1e9 / steps, 1)


def environment() -> dict[str, Any]:
    """The machine and the versions the figures were measured on."""
    return {
        "cpu_count": os.cpu_count(),
        "python_step_ns": python_step_ns(),
        "load_average": [round(load, 2) for load in os.getloadavg()],
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "prefect": package_version("prefect"),
        "platform": platform.platform(terse=True),
    }


def environment_line(env: dict[str, Any] | None = None) -> str:
    env = env or environment()
    load = env.get("load_average")
    busy = f", load average {' / '.join(f'{value:g}' for value in load)} (1 / 5 / 15 min)" if load else ""
    return (
        f"machine: {env['cpu_count']} cores (os.cpu_count()){busy}, "
        f"{env.get('python_step_ns', '?')} ns per step of a reference Python loop (bench.report.python_step_ns), "
        f"{env['implementation']} {env['python']}, "
        f"prefect {env['prefect']}, {env['platform']}"
    )


@dataclass(frozen=True)
class Verdict:
    """A target (PASS/FAIL, informs the exit code only with --strict) or a check (correctness)."""

    text: str
    passed: bool
    detail: str = ""

    @property
    def label(self) -> str:
        return "PASS" if self.passed else "FAIL"


@dataclass
class Report:
    name: str
    title: str
    params: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)  # machine-readable: name -> value
    units: dict[str, str] = field(default_factory=dict)
    tables: list[tuple[str, list[str], list[list[str]]]] = field(default_factory=list)  # (title, header, rows)
    targets: list[Verdict] = field(default_factory=list)
    checks: list[Verdict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    env: dict[str, Any] = field(default_factory=environment)
    seconds: float = 0.0  # how long the benchmark ran (wall clock)

    def figure(self, name: str, value: Any, unit: str = "") -> Any:
        self.figures[name] = value
        if unit:
            self.units[name] = unit
        return value

    def table(self, title: str, header: list[str], rows: list[list[Any]]) -> None:
        self.tables.append((title, header, [[_text(cell) for cell in row] for row in rows]))

    def target(self, text: str, passed: bool, detail: str = "") -> None:
        self.targets.append(Verdict(text, bool(passed), detail))

    def check(self, text: str, passed: bool, detail: str = "") -> None:
        self.checks.append(Verdict(text, bool(passed), detail))

    def note(self, text: str) -> None:
        self.notes.append(text)

    @property
    def targets_met(self) -> bool:
        return all(t.passed for t in self.targets)

    @property
    def checks_passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "env": self.env,
            "params": self.params,
            "figures": self.figures,
            "units": self.units,
            "targets": [v.__dict__ | {"result": v.label} for v in self.targets],
            "checks": [v.__dict__ | {"result": v.label} for v in self.checks],
            "notes": self.notes,
            "seconds": round(self.seconds, 3),
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2, default=str)

    def render(self) -> str:
        params = ", ".join(f"{k}={v}" for k, v in self.params.items())
        lines = [f"== {self.name}: {self.title} ({params}) ==", f"   {environment_line(self.env)}"]
        for title, header, rows in self.tables:
            lines.append("")
            if title:
                lines.append(f"   {title}")
            lines.extend("   " + line for line in _grid(header, rows))
        if self.targets:
            lines.append("")
            lines.extend(f"   target {v.label}: {v.text}" + (f" ({v.detail})" if v.detail else "") for v in self.targets)
        if self.checks:
            lines.append("")
            lines.extend(f"   check  {v.label}: {v.text}" + (f" ({v.detail})" if v.detail else "") for v in self.checks)
        if self.notes:
            lines.append("")
            lines.extend(f"   note: {note}" for note in self.notes)
        lines.append(f"   ({self.seconds:.1f} s)")
        return "\n".join(lines)


def _text(cell: Any) -> str:
    if isinstance(cell, float):
        return f"{cell:.3f}"
    return str(cell)


def _grid(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(str(cell).ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(row) for row in rows)]


def print_flush(text: str) -> None:
    print(text, flush=True)
    sys.stdout.flush()
