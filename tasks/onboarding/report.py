"""An onboarding report as people read it: table rows, per-step details, the causes and a markdown summary.

One rendering for the Prefect artifact and the command line. A cause of failure is stated once, in
full, under "What still needs a human" (numbered); the table and the details refer to its number:

    step_rows(report)          # [{"step": "connected-app", "outcome": "failed", "summary": "... (see 1 below)"}]
    detail_lines(result, report)   # ["create status On_Break: new busy status 'On Break'", ...]
    needs_lines(report)        # ["1. presence-statuses, connected-app: Salesforce refused ...", "- oauth-flow: ..."]
    markdown_summary(report)   # the artifact: the table, the details and what still needs a human
"""

from __future__ import annotations

import re

from presence_sync.models.store import StepOutcome
from presence_sync.tasks.onboarding.model import Action, OnboardingReport, StepResult

DETAILS_SHOWN = 10
NEEDS_SHOWN = 25

# The end of a cause's first sentence: ". " or a line break, but not inside "e.g. " or "i.e. ".
_SENTENCE_END = re.compile(r"(?<!e\.g)(?<!i\.e)\.(?:\s|$)|\n")


def step_rows(report: OnboardingReport) -> list[dict[str, str]]:
    """One row per step: its name, outcome and a one-line summary. A failure shows its cause's headline
    and number the first time, and only refers to it after."""
    rows, first_row_of = [], {}
    for result in report.results:
        summary, number = _row_summary(result, report)
        if number is not None and number in first_row_of:
            summary = f"same cause as {first_row_of[number]} (see {number} below)"
        elif number is not None:
            first_row_of[number] = result.step.value
        rows.append({"step": result.step.value, "outcome": result.outcome.value, "summary": summary})
    return rows


def detail_lines(result: StepResult, report: OnboardingReport | None = None, limit: int = DETAILS_SHOWN) -> list[str]:
    """The step's changes and failures (not what is unchanged), at most `limit` and a count of the rest.

    With the `report`, a failed item whose cause is listed below says its number instead of the cause.
    """
    changes = [item for item in result.items if item.action is not Action.UNCHANGED]
    lines = []
    for item in changes[:limit]:
        number = report.cause_number(item.reason) if report and item.action is Action.FAILED else None
        if number is not None and len(result.items) == 1:
            continue  # a one-item step's row already names the item and its cause
        reason = f"see {number} below" if number else item.reason
        lines.append(f"{item.action.value} {item.subject}: {reason}")
    if len(changes) > limit:
        lines.append(f"... and {len(changes) - limit} more")
    return lines


def needs_lines(report: OnboardingReport) -> list[str]:
    """What still needs a human: the numbered causes in full, then the notes (at most `NEEDS_SHOWN`)."""
    causes = report.causes()
    numbered = [
        _hanging(f"{number}. ", f"{_steps(cause.where)}: {cause.text}") for number, cause in enumerate(causes, start=1)
    ]
    return capped(numbered + [f"- {note}" for note in report.notes_not_in(causes)])


def capped(lines: list[str], limit: int = NEEDS_SHOWN) -> list[str]:
    """At most `limit` lines, then how many were left out."""
    return lines[:limit] + ([f"... and {len(lines) - limit} more"] if len(lines) > limit else [])


def title(report: OnboardingReport, what: str = "Onboarding") -> str:
    """One line: a plan, a run with failures, a run that changed things, or one that found nothing to change."""
    count = len(report.results)
    steps = f"{count} step{'' if count == 1 else 's'}"
    if not report.succeeded:
        failed = len(report.failed)
        skipped = sum(1 for result in report.results if result.outcome is StepOutcome.SKIPPED)
        counts = f"{steps}, {failed} failed" + (f", {skipped} skipped" if skipped else "")
        return f"{what} plan: {counts}" if report.plan_only else f"{what}: {counts}"
    if report.plan_only:
        return f"{what} plan ({steps}, nothing changed)"
    if all(result.outcome is StepOutcome.UNCHANGED for result in report.results):
        return f"{what}: {steps}, all done; nothing changed (already as the config says)"
    return f"{what}: {steps}, all done"


def markdown_summary(report: OnboardingReport, what: str = "Onboarding") -> str:
    """The whole report: every step's outcome, its changes, then what still needs a human."""
    lines = [f"# {title(report, what)}", "", "| step | outcome | summary |", "|---|---|---|"]
    lines += [f"| {row['step']} | {row['outcome']} | {_cell(row['summary'])} |" for row in step_rows(report)]
    for result in report.results:
        details = detail_lines(result, report)
        if details:
            lines += ["", f"## {result.step}", "", *(f"- {_cell(line)}" for line in details)]
    needs = needs_lines(report)
    lines += ["", "## What still needs a human", ""]
    lines += [_markdown_item(line) for line in needs] if needs else ["Nothing: every step is done."]
    return "\n".join(lines) + "\n"


def headline(text: str) -> str:
    """A cause's first sentence, e.g. "Salesforce refused the password login (invalid_client: ...)"."""
    match = _SENTENCE_END.search(text.strip())
    return (text.strip()[: match.start()] if match else text.strip()) or text.strip()


def _row_summary(result: StepResult, report: OnboardingReport) -> tuple[str, int | None]:
    """The row's summary, and the number of the one cause it states (None for none, or several)."""
    if result.outcome is StepOutcome.SKIPPED and result.cause_step is not None:
        return f"skipped: {result.cause_step} failed", None
    if not result.failed:
        return _first_line(result.summary), None
    failed_items = result.failed_items
    if not failed_items:
        return _refer(headline(result.summary), report.cause_number(result.summary))
    if len(failed_items) == 1 and len(result.items) == 1:
        item = failed_items[0]
        return _refer(f"{item.subject}: {headline(item.reason)}", report.cause_number(item.reason))
    return f"{_first_line(result.summary)} (see below)", None


def _refer(text: str, number: int | None) -> tuple[str, int | None]:
    return (f"{text} (see {number} below)" if number else text), number


def _hanging(prefix: str, text: str) -> str:
    """`prefix` + `text`, its further lines indented under the first (a cause's own list stays inside it)."""
    return prefix + text.strip().replace("\n", "\n" + " " * len(prefix))


def _steps(where: tuple[str, ...]) -> str:
    """The steps a cause struck, each once: ("connected-app: connected app 'X'", ...) -> "connected-app"."""
    return ", ".join(dict.fromkeys(place.split(":")[0] for place in where))


def _markdown_item(line: str) -> str:
    # "1. ..." stays a numbered item; "- ..." a bullet; "... and N more" a bullet of its own.
    if line[:1].isdigit() or line.startswith("- "):
        return _cell(line)
    return f"- {_cell(line)}"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")
