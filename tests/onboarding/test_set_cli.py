"""`presence-sync set`: refusals with the reason and the fix, exit codes, and no traceback for a bad config."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from presence_sync.cli.main import app, main
from presence_sync.emulators.stack import EmulatorStack
from tests.onboarding.onboarding_support import onboard

WIDE = {"COLUMNS": "250"}
DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo-contact-center.yaml"


@pytest.mark.prefect
def test_set_without_a_running_sync_says_so_and_changes_nothing(
    prefect_harness: None, stack: EmulatorStack, config_path: Path
) -> None:
    assert asyncio.run(onboard(config_path, stack)).succeeded
    user = stack.salesforce.user_by_username("agent1@example.com")
    assert user is not None

    outcome = CliRunner().invoke(
        app, ["set", str(config_path), "--agent", "agent1@example.com", "--salesforce", "On_Break", "--timeout", "2"],
        env=WIDE,
    )

    assert outcome.exit_code == 1, outcome.output
    assert "✘ not set: sync not running" in outcome.stdout
    assert "no sync run holds the sync lease" in outcome.stdout and "Fix: start it" in outcome.stdout
    assert "rule: Default Presence" in outcome.stdout
    assert stack.salesforce.current_presence(user.id) is None
    assert "Traceback" not in outcome.stdout


def test_set_needs_one_value_to_set() -> None:
    arguments = ["set", "any.yaml", "--agent", "7", "--salesforce", "On_Break", "--cxone", "Available"]
    outcome = CliRunner().invoke(app, arguments, env=WIDE)

    assert outcome.exit_code == 2
    assert "give exactly one of --salesforce STATUS or --cxone STATE" in outcome.output


def test_a_config_with_two_rules_of_one_name_exits_2_with_path_line_and_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = DEMO.read_text(encoding="utf-8").replace("- name: Chat Presence", "- name: Default Presence")
    line = next(n for n, content in enumerate(text.splitlines(), 1) if content.endswith("- name: Default Presence") and n > 100)
    config = tmp_path / "presence-sync.yaml"
    config.write_text(text, encoding="utf-8")
    for name in re.findall(r"\$\{(PRESENCE_SYNC_\w+)\}", text):
        monkeypatch.setenv(name, "fake")
    monkeypatch.setattr(sys, "argv", ["presence-sync", "set", str(config), "--agent", "7", "--cxone", "Available"])
    monkeypatch.setenv("COLUMNS", "250")

    with pytest.raises(SystemExit) as exited:
        main()

    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"rules[1].name (line {line}): 'Default Presence' is already the name of rules[0] -> give each rule its own name" in err
    assert "Traceback" not in err
