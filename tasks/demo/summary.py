"""What the demo reports: propagation per direction measured from outside, the sync's own figures,
validation, convergence, and whether the machine was too busy for the figures to mean much.

    summary = DemoSummary(agents=200, day_seconds=60, seed=0, config_path="...")
    summary.figures(), summary.ok, summary_markdown(summary)
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from presence_sync.emulators.simulator import Propagation
from presence_sync.tasks.demo.busy import MachineLoad
from presence_sync.tasks.demo.convergence import Convergence
from presence_sync.tasks.sync.summary import DIRECTIONS, WindowStats, percentile
from presence_sync.tasks.validate import ValidationReport


@dataclass(frozen=True, slots=True)
class Latency:
    """Propagation latency of one direction, in seconds."""

    count: int
    p50: float | None
    p95: float | None
    max: float | None

    @classmethod
    def of(cls, samples: list[float]) -> Latency:
        ordered = sorted(samples)
        return cls(len(ordered), percentile(ordered, 50), percentile(ordered, 95), ordered[-1] if ordered else None)


@dataclass
class DemoSummary:
    agents: int
    day_seconds: float
    seed: int
    config_path: str
    problem: str = ""
    changes: Counter[str] = field(default_factory=Counter)
    activities: Counter[str] = field(default_factory=Counter)
    latency: dict[str, Latency] = field(default_factory=dict)
    propagation: Propagation = field(default_factory=Propagation)
    window: WindowStats | None = None
    api_requests: dict[str, dict[str, int]] = field(default_factory=dict)
    validation: ValidationReport | None = None
    convergence: Convergence = field(default_factory=Convergence)
    flow_runs: dict[str, str] = field(default_factory=dict)
    artifacts: tuple[str, ...] = ()  # the keys of the artifacts the demo's flow runs published
    machine: MachineLoad | None = None  # how busy the machine was: whether the latencies mean much

    @property
    def ok(self) -> bool:
        validated = self.validation is not None and self.validation.passed
        return not self.problem and validated and self.convergence.converged

    def figures(self) -> list[tuple[str, str, str]]:
        """(figure, CXone → Salesforce, Salesforce → CXone): what the people did and how fast it arrived
        (measured on the other side), then the sync window's own figures."""
        rows: list[tuple[str, str, str]] = [
            ("human changes", *(str(self.changes[side]) for side in ("cxone", "salesforce"))),
            ("propagation p50 / p95 / max", *(_latency_text(self.latency.get(d.value)) for d in DIRECTIONS)),
            ("changes timed", *(str(self.latency[d.value].count if d.value in self.latency else 0) for d in DIRECTIONS)),
        ]
        return rows + (self.window.figures() if self.window is not None else [])


def _latency_text(latency: Latency | None) -> str:
    if latency is None or latency.count == 0:
        return "-"
    return f"{latency.p50:.2f} / {latency.p95:.2f} / {latency.max:.2f} s"


def summary_markdown(summary: DemoSummary) -> str:
    lines = [
        f"# presence-sync demo: {'✅ passed' if summary.ok else '❌ failed'}",
        "",
        f"{summary.agents} agents, a working day in {summary.day_seconds:.0f} s (seed {summary.seed}).",
        "",
        "| | CXone → Salesforce | Salesforce → CXone |",
        "|---|---|---|",
        *(f"| {figure} | {a} | {b} |" for figure, a, b in summary.figures()),
        "",
        f"Converged: {summary.convergence.checked - len(summary.convergence.disagreements)} of "
        f"{summary.convergence.checked} linked agents agree with the rule.",
    ]
    if summary.validation is not None:
        lines.append(f"Validation: {summary.validation.headline}.")
    if summary.machine is not None:
        mark = "⚠️ " if summary.machine.busy else ""
        lines.append(f"{mark}{summary.machine.note()}.")
    if summary.problem:
        lines.append(f"Problem: {summary.problem}")
    return "\n".join(lines)
