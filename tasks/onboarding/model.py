"""What onboarding steps plan and report: items with plain-language reasons, per-step results, the report.

    plan = await plan_presence_statuses(ctx)
    plan.items[2]            # PlanItem("status On_Break", Action.CREATE, "new busy status 'On Break'", "On_Break")
    plan.preview().outcome   # StepOutcome.PLANNED: what --plan shows
    result = await apply_presence_statuses(ctx, plan)
    result.outcome           # StepOutcome.CREATED
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from presence_sync.models.store import StepOutcome


class StepName(StrEnum):
    """The seed procedure's steps, in its order (also the keys in reports and the store)."""

    PRESENCE_STATUSES = "presence-statuses"
    PROFILE_ACCESS = "profile-access"
    CONNECTED_APP = "connected-app"
    OAUTH_FLOW = "oauth-flow"
    ACCOUNT_MAPPING = "account-mapping"
    CXONE_USERS = "cxone-users"
    PRESENCE_RULE = "presence-rule"


REFRESH_USERS_STEPS = (StepName.CXONE_USERS,)
"""What `refresh-users` runs: the CXone users step alone."""


class FailureKind(StrEnum):
    """Why a step failed, as far as the admin's next move goes (and the command's exit code)."""

    TO_FIX = "to fix"  # the config, credentials or org settings: fix them, then run again (exit 2)
    TRANSIENT = "transient"  # a system did not answer in time: run again later (exit 1)
    BUG = "bug"  # unexpected: report it (exit 1)


class Action(StrEnum):
    """What a step does (or would do) to one thing."""

    CREATE = "create"
    UPDATE = "update"
    REMOVE = "remove"
    UNCHANGED = "unchanged"
    FAILED = "failed"


Noun = tuple[str, str]
"""What a step's items are, singular and plural: ("status", "statuses")."""

CHANGES = frozenset({Action.CREATE, Action.UPDATE, Action.REMOVE})
_PAST = {Action.CREATE: "created", Action.UPDATE: "updated", Action.REMOVE: "removed",
         Action.UNCHANGED: "unchanged", Action.FAILED: "failed"}
_FUTURE = {Action.CREATE: "to create", Action.UPDATE: "to update", Action.REMOVE: "to remove",
           Action.UNCHANGED: "unchanged", Action.FAILED: "failed"}


@dataclass(frozen=True, slots=True)
class PlanItem:
    """One thing a step looked at: `subject` for people, `key` for the code (e.g. a DeveloperName)."""

    subject: str
    action: Action
    reason: str
    key: str = ""

    def failed(self, reason: str) -> PlanItem:
        """This item, failed for `reason` (an apply-time refusal)."""
        return PlanItem(self.subject, Action.FAILED, reason, self.key)


@dataclass(frozen=True, kw_only=True)
class StepPlan:
    """What a step found and would change. Step modules subclass it to carry the exact writes.

    `notes` are what a person should know or do (warnings, work only a human can do).
    """

    step: StepName
    items: tuple[PlanItem, ...] = ()
    notes: tuple[str, ...] = ()
    noun: Noun = ("item", "items")

    @property
    def has_changes(self) -> bool:
        return any(item.action in CHANGES for item in self.items)

    def preview(self) -> StepResult:
        """The plan as `--plan` reports it: planned, unchanged or failed; nothing written."""
        return StepResult.from_items(self.step, self.items, self.notes, noun=self.noun, planned=True)

    def result(self, items: Iterable[PlanItem] | None = None) -> StepResult:
        """The outcome once applied: `items` as they turned out (default: as planned)."""
        done = self.items if items is None else tuple(items)
        return StepResult.from_items(self.step, done, self.notes, noun=self.noun, planned=False)


@dataclass(frozen=True, kw_only=True)
class StepResult:
    """How one step ended (or, for a plan, would end)."""

    step: StepName
    outcome: StepOutcome
    summary: str
    items: tuple[PlanItem, ...] = ()
    notes: tuple[str, ...] = ()
    failure_kind: FailureKind | None = None  # set when the step failed
    cause_step: StepName | None = None  # for a skipped step: the failed step it depended on

    @classmethod
    def from_items(
        cls, step: StepName, items: tuple[PlanItem, ...], notes: Iterable[str] = (), *, noun: Noun, planned: bool
    ) -> StepResult:
        outcome = _outcome(items, planned)
        return cls(
            step=step,
            outcome=outcome,
            summary=count_summary(items, noun, planned=planned),
            items=items,
            notes=tuple(notes),
            # An item fails when a system refused it for a reason the admin can act on.
            failure_kind=FailureKind.TO_FIX if outcome is StepOutcome.FAILED else None,
        )

    @classmethod
    def failure(cls, step: StepName, reason: str, kind: FailureKind = FailureKind.TO_FIX) -> StepResult:
        """A step that could not run to the end, e.g. Salesforce refused the login."""
        return cls(step=step, outcome=StepOutcome.FAILED, summary=reason, failure_kind=kind)

    @classmethod
    def skipped(cls, step: StepName, cause: StepName, reason: str) -> StepResult:
        return cls(
            step=step, outcome=StepOutcome.SKIPPED, summary=f"skipped: {cause} failed: {reason}", cause_step=cause
        )

    @property
    def failed_items(self) -> tuple[PlanItem, ...]:
        return tuple(item for item in self.items if item.action is Action.FAILED)

    @property
    def failed(self) -> bool:
        return self.outcome is StepOutcome.FAILED

    @property
    def reason(self) -> str:
        """The one-line why: the first failed item's reason, else the summary's first line."""
        failed = next((item for item in self.items if item.action is Action.FAILED), None)
        text = f"{failed.subject}: {failed.reason}" if failed else self.summary
        return text.strip().splitlines()[0] if text.strip() else self.outcome.value

    def counts(self) -> dict[str, int]:
        """How many items per action, e.g. {"create": 9}."""
        return dict(Counter(item.action.value for item in self.items))


Upcoming = Mapping[StepName, StepResult]
"""In a plan run, the previews of earlier steps: what they would create before this step runs."""

NOTHING_UPCOMING: Upcoming = {}


def upcoming_keys(upcoming: Upcoming, step: StepName, action: Action = Action.CREATE) -> frozenset[str]:
    """Keys of the items an earlier step would `action` (e.g. statuses not yet created in a plan run)."""
    result = upcoming.get(step)
    return frozenset(item.key for item in result.items if item.action is action) if result else frozenset()


@dataclass(frozen=True)
class OnboardingReport:
    """Every step's result of one run, in the seed's order."""

    run_id: str
    plan_only: bool
    results: tuple[StepResult, ...] = field(default_factory=tuple)

    @property
    def failed(self) -> tuple[StepResult, ...]:
        return tuple(result for result in self.results if result.failed)

    @property
    def succeeded(self) -> bool:
        return not any(result.outcome in (StepOutcome.FAILED, StepOutcome.SKIPPED) for result in self.results)

    @property
    def needs_fixing(self) -> bool:
        """True when a failure is the admin's to fix (config, credentials or org settings)."""
        return any(result.failure_kind is FailureKind.TO_FIX for result in self.failed)

    def causes(self) -> list[Cause]:
        """Every distinct failure, once, in the order the steps met it: a refused login that failed
        several steps is one cause naming all of them."""
        failures: dict[str, list[str]] = {}
        for result in self.failed:
            found = [(f"{result.step}: {item.subject}", item.reason) for item in result.failed_items]
            for where, text in found or [(str(result.step), result.summary)]:
                failures.setdefault(text, []).append(where)
        # One cause, said at more length by a later step (e.g. oauth-flow adds where each cause of a
        # refused login is fixed): kept at the fuller text, naming every step it stopped.
        for short in sorted(failures, key=len):
            fuller = next((text for text in failures if len(text) > len(short) and short in text), None)
            if fuller is not None:
                failures[fuller] = failures.pop(short) + failures[fuller]
        causes = [Cause(text, tuple(where)) for text, where in failures.items()]
        return sorted(causes, key=lambda cause: self._first_step_index(cause))

    def cause_number(self, text: str) -> int | None:
        """The 1-based number of the cause that states `text` (a failed step's or item's reason)."""
        for number, cause in enumerate(self.causes(), start=1):
            if text in cause.text:
                return number
        return None

    def needs_a_human(self) -> list[str]:
        """What a person still has to do or know: every failure in full (one line for a cause that
        failed several steps, e.g. a refused login), then the notes."""
        causes = self.causes()
        lines = [f"{', '.join(cause.where)}: {cause.text}" for cause in causes]
        return lines + self.notes_not_in(causes)

    def notes_not_in(self, causes: list[Cause]) -> list[str]:
        """The steps' notes, but not one a failure already says in full (e.g. the Spring '26 guidance)."""
        return [
            f"{result.step}: {note}"
            for result in self.results
            for note in result.notes
            if not any(note in cause.text for cause in causes)
        ]

    def _first_step_index(self, cause: Cause) -> int:
        order = [str(result.step) for result in self.results]
        return min(order.index(where.split(":")[0]) for where in cause.where)


@dataclass(frozen=True)
class Cause:
    """One reason a run failed, in full, and where it struck: `("presence-statuses", "connected-app: ...")`."""

    text: str
    where: tuple[str, ...]


class OnboardingIncomplete(Exception):
    """An onboarding run in which a step failed; `report` holds every step's result.

    Example:
        try:
            report = await onboard("presence-sync.yaml")
        except OnboardingIncomplete as incomplete:
            report = incomplete.report
    """

    def __init__(self, report: OnboardingReport) -> None:
        failed = ", ".join(result.step for result in report.failed) or "none"
        skipped = sum(1 for result in report.results if result.outcome is StepOutcome.SKIPPED)
        super().__init__(f"onboarding is incomplete: failed {failed}; {skipped} step(s) skipped")
        self.report = report

    def __reduce__(self) -> tuple[type[OnboardingIncomplete], tuple[OnboardingReport]]:
        return (OnboardingIncomplete, (self.report,))


def count_summary(items: Iterable[PlanItem], noun: Noun, *, planned: bool) -> str:
    """`9 statuses: 7 created, 2 unchanged` (`7 to create` for a plan); a lone check says what it found."""
    items = tuple(items)
    singular, plural = noun
    if not items:
        return f"no {plural}"
    if len(items) == 1:
        return f"{items[0].subject}: {items[0].reason}"
    counts = Counter(item.action for item in items)
    words = _FUTURE if planned else _PAST
    parts = [f"{counts[action]} {words[action]}" for action in Action if counts[action]]
    return f"{len(items)} {singular if len(items) == 1 else plural}: {', '.join(parts)}"


def _outcome(items: tuple[PlanItem, ...], planned: bool) -> StepOutcome:
    actions = {item.action for item in items}
    if Action.FAILED in actions:
        return StepOutcome.FAILED
    if not actions & CHANGES:
        return StepOutcome.UNCHANGED
    if planned:
        return StepOutcome.PLANNED
    return StepOutcome.UPDATED if actions & {Action.UPDATE, Action.REMOVE} else StepOutcome.CREATED
