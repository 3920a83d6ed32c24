"""What a validation found: the hops, each with its outcome, timing and (on failure) the diagnosis.

    report = ValidationReport(agent="agent7@example.com")
    report.hops.append(HopResult(Hop.SALESFORCE_TO_CXONE, "set On_Break", "CXone Unavailable: Break", ...))
    report.passed, report.headline, report.rows(), report.markdown()
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Hop(StrEnum):
    PREFLIGHT = "preflight"
    SALESFORCE_TO_CXONE = "Salesforce → CXone"
    CXONE_TO_SALESFORCE = "CXone → Salesforce"
    RESTORE = "restore"


class Cause(StrEnum):
    """The likely causes a failed hop is diagnosed with."""

    NOT_LINKED = "agent not linked"
    NO_RULE = "no presence rule"
    SYNC_NOT_RUNNING = "sync not running"
    CXONE_LOGGED_OUT = "agent logged out of CXone"
    ON_CONTACT = "agent on a contact"
    CONSOLE_CLOSED = "Salesforce console closed"
    CONSOLE_REFUSED = "Salesforce console refused the status"
    NO_PROFILE_ACCESS = "status without profile access"
    UNMAPPED = "unmapped state"
    COMMAND_REJECTED = "presence command rejected"
    STATE_REJECTED = "CXone refused the state"
    ALREADY_SHOWN = "already shown"
    TIMEOUT = "timeout"


@dataclass(frozen=True, slots=True)
class Diagnosis:
    cause: Cause
    explanation: str
    fix: str

    def __str__(self) -> str:
        return f"{self.cause}: {self.explanation} Fix: {self.fix}"


@dataclass(frozen=True, slots=True)
class HopResult:
    """One hop: what was done, what the other side should show, what it showed, and how long it took."""

    hop: Hop
    action: str
    expected: str
    observed: str
    passed: bool
    seconds: float | None = None
    note: str = ""
    diagnosis: Diagnosis | None = None

    def row(self) -> dict[str, str]:
        outcome = "passed" if self.passed else ("skipped" if self.diagnosis is None else "FAILED")
        return {
            "hop": self.hop.value,
            "action": self.action,
            "expected": self.expected,
            "observed": self.observed,
            "result": outcome,
            "seconds": "" if self.seconds is None else f"{self.seconds:.2f}",
            "cause": "" if self.diagnosis is None else str(self.diagnosis.cause),
            "fix": "" if self.diagnosis is None else self.diagnosis.fix,
            "note": self.note or ("" if self.diagnosis is None else self.diagnosis.explanation),
        }


@dataclass
class ValidationReport:
    """The outcome of validating one agent; `passed` only when both hops carried their change."""

    agent: str
    cxone_agent_id: int | None = None
    salesforce_user_id: str | None = None
    rule_name: str | None = None
    original_cxone: str = ""
    original_salesforce: str = ""
    hops: list[HopResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        hops = {result.hop: result.passed for result in self.hops}
        return bool(hops.get(Hop.SALESFORCE_TO_CXONE)) and bool(hops.get(Hop.CXONE_TO_SALESFORCE))

    @property
    def failure(self) -> HopResult | None:
        """The first hop that failed with a diagnosis (restore problems are notes, not failures)."""
        return next((r for r in self.hops if r.diagnosis is not None and r.hop is not Hop.RESTORE), None)

    @property
    def by_rule(self) -> str:
        """The rule validated, as the headline names it: " with rule 'Default Presence'" ("" until known)."""
        return f" with rule '{self.rule_name}'" if self.rule_name else ""

    @property
    def headline(self) -> str:
        if self.passed:
            timings = ", ".join(
                f"{r.hop.value} {r.seconds:.2f} s" for r in self.hops if r.seconds is not None and r.hop is not Hop.RESTORE
            )
            return f"validation passed for {self.agent}{self.by_rule}: {timings}"
        failure = self.failure
        if failure is None or failure.diagnosis is None:
            return f"validation failed for {self.agent}"
        return f"validation failed for {self.agent} at {failure.hop.value}: {failure.diagnosis}"

    def rows(self) -> list[dict[str, str]]:
        return [result.row() for result in self.hops]

    def markdown(self) -> str:
        verdict = "✅ passed" if self.passed else "❌ failed"
        lines = [
            f"# Validation of {self.agent}: {verdict}",
            "",
            f"- CXone agent: `{self.cxone_agent_id}`, Salesforce user: `{self.salesforce_user_id}`, rule: {self.rule_name}",
            f"- Before: CXone `{self.original_cxone}`, Salesforce `{self.original_salesforce}`",
            "",
            "| hop | action | expected | observed | result | seconds |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['hop']} | {r['action']} | {r['expected']} | {r['observed']} | {r['result']} | {r['seconds']} |"
            for r in self.rows()
        ]
        failure = self.failure
        if failure is not None and failure.diagnosis is not None:
            d = failure.diagnosis
            lines += ["", f"**{failure.hop.value} failed: {d.cause}.** {d.explanation}", "", f"**Fix:** {d.fix}"]
        notes = [r for r in self.hops if r.hop is Hop.RESTORE and r.note]
        lines += [f"\n_Restore: {r.note}_" for r in notes]
        return "\n".join(lines)


class ValidationError(Exception):
    """A validation that could not start (e.g. a bad parameter); the message says how to fix it."""
