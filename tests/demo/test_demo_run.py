"""`presence-sync demo`, shortened: the whole product end to end against the emulators on loopback."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from presence_sync.cli.main import app
from presence_sync.models.config import load_config
from presence_sync.tasks.context import open_store


@pytest.mark.prefect
def test_a_short_demo_day_onboards_syncs_validates_converges_and_says_so(prefect_harness: None, tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--agents", "24", "--minutes", "0.25", "--seed", "4", "--workdir", str(workdir)])
    output = result.output
    assert result.exit_code == 0, output
    assert "✔ validation passed for agent1@example.com" in output
    assert "✔ converged: all 24 linked agents agree with the rule in both systems" in output
    # Real figures, measured on the other side of each change: both directions carried changes.
    timed = re.search(r"changes timed\s*│\s*(\d+)\s*│\s*(\d+)", output)
    assert timed is not None and int(timed.group(1)) > 0 and int(timed.group(2)) > 0, output
    assert re.search(r"propagation p50 / p95 / max\s*│\s*\d+\.\d\d / ", output), output
    assert "failed / gave up            │ 0" in output
    # The store it leaves behind explains every decision.
    store = open_store(load_config(workdir / "presence-sync.yaml"))
    try:
        assert store.reports.audit_for(limit=1)
    finally:
        store.close()


def test_the_demo_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "something.txt").write_text("keep me", encoding="utf-8")
    result = CliRunner().invoke(app, ["demo", "--workdir", str(tmp_path)])
    assert result.exit_code == 2
    assert "is not empty; give an empty or new folder" in " ".join(result.output.split())
    assert (tmp_path / "something.txt").read_text(encoding="utf-8") == "keep me"
