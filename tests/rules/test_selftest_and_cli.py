"""The rules file's own tests, and the `check` / `route` commands end to end."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from bridge.cli import main as cli_main
from bridge.cli import rules as cli
from bridge.rules import RulesError, load_text

from .helpers import HEADER

REPO = Path(__file__).resolve().parents[2]
RULES = (
    HEADER
    + """\
routes:
  - name: support line
    when: {direction: inbound, destination: "+31508009000"}
    live: support
    missed: [support, oncall]
tests:
  - name: missed support call alerts on-call
    call: {destination: "+31508009000", at: "2026-12-01T23:10", missed: true}
    expect: {live: [support], missed: [support]}
"""
)


def test_failing_rules_test_is_rejected_with_a_diff() -> None:
    with pytest.raises(RulesError) as caught:
        load_text(RULES, "r.yaml")
    (problem,) = caught.value.problems
    assert (problem.line, problem.col, problem.path) == (17, 5, "tests[0]")
    assert str(problem) == (
        'r.yaml:17:5: tests[0]: test "missed support call alerts on-call" failed '
        "(fix the rules or the test):\n"
        "    missed: expected [support], got [support, oncall]\n"
        "    matched routes: support line"
    )


def test_passing_rules_tests_load() -> None:
    fixed = RULES.replace(
        "missed: [support]}", "missed: [oncall, support], routes: [support line]}"
    )
    assert len(load_text(fixed, "r.yaml").tests) == 1


def test_dst_gap_time_in_a_test_is_an_error() -> None:
    text = RULES.replace("2026-12-01T23:10", "2026-03-29T02:30")
    with pytest.raises(RulesError) as caught:
        load_text(text, "r.yaml")
    assert [str(p) for p in caught.value.problems] == [
        'r.yaml:18:45: tests[0].call.at: "2026-03-29T02:30" does not exist in Europe/Amsterdam '
        "(the clocks skip that hour for daylight saving time; pick another time)"
    ]


def check(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    cli.configure_check(parser)
    return cli.run_check(parser.parse_args(argv))


def route(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    cli.configure_route(parser)
    return cli.run_route(parser.parse_args(argv))


@pytest.mark.parametrize("path", sorted((REPO / "rules").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_rules_file_passes_check(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert check([str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"OK: {path} (")
    assert out.rstrip().endswith("tests passed)")


def test_check_reports_every_problem_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(RULES)
    assert check([str(bad)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f'{bad}:17:5: tests[0]: test "missed support call')
    assert captured.err.endswith(f"{bad}: 1 problem; the rules were not loaded\n")


def test_check_ok_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(RULES.replace("missed: [support]}", "missed: [support, oncall]}"))
    assert check([str(good)]) == 0
    assert capsys.readouterr().out == f"OK: {good} (1 route, 3 destinations, 1 test passed)\n"


def test_check_several_files_shows_every_files_problems_and_fails_if_any_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(RULES.replace("missed: [support]}", "missed: [support, oncall]}"))
    failing_test = tmp_path / "failing-test.yaml"
    failing_test.write_text(RULES)
    bad_zone = tmp_path / "bad-zone.yaml"
    bad_zone.write_text(good.read_text().replace("Europe/Amsterdam", "Mars/Olympus"))
    missing = tmp_path / "missing.yaml"

    paths = [good, failing_test, bad_zone, missing]
    assert cli_main(["check", *map(str, paths)]) == 1
    captured = capsys.readouterr()
    assert captured.out == f"OK: {good} (1 route, 3 destinations, 1 test passed)\n"
    err = captured.err.splitlines()
    assert err[0].startswith(f'{failing_test}:17:5: tests[0]: test "missed support call')
    assert f"{failing_test}: 1 problem; the rules were not loaded" in err
    assert f'{bad_zone}:2:11: timezone: unknown time zone "Mars/Olympus"' in "\n".join(err)
    assert f"{bad_zone}: 1 problem; the rules were not loaded" in err
    assert err[-2].startswith(f"{missing}: cannot read the rules file")
    assert err[-1] == (f"4 rules files checked; 3 failed: {failing_test}, {bad_zone}, {missing}")


def test_check_several_good_files_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shipped = sorted((REPO / "rules").glob("*.yaml"))
    assert len(shipped) > 1
    assert cli_main(["check", *map(str, shipped)]) == 0
    captured = capsys.readouterr()
    assert [line.split(" (")[0] for line in captured.out.splitlines()] == [
        *(f"OK: {p}" for p in shipped),
        f"{len(shipped)} rules files checked; all OK",
    ]
    assert captured.err == ""


def test_check_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check([str(tmp_path / "nope.yaml")]) == 1
    assert "cannot read the rules file: No such file or directory" in capsys.readouterr().err


def test_check_uses_env_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    good = tmp_path / "env.yaml"
    good.write_text(RULES.replace("missed: [support]}", "missed: [support, oncall]}"))
    monkeypatch.setenv("CALLBRIDGE_RULES", str(good))
    assert check([]) == 0
    assert capsys.readouterr().out.startswith(f"OK: {good} ")


def _event(call_id: str, ts: str, status: str, **extra: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "call_id": call_id,
        "timestamp": ts,
        "status": status,
        "version": "v2",
        "direction": "inbound",
        "caller": {"number": "+31501234567", "name": "A"},
        "destination": {"number": "+31508009000"},
    }
    doc.update(extra)
    return doc


def missed_call_file(tmp_path: Path) -> Path:
    """Events of one call nobody answers, Tuesday 23:10 in Amsterdam."""
    events = tmp_path / "missed.json"
    events.write_text(
        json.dumps(
            [
                _event("m1", "2026-12-01T22:10:00Z", "created"),
                _event("m1", "2026-12-01T22:10:30Z", "ended", reason="no-answer"),
            ]
        )
    )
    return events


def test_route_dry_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.replace("missed: [support]}", "missed: [support, oncall]}"))
    b = {"number": "+31508009000", "name": "B", "account_number": 201}
    c = {"number": "+31508009001", "name": "C", "account_number": 202}
    missed = [  # 23:10 CET on a Tuesday, nobody answers
        _event("m1", "2026-12-01T22:10:00Z", "created"),
        _event(
            "m1",
            "2026-12-01T22:10:01Z",
            "ringing",
            destination={"number": "+31508009000", "targets": [b]},
        ),
        _event("m1", "2026-12-01T22:10:30Z", "ended", reason="no-answer"),
    ]
    jsonl = tmp_path / "missed.jsonl"
    jsonl.write_text("\n".join(json.dumps(e) for e in missed) + "\n{oops\n")
    # A warm transfer whose `ended` arrives on the consult call's id: one story, not two.
    transfer = [
        _event(
            "t1",
            "2026-12-01T09:00:00Z",
            "in-progress",
            destination={"number": "+31508009000", "target": b},
        ),
        _event(
            "t2",
            "2026-12-01T09:01:00Z",
            "in-progress",
            direction="outbound",
            destination={"number": "202", "target": c},
        ),
        _event(
            "t2",
            "2026-12-01T09:02:00Z",
            "warm-transfer",
            merged_id="t1",
            redirector=b,
            destination={"number": "+31508009000", "target": c},
        ),
        _event("t2", "2026-12-01T09:05:00Z", "ended", reason="completed"),
    ]
    whole = tmp_path / "transfer.json"
    whole.write_text(json.dumps(transfer))

    assert route(["--rules", str(rules), str(jsonl), str(whole)]) == 1  # the bad line counts
    captured = capsys.readouterr()
    assert captured.err == f"{jsonl}:4: skipped: not a JSON document\n"
    out = captured.out.splitlines()
    # Calls come out in order of their start; the transfer story (10:00 CET) comes first.
    assert out[0] == (
        "call t1 (merged t2): ⏹ inbound call from A (+31501234567) to +31508009000: ended, "
        "answered by "
        "B (+31508009000), talked 5m00s [1 transfer]"
    )
    assert out[1] == "  routes: support line"
    assert out[2] == ("  live -> support (Slack channel C0SUPPORT01) from support line:")
    assert "      thread: 10:02:00 warm transfer by B (+31508009000) to C (+31508009001)" in out
    missed_head = out.index(
        "call m1: ⏹ inbound call from A (+31501234567) to +31508009000: MISSED "
        "(no-answer), rang 30s at B (+31508009000)"
    )
    assert out[missed_head + 1] == "  routes: support line"
    assert (
        "  missed -> oncall (Slack channel C0ONCALL001) from support line, mentioning "
        "<!subteam^S0ONCALL1>:"
    ) in out[missed_head:]
    assert "      thread: 23:10:30 ended (no-answer)" in out[missed_head:]
    assert out[-1] == (f"2 calls from 7 events routed with {rules}; 1 input problem, see above")


def test_route_with_bad_rules_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 2\n")
    assert route(["--rules", str(rules), "-"]) == 1
    assert f"{rules}:1:10: version: unsupported version" in capsys.readouterr().err


def test_route_provider_fixtures(capsys: pytest.CaptureFixture[str]) -> None:
    fixtures = REPO / "tests" / "fixtures" / "voys"
    if not fixtures.is_dir():
        pytest.fail("provider fixtures missing")
    names = ["ringing.json", "in-progress.json", "ended.json"]
    example = str(REPO / "rules" / "example.yaml")
    assert route(["--rules", example, *(str(fixtures / n) for n in names)]) == 0
    out = capsys.readouterr().out.splitlines()
    # 2017-07-20 13:17:39Z is a Thursday 15:17 CEST: the support line, answered, no alert.
    assert out[0].startswith(
        "call 24c562241e9f-1502721212.100: ⏹ inbound call from A (+31501234567) to "
        "+31508009000: ended"
    )
    assert out[1] == "  routes: support line"
    assert not any(line.startswith("  missed") for line in out)


def test_route_shows_each_destination_the_mentions_its_platform_can_show(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        HEADER
        + """\
routes:
  - name: everything
    missed: [oncall, sales]
    mention: ["<!here>", "jan@example.com", "@team"]
"""
    )
    assert route(["--rules", str(rules), str(missed_call_file(tmp_path))]) == 0
    out = capsys.readouterr().out.splitlines()
    assert (
        "  missed -> oncall (Slack channel C0ONCALL001) from everything, mentioning "
        "<!here> @team <!subteam^S0ONCALL1>:"
    ) in out
    assert (
        "  missed -> sales (Teams conversation 19:sales@thread.tacv2) from everything, "
        "mentioning jan@example.com @team:"
    ) in out


def test_check_reads_a_file_not_in_utf8_as_a_problem_at_its_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    latin1 = tmp_path / "latin1.yaml"
    # Line 3: "# Zoë's café" with "ë" in UTF-8 (one character) and "é" in Latin-1.
    latin1.write_bytes(b"version: 1\ntimezone: Europe/Amsterdam\n# Zo\xc3\xab's caf\xe9\n")
    assert check([str(latin1)]) == 1
    assert capsys.readouterr().err.splitlines()[0] == (
        f"{latin1}:3:12: not UTF-8 text (byte 0xe9): save the file as UTF-8"
    )


def test_route_says_which_event_file_cannot_be_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.replace("missed: [support]}", "missed: [support, oncall]}"))
    missing, latin1 = tmp_path / "nofile.jsonl", tmp_path / "latin1.jsonl"
    latin1.write_bytes(b'{"caller": "caf\xe9"}\n')
    assert route(["--rules", str(rules), str(missing), str(latin1)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"{missing}: cannot read the events: No such file or directory",
        f"{latin1}: cannot read the events: not UTF-8 text (invalid continuation byte)",
    ]


def test_route_routes_with_rules_whose_own_tests_fail_and_warns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)  # its test expects an on-call alert the routes do not send
    assert route(["--rules", str(rules), str(missed_call_file(tmp_path))]) == 0
    captured = capsys.readouterr()
    err = captured.err.splitlines()
    assert err[0].startswith(f'warning: {rules}:17:5: tests[0]: test "missed support call')
    assert err[-1] == (
        f"warning: {rules}: its own tests fail (1 problem): `serve` and `check` refuse it; "
        "routed all the same"
    )
    assert "  missed -> support (Slack channel C0SUPPORT01) from support line:" in (
        captured.out.splitlines()
    )
    assert check([str(rules)]) == 1  # check still refuses it
