"""An onboarding report as people read it: table rows, per-step details and a markdown summary.

One rendering for the Prefect artifacts and the command line:

    step_rows(report)          # [{"step": "presence-statuses", "outcome": "created", "summary": "..."}]
    detail_lines(result)       # ["create status On_Break: new busy status 'On Break'", ...]
    markdown_summary(report)   # the artifact with what still needs a human
"""

from __future__ import annotations

from presence_sync.models.store import StepOutcome
from presence_sync.tasks.onboarding.model import Action, OnboardingReport, StepResult

DETAILS_SHOWN = 10
NEEDS_SHOWN = 25


def step_rows(report: OnboardingReport) -> list[dict[str, str]]:
    """One row per step: its name, outcome and one-line summary."""
    return [
        {"step": result.step.value, "outcome": result.outcome.value, "summary": _first_line(result.summary)}
        for result in report.results
    ]


def detail_lines(result: StepResult, limit: int = DETAILS_SHOWN) -> list[str]:
    """The step's changes and failures (not what is unchanged), at most `limit` and a count of the rest."""
    changes = [item for item in result.items if item.action is not Action.UNCHANGED]
    lines = [f"{item.action.value} {item.subject}: {item.reason}" for item in changes[:limit]]
    if len(changes) > limit:
        lines.append(f"... and {len(changes) - limit} more")
    return lines


def capped(lines: list[str], limit: int = NEEDS_SHOWN) -> list[str]:
    """At most `limit` lines, then how many were left out."""
    return lines[:limit] + ([f"... and {len(lines) - limit} more"] if len(lines) > limit else [])


def title(report: OnboardingReport, what: str = "Onboarding") -> str:
    """One line: a plan, a run with failures, a run that changed things, or one that found nothing to change."""
    count = len(report.results)
    steps = f"{count} step{'' if count == 1 else 's'}"
    if report.plan_only:
        return f"{what} plan ({steps}, nothing changed)"
    if not report.succeeded:
        return f"{what}: {steps}, {len(report.failed)} failed"
    if all(result.outcome is StepOutcome.UNCHANGED for result in report.results):
        return f"{what}: {steps}, all done; nothing changed (already as the config says)"
    return f"{what}: {steps}, all done"


def markdown_summary(report: OnboardingReport, what: str = "Onboarding") -> str:
    """Every step's outcome with its changes, then what still needs a human."""
    lines = [f"# {title(report, what)}", "", "| step | outcome | summary |", "|---|---|---|"]
    lines += [f"| {row['step']} | {row['outcome']} | {_cell(row['summary'])} |" for row in step_rows(report)]
    for result in report.results:
        details = detail_lines(result)
        if details:
            lines += ["", f"## {result.step}", "", *(f"- {_cell(line)}" for line in details)]
    needs = report.needs_a_human()
    lines += ["", "## What still needs a human", ""]
    lines += [f"- {_cell(line)}" for line in capped(needs)] if needs else ["Nothing: every step is done."]
    return "\n".join(lines) + "\n"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")
