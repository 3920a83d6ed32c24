"""What one sync window did, counted as it runs: the figures of its summary artifact and CLI line.

    stats = WindowStats()
    stats.observed(observations); stats.decided(audit); stats.applied(writes, results)
    stats.figures()         # [("changes seen", "14", "3"), ("writes (incl. retries)", "12", "3"), ...]
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from presence_sync.engine import AuditRecord, Direction, Observation, Outcome, Side, Write, WriteOutcome, WriteResult

DIRECTIONS = (Direction.CXONE_TO_SALESFORCE, Direction.SALESFORCE_TO_CXONE)
DIRECTION_LABELS = {
    Direction.CXONE_TO_SALESFORCE: "CXone → Salesforce",
    Direction.SALESFORCE_TO_CXONE: "Salesforce → CXone",
}
_LAG_SAMPLES_KEPT = 10_000  # per direction; the oldest are dropped beyond this


def percentile(ordered: Sequence[float], percent: float) -> float | None:
    """Nearest-rank percentile of sorted samples (None without samples)."""
    if not ordered:
        return None
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Anomaly:
    """Something an operator should look at: a poll that failed, a write given up, a flapping agent..."""

    kind: str  # lowercase-dashed, used in the artifact key
    message: str


@dataclass
class WindowStats:
    """Counters of one window (or one reconcile pass)."""

    ticks: int = 0
    reads_failed: int = 0  # reads of one system that failed (and were repeated on a later tick)
    changes_seen: Counter[Side] = field(default_factory=Counter)
    outcomes: dict[Direction, Counter[Outcome]] = field(default_factory=lambda: {d: Counter() for d in DIRECTIONS})
    writes: Counter[Direction] = field(default_factory=Counter)
    # Agents aligned on first sight (after onboarding, or new agents): writes that carry no human change.
    aligned: Counter[Direction] = field(default_factory=Counter)
    write_results: dict[Direction, Counter[WriteOutcome]] = field(
        default_factory=lambda: {d: Counter() for d in DIRECTIONS}
    )
    lags_ms: dict[Direction, list[float]] = field(default_factory=lambda: {d: [] for d in DIRECTIONS})
    api_reads: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)  # malformed records skipped, by system
    anomalies: list[Anomaly] = field(default_factory=list)

    @classmethod
    def combined(cls, windows: Iterable[WindowStats]) -> WindowStats:
        """Several windows' counters added up, field by field (counts add, samples and anomalies concatenate)."""
        total = cls()
        for window in windows:
            for item in dataclasses.fields(cls):
                mine, theirs = getattr(total, item.name), getattr(window, item.name)
                if isinstance(mine, dict) and not isinstance(mine, Counter):
                    for key, value in theirs.items():
                        mine[key] = mine[key] + value if key in mine else value
                elif isinstance(mine, list):
                    mine.extend(theirs)
                else:
                    setattr(total, item.name, mine + theirs)
        return total

    def observed(self, observations: Iterable[Observation]) -> None:
        self.changes_seen.update(o.side for o in observations)

    def decided(self, audit: Iterable[AuditRecord]) -> None:
        for record in audit:
            self.outcomes[record.direction][record.outcome] += 1
            if record.outcome is Outcome.ECHO and record.latency_ms is not None:
                lags = self.lags_ms[record.direction]
                lags.append(float(record.latency_ms))
                if len(lags) > _LAG_SAMPLES_KEPT:
                    del lags[: len(lags) - _LAG_SAMPLES_KEPT]

    def applied(self, writes: Sequence[Write], results: Sequence[WriteResult]) -> None:
        direction_of = {w.command_id: Direction.toward(w.side) for w in writes}
        self.writes.update(direction_of.values())
        self.aligned.update(Direction.toward(w.side) for w in writes if w.initial and w.attempt == 1)
        for result in results:
            self.write_results[direction_of[result.command_id]][result.outcome] += 1

    def count(self, direction: Direction, *outcomes: Outcome) -> int:
        return sum(self.outcomes[direction][o] for o in outcomes)

    def lag(self, direction: Direction, percent: float) -> float | None:
        """Propagation lag in seconds (human change -> the other side shows it), from our echoes."""
        value = percentile(sorted(self.lags_ms[direction]), percent)
        return None if value is None else value / 1000

    def figures(self) -> list[tuple[str, str, str]]:
        """(figure, CXone → Salesforce, Salesforce → CXone); changes are counted by the side they start on."""
        rows: list[tuple[str, str, str]] = [
            ("changes seen", str(self.changes_seen[Side.CXONE]), str(self.changes_seen[Side.SALESFORCE])),
            ("writes (incl. retries)", *(str(self.writes[d]) for d in DIRECTIONS)),
        ]
        if any(self.aligned.values()):
            rows.append(("of which initial alignment", *(f"{self.aligned[d]} agents" for d in DIRECTIONS)))
        for label, outcomes in (
            ("echoes suppressed", (Outcome.ECHO,)),
            ("conflicts", (Outcome.CONFLICT,)),
            ("unmapped", (Outcome.UNMAPPED,)),
            ("deferred during a contact", (Outcome.DEFERRED,)),
            ("failed / gave up", (Outcome.FAILED, Outcome.GAVE_UP)),
            ("retries scheduled", (Outcome.RETRYING,)),
        ):
            rows.append((label, *(str(self.count(d, *outcomes)) for d in DIRECTIONS)))
        rows.append(("lag p50 / p95", *(self._lag_text(d) for d in DIRECTIONS)))
        return rows

    def markdown(self, title: str, notes: Sequence[str] = ()) -> str:
        lines = [
            f"# {title}",
            "",
            f"{self.ticks} ticks ({self.reads_failed} reads failed and were repeated); API reads: "
            + (", ".join(f"{system} {count}" for system, count in sorted(self.api_reads.items())) or "none"),
            "",
            f"| | {DIRECTION_LABELS[DIRECTIONS[0]]} | {DIRECTION_LABELS[DIRECTIONS[1]]} |",
            "|---|---|---|",
            *(f"| {figure} | {a} | {b} |" for figure, a, b in self.figures()),
        ]
        lines += ["", *notes] if notes else []
        if self.anomalies:
            lines += ["", "## Anomalies", "", *(f"- **{a.kind}**: {a.message}" for a in self.anomalies)]
        return "\n".join(lines)

    def _lag_text(self, direction: Direction) -> str:
        p50, p95 = self.lag(direction, 50), self.lag(direction, 95)
        return "-" if p50 is None or p95 is None else f"{p50:.2f} s / {p95:.2f} s"
