"""`presence-sync onboard` and `refresh-users`: the table, the exit codes, no tracebacks for user mistakes."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from presence_sync.cli.main import app, main
from presence_sync.emulators.faults import FaultSettings
from presence_sync.emulators.salesforce.emulator import OrgUpdate
from presence_sync.emulators.stack import EmulatorStack
from presence_sync.models.config import write_emulator_config
from presence_sync.tasks.context import routed
from tests.onboarding.onboarding_support import AGENTS, data_writes, transports_of, variant

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
def test_a_login_the_org_refuses_exits_2_with_its_causes_and_no_traceback(
    prefect_harness: None, stack: EmulatorStack, config_path: Path
) -> None:
    # MFA enforced on the integration user: an org setting to fix, which the README's exit code 2 means.
    stack.salesforce.configure_org(OrgUpdate(mfa_users=["integration@example.com"]))

    outcome = CliRunner().invoke(app, ["onboard", str(config_path)], env=WIDE)

    assert outcome.exit_code == 2
    assert "Onboarding: 7 steps, 2 failed" in outcome.output
    assert "MFA is enforced on this user" in outcome.output
    # stdout is ours; Prefect's own log lines go to stderr.
    assert "Traceback" not in outcome.stdout
    assert isinstance(outcome.exception, SystemExit)  # typer.Exit(2), not an error


@pytest.mark.prefect
def test_a_wrong_consumer_secret_exits_2_and_states_its_cause_once(
    prefect_harness: None, stack: EmulatorStack, config_path: Path
) -> None:
    def wrong_secret(data: dict) -> None:
        data["salesforce"]["auth"]["client_secret"] = "not-the-secret"

    wrong = variant(config_path, wrong_secret)
    with routed(wrong, transports_of(stack)):
        outcome = CliRunner().invoke(app, ["onboard", str(wrong)], env=WIDE)

    assert outcome.exit_code == 2, outcome.output
    assert outcome.output.count("The consumer secret (client_secret) is wrong") == 1
    assert outcome.output.count("Manage Consumer Details") == 1
    assert "connected-app     │ failed  │ same cause as presence-statuses (see 1 below)" in outcome.output
    assert "profile-access    │ skipped │ skipped: presence-statuses failed" in outcome.output
    assert "1. presence-statuses, connected-app: Salesforce refused the password login" in outcome.output
    assert "Traceback" not in outcome.output


@pytest.mark.prefect
def test_a_system_that_keeps_failing_exits_1(
    prefect_harness: None, stack: EmulatorStack, config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from presence_sync.flows import onboard_tasks as prefect_tasks

    for step, task in list(prefect_tasks.STEP_TASKS.items()):
        monkeypatch.setitem(prefect_tasks.STEP_TASKS, step, task.with_options(retry_delay_seconds=0))
    # CXone asks to wait far longer than a connector waits: its steps fail transiently, nothing to fix.
    stack.cxone.faults.configure(FaultSettings(rate_limit_per_s=0.0001))

    outcome = CliRunner().invoke(app, ["onboard", str(config_path)], env=WIDE)

    assert outcome.exit_code == 1, outcome.output
    assert "still failing after retries" in outcome.output
    assert "Traceback" not in outcome.output


@pytest.mark.prefect
def test_refresh_users_prints_its_one_step(prefect_harness: None, stack: EmulatorStack, config_path: Path) -> None:
    outcome = CliRunner().invoke(app, ["refresh-users", str(config_path)], env=WIDE)

    assert outcome.exit_code == 0, outcome.output
    assert "Refresh users: 1 step, all done" in outcome.output
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


_DEMO_CONFIG = Path(__file__).resolve().parents[2] / "examples" / "demo-contact-center.yaml"


def _hostile(kind: str) -> str:
    demo = _DEMO_CONFIG.read_text(encoding="utf-8")
    if kind == "control character":
        return demo.replace("\nrules:", "\nru\x01les:", 1)
    if kind == "3000 nested brackets":
        return "salesforce: " + "[" * 3_000 + "]" * 3_000 + "\n"
    if kind == "alias bomb":
        lines = ['lol: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
        lines += [f"l{n}: &l{n} [" + ", ".join([f"*l{n - 1}"] * 9) + "]" for n in range(1, 9)]
        return "\n".join(lines) + "\n"
    return demo.replace("flow: password", "flow: " + "x" * 100_000)


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("control character", "character U+0001 (column 3) is not allowed in YAML"),
        ("3000 nested brackets", "values are nested more than 32 levels deep"),
        ("alias bomb", "YAML aliases (*name) here expand to more than 50,000 values"),
        ("100,000-character value", "is not supported"),
    ],
)
def test_a_hostile_config_exits_2_with_one_short_message_and_no_traceback(
    kind: str, words: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "presence-sync.yaml"
    config.write_text(_hostile(kind), encoding="utf-8")
    for name in re.findall(r"\$\{(PRESENCE_SYNC_\w+)\}", _DEMO_CONFIG.read_text(encoding="utf-8")):
        monkeypatch.setenv(name, "fake")
    monkeypatch.setattr(sys, "argv", ["presence-sync", "onboard", str(config), "--plan"])
    monkeypatch.setenv("COLUMNS", "250")

    with pytest.raises(SystemExit) as exited:
        main()

    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert "1 problem in the presence-sync config" in captured.err and words in captured.err
    assert "Traceback" not in captured.err + captured.out
    assert len(captured.err) < 1_000


def test_brackets_in_a_config_problem_are_printed_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The fixes say e.g. `channels, e.g. [sfdc_phone]`: console markup must not swallow them.
    demo = Path(__file__).resolve().parents[2] / "examples" / "demo-contact-center.yaml"
    text = demo.read_text(encoding="utf-8").replace(
        "  - {label: On Break, option: busy}", "  - {label: On Break, option: online}"
    )
    config = tmp_path / "presence-sync.yaml"
    config.write_text(text, encoding="utf-8")
    for name in re.findall(r"\$\{(PRESENCE_SYNC_\w+)\}", text):
        monkeypatch.setenv(name, "fake")
    monkeypatch.setattr(sys, "argv", ["presence-sync", "onboard", str(config), "--plan"])

    with pytest.raises(SystemExit) as exited:
        main()

    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "an online status needs at least one service channel -> list channels, e.g. [sfdc_phone]" in err


def test_report_texts_are_not_read_as_markup() -> None:
    from presence_sync.cli.onboard import console, print_report
    from presence_sync.tasks.onboarding import OnboardingReport, StepName, StepResult

    reason = "Salesforce has no channel [sfdc_sms] -> fix statuses[9].channels [bold]now[/bold]"
    report = OnboardingReport("run", False, (StepResult.failure(StepName.PRESENCE_STATUSES, reason),))

    with console.capture() as captured:
        print_report(report)

    shown = " ".join(captured.get().split())
    assert "[sfdc_sms]" in shown and "[bold]now[/bold]" in shown


@pytest.mark.prefect
def test_a_missing_prefect_secret_block_exits_2_naming_the_block_and_path(
    prefect_harness: None, stack: EmulatorStack, config_path: Path
) -> None:
    def from_a_block(data: dict) -> None:
        data["cxone"]["client_secret"] = "prefect-secret:no-such-block"

    outcome = CliRunner().invoke(app, ["onboard", str(variant(config_path, from_a_block)), "--plan"], env=WIDE)

    assert outcome.exit_code == 2, outcome.output
    assert "cxone.client_secret: Prefect Secret block 'no-such-block' does not exist" in outcome.stderr
    assert "Traceback" not in outcome.stderr
    assert asyncio.run(data_writes(stack)) == {}


def test_a_plan_runs_without_prefect_and_changes_nothing(tmp_path: Path) -> None:
    # A plan only reads: it runs the flow's steps in the command's own process, without a Prefect server.
    script = (
        "import sys\n"
        "from presence_sync.cli.main import main\n"
        "sys.argv = ['presence-sync', 'onboard', sys.argv[1], '--plan']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exited:\n"
        "    print('exit', exited.code, 'prefect imported:', any(m.split('.')[0] == 'prefect' for m in sys.modules))\n"
    )
    with EmulatorStack.serve(agents=AGENTS) as stack:
        config = asyncio.run(write_emulator_config(stack, tmp_path / "presence-sync.yaml"))
        done = subprocess.run(
            [sys.executable, "-c", script, str(config)], capture_output=True, text=True, timeout=120,
            env={**os.environ, "COLUMNS": "250"},
        )
        writes = asyncio.run(data_writes(stack))

    assert done.stdout.rstrip().endswith("exit 0 prefect imported: False"), done.stdout + done.stderr
    assert "Onboarding plan (7 steps, nothing changed)" in done.stdout
    assert "Prefect" not in done.stderr
    assert writes == {}


def test_the_report_reads_at_80_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    from presence_sync.cli.onboard import console, print_report
    from presence_sync.tasks.onboarding import FailureKind, OnboardingReport, StepName, StepResult

    secret = (
        "Salesforce refused the password login (invalid_client: invalid client credentials). The consumer secret "
        "(client_secret) is wrong: copy the Consumer Secret from Setup > App Manager > the app > View > Manage "
        "Consumer Details."
    )
    results = (
        StepResult.failure(StepName.PRESENCE_STATUSES, secret),
        StepResult.skipped(StepName.PROFILE_ACCESS, StepName.PRESENCE_STATUSES, secret),
        StepResult.failure(StepName.CONNECTED_APP, secret),
        StepResult.failure(StepName.CXONE_USERS, "CXone did not answer (still failing after retries)", FailureKind.TRANSIENT),
    )
    report = OnboardingReport("run", True, results)

    monkeypatch.setattr(console, "width", 80)
    with console.capture() as captured:
        print_report(report)
    shown = captured.get()

    assert "…" not in shown
    assert max(len(line) for line in shown.splitlines() if "│" in line) <= 80
    assert "Onboarding plan: 4 steps, 3 failed, 1 skipped" in shown and "nothing changed" not in shown
    assert shown.count("Manage Consumer Details") == 1
