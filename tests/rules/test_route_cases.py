"""`callbridge route` tells what each call does to callback cases, and ends with the cases
all the input's calls make (folded per scope and number, the clock at the last event)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from bridge.cli import rules as cli

from .helpers import HEADER

RULES = (
    HEADER
    + """\
callbacks: {escalate_after: 45m}
routes:
  - name: ignore internal calls
    when: {internal: true}
    drop: true
  - name: support
    when: {direction: inbound}
    live: support
    missed: [support, oncall]
  - name: callbacks
    when: {direction: outbound}
    live: support
"""
)
CUSTOMER = {"number": "+31612345678", "name": None}
OTHER = {"number": "+31687654321", "name": "Bram"}
ANON = {"number": "anonymous", "name": None}
ALICE = {"number": "201", "name": "Alice", "account_number": 201}
BOB = {"number": "202", "name": "Bob", "account_number": 202}
LINE = "+31508009000"
X = "\N{MULTIPLICATION SIGN}"  # missed 2x


def inbound(
    call_id: str, caller: dict[str, Any], start: str, end: str, *, by: Any = None
) -> list[dict[str, Any]]:
    """Times are UTC HH:MM:SS on Tue 2026-12-01 (CET = UTC+1)."""
    day = "2026-12-01T"
    common = {"call_id": call_id, "version": "v2", "direction": "inbound", "caller": caller}
    events = [
        {
            **common,
            "timestamp": f"{day}{start}Z",
            "status": "created",
            "destination": {"number": LINE},
        },
        {
            **common,
            "timestamp": f"{day}{start}Z",
            "status": "ringing",
            "destination": {"number": LINE, "targets": [BOB]},
        },
    ]
    if by is not None:
        events.append(
            {
                **common,
                "timestamp": f"{day}{end}Z",
                "status": "in-progress",
                "destination": {"number": LINE, "target": by},
            }
        )
    reason = "completed" if by is not None else "no-answer"
    events.append(
        {
            **common,
            "timestamp": f"{day}{end}Z",
            "status": "ended",
            "reason": reason,
            "destination": {"number": LINE},
        }
    )
    return events


def outbound(
    call_id: str, dialled: str, start: str, end: str, *, answered: bool
) -> list[dict[str, Any]]:
    day = "2026-12-01T"
    callee = {"number": dialled, "name": None}
    common = {"call_id": call_id, "version": "v2", "direction": "outbound", "caller": ALICE}
    events = [
        {
            **common,
            "timestamp": f"{day}{start}Z",
            "status": "ringing",
            "destination": {"number": dialled, "targets": [callee]},
        },
    ]
    if answered:
        events.append(
            {
                **common,
                "timestamp": f"{day}{end}Z",
                "status": "in-progress",
                "destination": {"number": dialled, "target": callee},
            }
        )
    events.append(
        {
            **common,
            "timestamp": f"{day}{end}Z" if not answered else f"{day}{end[:-2]}59Z",
            "status": "ended",
            "reason": "completed" if answered else "no-answer",
            "destination": {"number": dialled},
        }
    )
    return events


def run(
    tmp_path: Path, rules: str, events: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> list[str]:
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(rules)
    events_file = tmp_path / "events.jsonl"
    events_file.write_text("".join(json.dumps(e) + "\n" for e in events))
    parser = argparse.ArgumentParser()
    cli.configure_route(parser)
    assert cli.run_route(parser.parse_args(["--rules", str(rules_file), str(events_file)])) == 0
    return capsys.readouterr().out.splitlines()


def test_each_call_says_what_it_does_to_cases_and_the_summary_folds_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = [
        # The story: missed at 14:02 and 14:09, Alice tries at 14:25 (no answer) and
        # calls back at 14:32 (answered), dialling the number nationally.
        *inbound("m1", CUSTOMER, "13:02:00", "13:02:30"),
        *inbound("m2", CUSTOMER, "13:09:00", "13:09:30"),
        *outbound("o1", "0612345678", "13:25:00", "13:25:20", answered=False),
        *outbound("o2", "0612345678", "13:31:50", "13:32:00", answered=True),
        # Bram misses at 14:40 and gets through at 14:50:10, answered by Bob.
        *inbound("b1", OTHER, "13:40:00", "13:40:30"),
        *inbound("b2", OTHER, "13:50:00", "13:50:10", by=BOB),
        # Anonymous: alerts, no case.
        *inbound("a1", ANON, "14:00:00", "14:00:30"),
        # A callback to a number without an open case.
        *outbound("o3", "0201234567", "14:10:00", "14:10:10", answered=True),
        # Wim misses at 15:00:10 and is still waiting at the last event, 16:00:10.
        *inbound("w1", {"number": "+31611111111", "name": "Wim"}, "14:00:10", "14:00:40"),
        *inbound("last", ANON, "15:00:00", "15:00:10", by=BOB),
    ]
    out = run(tmp_path, RULES, events, capsys)
    # m2 stacks on m1's case: no alert of its own (the bridge posts none, only a reply).
    m2 = out[next(i for i, line in enumerate(out) if line.startswith("call m2:")) :]
    m2 = m2[: next(i for i, line in enumerate(m2) if line.startswith("  case: ")) + 1]
    alerts = [line for line in m2 if line.startswith("      alert:")]
    assert alerts == []
    told = "      no alert of its own: the open case's alert (call m1) counts it"
    assert m2.count(told) == len([line for line in m2 if line.startswith("  missed -> ")]) > 0
    cases = [line for line in out if line.startswith("  case: ")]
    oncall = "<!subteam^S0ONCALL1>"
    assert cases == [
        "  case: opens a case for +31612345678 in scope default; escalates Tue 2026-12-01 "
        f"14:47 mentioning {oncall} unless claimed, expires Fri 2026-12-04 14:02",
        "  case: stacks on the open case of +31612345678 in scope default (opened by call m1)",
        "  case: an attempt on the case of +31612345678 in scope default (opened by call m1): "
        "tried by Alice, no answer",
        "  case: closes the case of +31612345678 in scope default (opened by call m1): called "
        "back by Alice",
        "  case: opens a case for +31687654321 in scope default; escalates Tue 2026-12-01 "
        f"15:25 mentioning {oncall} unless claimed, expires Fri 2026-12-04 14:40",
        "  case: closes the case of +31687654321 in scope default (opened by call b1): got "
        "through, answered by Bob",
        '  case: none (the caller ("anonymous") has no public number)',
        "  case: opens a case for +31611111111 in scope default; escalates Tue 2026-12-01 "
        f"15:45 mentioning {oncall} unless claimed, expires Fri 2026-12-04 15:00",
        "  case: no open case of +31201234567 in scope default to close (called back by Alice)",
        '  case: none (the caller ("anonymous") has no public number)',
    ]
    summary = out[out.index("callback cases, as of Tue 2026-12-01 16:00:") + 1 : -2]
    assert summary == [
        f"  case +31611111111 (default): missed 1{X} (Tue 2026-12-01 15:00), escalated at 15:45 "
        f"mentioning {oncall}, open, waiting 1h, expires at Fri 2026-12-04 15:00",
        f"  case +31612345678 (default): missed 2{X} (Tue 2026-12-01 14:02, 14:09), tried 1{X} "
        "(Alice 14:25), called back by Alice at 14:32, 30m after the first miss",
        f"  case +31687654321 (default): missed 1{X} (Tue 2026-12-01 14:40), got through, "
        "answered by Bob at 14:50, 10m10s after the first miss",
    ]
    assert out[-1] == f"10 calls from {len(events)} events routed with {tmp_path / 'rules.yaml'}"


def test_internal_calls_drop_routes_and_expiry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = RULES.replace(
        "{escalate_after: 45m}", "{escalate_after: off, callback_window: 2h}"
    ).replace(
        "  - name: callbacks\n",
        "  - name: premium\n    when: {destination: '0900*'}\n    drop: true\n"
        "  - name: callbacks\n",
    )
    internal = outbound("i1", "202", "09:00:00", "09:00:10", answered=True)
    events = [
        *inbound("m1", CUSTOMER, "09:00:00", "09:00:30"),
        *internal,
        *outbound("p1", "09001234567", "09:30:00", "09:30:10", answered=True),
        *inbound("last", ANON, "12:00:00", "12:00:10", by=BOB),
    ]
    out = run(tmp_path, rules, events, capsys)
    assert [line for line in out if line.startswith("  case: ")] == [
        "  case: opens a case for +31612345678 in scope default; never escalates, expires Tue "
        "2026-12-01 12:00",
        "  case: none (an internal call, between colleagues)",
        "  case: no open case of +319001234567 in scope default to close (called back by Alice)",
        '  case: none (the caller ("anonymous") has no public number)',
    ]
    assert out[-4:-2] == [
        "callback cases, as of Tue 2026-12-01 13:00:",
        f"  case +31612345678 (default): missed 1{X} (Tue 2026-12-01 10:00), not called back: "
        "expired at 12:00, 2h after the first miss",
    ]


def test_no_cases(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = run(tmp_path, RULES, inbound("x", CUSTOMER, "09:00:00", "09:00:10", by=BOB), capsys)
    assert out[-4:] == [
        "",
        "callback cases: none",
        "",
        f"1 call from 4 events routed with {tmp_path / 'rules.yaml'}",
    ]
