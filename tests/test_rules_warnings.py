"""A rules file whose callback cases can outlive retention is loaded, with a warning: in the
service's log and /readyz on every (re)load, and from `callbridge check` (which reads
CALLBRIDGE_RETENTION as `serve` does)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from bridge.cli import main as cli_main
from bridge.metrics import Metrics
from bridge.service.rulestate import RulesHolder
from tests.support.harness import write_rules

RULES = """\
version: 1
timezone: Europe/Amsterdam
destinations:
  support: {slack: {channel: C0SUPPORT01}}
routes:
  - {name: support, missed: support, callback: {callback_window: WINDOW}}
"""
WARNING = (
    'route "support": its callback_window is 20d, not shorter than CALLBRIDGE_RETENTION (14d): '
    "retention would delete an open case's first missed call and the case with it (its alert "
    "would keep saying it waits for a callback); shorten callback_window or raise "
    "CALLBRIDGE_RETENTION"
)


async def test_a_reload_warns_in_the_log_and_readyz_and_a_fixed_file_clears_it(
    tmp_path: Path,
) -> None:
    path = write_rules(tmp_path, RULES.replace("WINDOW", "20d"))
    holder = RulesHolder(path, Metrics(), retention=timedelta(days=14))
    with capture_logs() as logged:
        assert await holder.reload()
    warnings = [e for e in logged if e["event"] == "rules.warning"]
    assert warnings == [{"event": "rules.warning", "log_level": "warning", "message": WARNING}]
    ready = await holder.ready()
    assert ready.startswith("1 route, 1 destination, version ")
    assert ready.endswith("; 1 warning: see the log (rules.warning)")

    path.write_text(RULES.replace("WINDOW", "13d"))
    with capture_logs() as logged:
        assert await holder.reload()
    assert [e for e in logged if e["event"] == "rules.warning"] == []
    assert "warning" not in await holder.ready()


async def test_the_retention_setting_decides(tmp_path: Path) -> None:
    path = write_rules(tmp_path, RULES.replace("WINDOW", "20d"))
    holder = RulesHolder(path, Metrics(), retention=timedelta(days=30))
    with capture_logs() as logged:
        assert await holder.reload()
    assert [e for e in logged if e["event"] == "rules.warning"] == []


def test_check_warns_and_still_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_rules(tmp_path, RULES.replace("WINDOW", "20d"))
    monkeypatch.delenv("CALLBRIDGE_RETENTION", raising=False)
    assert cli_main(["check", str(path)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(f"OK: {path} ")
    assert captured.err == f"{path}: warning: {WARNING}\n"

    monkeypatch.setenv("CALLBRIDGE_RETENTION", "3w")
    assert cli_main(["check", str(path)]) == 0
    assert capsys.readouterr().err == ""


def test_check_refuses_an_unreadable_retention(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_rules(tmp_path, RULES.replace("WINDOW", "3d"))
    monkeypatch.setenv("CALLBRIDGE_RETENTION", "two weeks")
    assert cli_main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("CALLBRIDGE_RETENTION: expected a duration like ")
    assert err.rstrip().endswith("got 'two weeks'")
