"""Logs for journald: every line carries its syslog priority (`<3>` = err) when stdout is the
journal, non-ASCII text is not escaped, and secrets are scrubbed in every format."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import structlog

from bridge import logs

# syslog(3): 2 crit, 3 err, 4 warning, 6 info, 7 debug. Written out by hand.
EXPECTED = [("debug", 7), ("info", 6), ("warning", 4), ("error", 3), ("critical", 2)]


def journal_of(path: Path) -> dict[str, str]:
    """The JOURNAL_STREAM systemd would set for a stdout connected to ``path``."""
    found = os.stat(path)
    return {"JOURNAL_STREAM": f"{found.st_dev}:{found.st_ino}"}


def split(line: str) -> tuple[int, dict[str, object]]:
    assert line.startswith("<"), line
    number, _, rest = line[1:].partition(">")
    return int(number), json.loads(rest)


@pytest.mark.parametrize(("level", "number"), EXPECTED)
def test_level_to_syslog_priority(level: str, number: int) -> None:
    assert logs.priority(level) == number
    assert logs.priority(level.upper()) == number


def test_an_unknown_level_is_info() -> None:
    assert logs.priority("chatty") == 6


def test_journal_format_prefixes_every_line_with_its_priority() -> None:
    out = io.StringIO()
    logs.configure(fmt="journal", level="debug", stream=out)
    log = structlog.get_logger("test")
    for level, _ in EXPECTED:
        getattr(log, level)("event.at", level_name=level)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("event.failed")
    logging.getLogger("aiohttp.server").error("from the standard library")
    logging.getLogger("aiohttp.client").warning("a warning too")

    lines = out.getvalue().splitlines()
    parsed = [split(line) for line in lines]
    assert [(n, d["event"]) for n, d in parsed] == [
        *((n, "event.at") for _, n in EXPECTED),
        (3, "event.failed"),
        (3, "from the standard library"),
        (4, "a warning too"),
    ]
    assert "RuntimeError: boom" in str(parsed[5][1]["exception"])  # the traceback stays inside


def test_json_format_has_no_prefix_and_console_none_either() -> None:
    for fmt in ("json", "console"):
        out = io.StringIO()
        logs.configure(fmt=fmt, level="info", stream=out)
        structlog.get_logger("test").error("event.failed")
        assert not out.getvalue().startswith("<"), fmt
        logs.reset()


def test_auto_is_journal_when_stdout_is_the_journal_stream(tmp_path: Path) -> None:
    path = tmp_path / "stdout"
    with path.open("w", encoding="utf-8") as stream:
        logs.configure(fmt="auto", stream=stream, environ=journal_of(path))
        structlog.get_logger("test").warning("event.warned")
    assert split(path.read_text(encoding="utf-8").strip())[0] == 4


@pytest.mark.parametrize("journal_stream", ["", "1:2", "garbage", "12"])
def test_auto_is_json_when_stdout_is_something_else(tmp_path: Path, journal_stream: str) -> None:
    path = tmp_path / "stdout"
    with path.open("w", encoding="utf-8") as stream:
        logs.configure(fmt="auto", stream=stream, environ={"JOURNAL_STREAM": journal_stream})
        structlog.get_logger("test").warning("event.warned")
    assert json.loads(path.read_text(encoding="utf-8"))["level"] == "warning"


def test_is_journal_tolerates_streams_without_a_file() -> None:
    assert not logs.is_journal(io.StringIO(), {"JOURNAL_STREAM": "1:2"})


def test_non_ascii_is_written_as_it_is() -> None:
    out = io.StringIO()
    logs.configure(fmt="journal", stream=out)
    structlog.get_logger("test").info("dryrun.post", text="Jöhan | Voys belt — ☎ 📞")
    assert "Jöhan | Voys belt — ☎ 📞" in out.getvalue()
    assert "\\u" not in out.getvalue()


def test_secrets_are_scrubbed_in_the_journal_format() -> None:
    out = io.StringIO()
    secret = "xoxb-very-secret-slack-token"
    logs.configure(fmt="journal", stream=out, secrets=[secret])
    structlog.get_logger("test").error("slack.failed", detail=f"token {secret} refused")
    logging.getLogger("slack_sdk").error("Authorization: Bearer %s", secret)
    assert secret not in out.getvalue()
    assert out.getvalue().count(logs.REDACTED) == 2


def run_serve(tmp_path: Path, env: dict[str, str]) -> list[str]:
    """`callbridge serve` with stdout and stderr on one stream that JOURNAL_STREAM names, as
    under the unit (StandardOutput=journal, StandardError=inherit); its lines."""
    path = tmp_path / "journal"
    with path.open("w") as stream:
        subprocess.run(
            [sys.executable, "-m", "bridge", "serve"],
            env={
                "PATH": os.environ["PATH"],
                "CALLBRIDGE_LISTEN": "127.0.0.1:0",
                **journal_of(path),
                **env,
            },
            stdout=stream,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
            timeout=60,
            check=False,
        )
    return path.read_text(encoding="utf-8").splitlines()


@pytest.mark.slow
def test_serve_under_the_journal_marks_its_errors_err(tmp_path: Path) -> None:
    # A rules file that does not load: serve logs the problem and exits 1.
    bad = tmp_path / "rules.yaml"
    bad.write_text("version: 1\ntimezone: Mars/Olympus\n", encoding="utf-8")
    lines = [split(line) for line in run_serve(tmp_path, {"CALLBRIDGE_RULES": str(bad)})]
    assert lines, "serve logged nothing"
    errors = [d["event"] for n, d in lines if n <= 3]
    assert "serve.rules_invalid" in errors
    assert all(d["level"] == "error" for n, d in lines if n <= 3)


@pytest.mark.slow
def test_invalid_settings_are_err_on_stderr_under_the_journal(tmp_path: Path) -> None:
    lines = run_serve(tmp_path, {"CALLBRIDGE_RETENTION": "two weeks"})
    assert lines[0].startswith("<3>callbridge: CALLBRIDGE_RETENTION: expected a duration")
    assert lines[-1] == "<3>callbridge: fix the settings above, then start again"
