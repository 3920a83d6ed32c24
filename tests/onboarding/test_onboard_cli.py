"""`presence-sync onboard` and `refresh-users`: the table, the exit codes, no tracebacks for user mistakes."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app, main
from emulators.salesforce.emulator import OrgUpdate
from emulators.stack import EmulatorStack
from tests.onboarding.onboarding_support import data_writes

WIDE = {"COLUMNS": "250"}


@pytest.mark.prefect
def test_plan_prints_every_step_and_changes_nothing(prefect_harness: None, stack: EmulatorStack, config_path: Path) -> None:
    outcome = CliRunner().invoke(app, ["onboard", str(config_path), "--plan"], env=WIDE)

    assert outcome.exit_code == 0, outcome.output
    assert "Onboarding plan (7 steps, nothing changed)" in outcome.output
    assert "presence-statuses │ planned   │ 9 statuses: 9 to create" in outcome.output
    assert "create status Resume_Previous: new online status 'Resume Previous' on sfdc_case" in outcome.output
    assert "What still needs a human" in outcome.output and "2027-02-20" in outcome.output
    assert asyncio.run(data_writes(stack)) == {}


@pytest.mark.prefect
def test_a_failed_step_exits_1_with_its_causes_and_no_traceback(
    prefect_harness: None, stack: EmulatorStack, config_path: Path
) -> None:
    stack.salesforce.configure_org(OrgUpdate(mfa_users=["integration@example.com"]))

    outcome = CliRunner().invoke(app, ["onboard", str(config_path)], env=WIDE)

    assert outcome.exit_code == 1
    assert "Onboarding: 7 steps, 2 failed" in outcome.output
    assert "MFA is enforced on this user" in outcome.output
    # stdout is ours; Prefect's own log lines go to stderr.
    assert "Traceback" not in outcome.stdout
    assert isinstance(outcome.exception, SystemExit)  # typer.Exit(1), not an error


@pytest.mark.prefect
def test_refresh_users_prints_its_one_step(prefect_harness: None, stack: EmulatorStack, config_path: Path) -> None:
    outcome = CliRunner().invoke(app, ["refresh-users", str(config_path)], env=WIDE)

    assert outcome.exit_code == 0, outcome.output
    assert "Refresh users: 1 steps, all done" in outcome.output
    assert "cxone-users │ created" in outcome.output


def test_a_bad_config_exits_2_with_the_problem_and_no_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "presence-sync.yaml"
    config.write_text("salesforce: {environment: production}\n", encoding="utf-8")
    monkeypatch.setattr(sys, "argv", ["presence-sync", "onboard", str(config)])
    monkeypatch.setenv("COLUMNS", "250")

    with pytest.raises(SystemExit) as exited:
        main()

    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "problems in the presence-sync config" in err and "cxone (line 1): required setting is missing" in err
    assert "Traceback" not in err
