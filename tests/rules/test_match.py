"""Table-driven matching: inline YAML routes + a folded call -> routes and deliveries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from bridge.core.calls import Call
from bridge.rules import Delivery, is_internal, route

from .helpers import call, person, rules

DAY = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)  # Tuesday 11:00 in Amsterdam: office open
NIGHT = datetime(2026, 12, 1, 22, 10, tzinfo=UTC)  # Tuesday 23:10 in Amsterdam: closed
CHRISTMAS = datetime(2026, 12, 25, 10, 0, tzinfo=UTC)  # Friday 11:00, a closed date
B = person("201", "B", account=201, email="b@example.com")
ONCALL = "<!subteam^S0ONCALL1>"


@dataclass(frozen=True)
class Case:
    id: str
    routes: str
    call: Call
    matched: tuple[str, ...]
    deliveries: tuple[tuple[str, str, str, tuple[str, ...]], ...]  # dest, kind, route, mentions


TWO = """\
routes:
  - name: A
    when: {destination: "+31508009000"}
    live: support
    continue: CONT
  - name: B
    when: {direction: inbound}
    live: sales
"""
SUPPORT_MISSED = """\
routes:
  - name: line
    live: support
    missed: [support, oncall]
    summary: support
"""
INTERNAL = """\
routes:
  - name: internal
    when: {internal: true}
    live: oncall
  - name: external
    live: support
"""

CASES = [
    Case(
        "first match wins",
        TWO.replace("CONT", "false"),
        call(DAY, answered=B, ended=False),
        ("A",),
        (("support", "live", "A", ()),),
    ),
    Case(
        "continue tries later routes",
        TWO.replace("CONT", "true"),
        call(DAY, answered=B, ended=False),
        ("A", "B"),
        (("support", "live", "A", ()), ("sales", "live", "B", ())),
    ),
    Case(
        "drop stops and posts nothing",
        "routes:\n  - {name: ignore, when: {internal: true}, drop: true}\n"
        "  - {name: all, live: support}\n",
        call(DAY, direction="outbound", dialled="202", caller=B),
        ("ignore",),
        (),
    ),
    Case(
        "drop keeps what earlier continue routes chose",
        "routes:\n  - {name: all, live: support, continue: true}\n"
        "  - {name: ignore, when: {internal: true}, drop: true}\n  - {name: more, live: sales}\n",
        call(DAY, direction="outbound", dialled="202", caller=B),
        ("all", "ignore"),
        (("support", "live", "all", ()),),
    ),
    Case(
        "glob * matches the rest",
        "routes:\n  - {name: g, when: {destination: '+3150800901*'}, live: support}\n",
        call(DAY, dialled="+31508009012"),
        ("g",),
        (("support", "live", "g", ()),),
    ),
    Case(
        "glob * needs its prefix",
        "routes:\n  - {name: g, when: {destination: '+3150800901*'}, live: support}\n",
        call(DAY, dialled="+3150800902"),
        (),
        (),
    ),
    Case(
        "glob ? is exactly one digit",
        "routes:\n  - {name: g, when: {destination: '+3150800900?'}, live: support}\n",
        call(DAY, dialled="+315080090012"),
        (),
        (),
    ),
    Case(
        "spaces in a number pattern are ignored",
        "routes:\n  - {name: c, when: {caller: '+31 50 123 4567'}, live: support}\n",
        call(DAY),
        ("c",),
        (("support", "live", "c", ()),),
    ),
    Case(
        "missed call: live, missed alerts with the destination's mention, summary",
        SUPPORT_MISSED,
        call(DAY, rung=(B,)),
        ("line",),
        (
            ("support", "live", "line", ()),
            ("support", "missed", "line", ()),
            ("oncall", "missed", "line", (ONCALL,)),
            ("support", "summary", "line", ()),
        ),
    ),
    Case(
        "still ringing: only live",
        SUPPORT_MISSED,
        call(DAY, rung=(B,), ended=False),
        ("line",),
        (("support", "live", "line", ()),),
    ),
    Case(
        "answered and ended: live and summary, no missed",
        SUPPORT_MISSED,
        call(DAY, rung=(B,), answered=B),
        ("line",),
        (("support", "live", "line", ()), ("support", "summary", "line", ())),
    ),
    Case(
        "min_ring: hung up sooner, no alert",
        "routes:\n  - {name: m, missed: support, min_ring: 20s}\n",
        call(DAY, ring=timedelta(seconds=19)),
        ("m",),
        (),
    ),
    Case(
        "min_ring: rang exactly that long, alert",
        "routes:\n  - {name: m, missed: support, min_ring: 20}\n",
        call(DAY, ring=timedelta(seconds=20)),
        ("m",),
        (("support", "missed", "m", ()),),
    ),
    Case(
        "min_ring: a caller hanging up before anyone rang, no alert",
        "routes:\n  - {name: m, missed: support, min_ring: 5s}\n",
        call(DAY, reason="cancelled", ring=timedelta(0)),
        ("m",),
        (),
    ),
    Case(
        "min_ring: a busy line rang nobody but the caller did not give up, alert",
        "routes:\n  - {name: m, missed: support, min_ring: 5s}\n",
        call(DAY, reason="busy", ring=timedelta(0)),
        ("m",),
        (("support", "missed", "m", ()),),
    ),
    Case(
        "min_ring: a failed call, alert",
        "routes:\n  - {name: m, missed: support, min_ring: 5s}\n",
        call(DAY, reason="failed", ring=timedelta(seconds=1)),
        ("m",),
        (("support", "missed", "m", ()),),
    ),
    Case(
        "missed_reason excludes busy",
        "routes:\n  - {name: m, missed: support, missed_reason: [no-answer, abandon]}\n",
        call(DAY, reason="busy"),
        ("m",),
        (),
    ),
    Case(
        "missed_reason includes no-answer",
        "routes:\n  - {name: m, missed: support, missed_reason: [no-answer, abandon]}\n",
        call(DAY, reason="no-answer"),
        ("m",),
        (("support", "missed", "m", ()),),
    ),
    Case(
        "internal: outbound to an extension",
        INTERNAL,
        call(DAY, direction="outbound", dialled="202", caller=B),
        ("internal",),
        (("oncall", "live", "internal", (ONCALL,)),),
    ),
    Case(
        "internal: outbound to a full number that rings a colleague",
        INTERNAL,
        call(
            DAY,
            direction="outbound",
            dialled="+31508009001",
            caller=B,
            rung=(person("+31508009001", "C", account=202),),
        ),
        ("internal",),
        (("oncall", "live", "internal", (ONCALL,)),),
    ),
    Case(
        "not internal: outbound to a mobile number",
        INTERNAL,
        call(
            DAY, direction="outbound", dialled="0612345678", caller=B, rung=(person("0612345678"),)
        ),
        ("external",),
        (("support", "live", "external", ()),),
    ),
    Case(
        "not internal: outbound to the emergency number",
        INTERNAL,
        call(DAY, direction="outbound", dialled="112", caller=B),
        ("external",),
        (("support", "live", "external", ()),),
    ),
    Case(
        "not internal: inbound from a colleague's extension",
        INTERNAL,
        call(DAY, caller=person("203", "D", account=203), rung=(B,)),
        ("external",),
        (("support", "live", "external", ()),),
    ),
    Case(
        "during office hours",
        "routes:\n  - {name: day, when: {during: office}, live: support}\n"
        "  - {name: other, live: oncall}\n",
        call(DAY),
        ("day",),
        (("support", "live", "day", ()),),
    ),
    Case(
        "outside office hours at night",
        "routes:\n  - {name: night, when: {outside: office}, live: oncall}\n",
        call(NIGHT),
        ("night",),
        (("oncall", "live", "night", (ONCALL,)),),
    ),
    Case(
        "outside office hours on a closed date",
        "routes:\n  - {name: night, when: {outside: office}, live: oncall}\n",
        call(CHRISTMAS),
        ("night",),
        (("oncall", "live", "night", (ONCALL,)),),
    ),
    Case(
        "caller_name regex ignores case",
        "routes:\n  - {name: n, when: {caller_name: '^klant'}, live: support}\n",
        call(DAY),
        ("n",),
        (("support", "live", "n", ()),),
    ),
    Case(
        "caller_name never matches a caller without a name",
        "routes:\n  - {name: n, when: {caller_name: '.*'}, live: support}\n",
        call(DAY, caller=person("+31501234567")),
        (),
        (),
    ),
    Case(
        "target by e-mail glob of someone rung",
        "routes:\n  - {name: t, when: {target: '*@EXAMPLE.com'}, live: support}\n",
        call(DAY, rung=(B,), ended=False),
        ("t",),
        (("support", "live", "t", ()),),
    ),
    Case(
        "target by number of whoever answered (not rung: pickup)",
        "routes:\n  - {name: t, when: {target: '201'}, live: support}\n",
        call(DAY, rung=(person("202", "C", account=202),), answered=B),
        ("t",),
        (("support", "live", "t", ()),),
    ),
    Case(
        "target not reached",
        "routes:\n  - {name: t, when: {target: [c@example.com, '209']}, live: support}\n",
        call(DAY, rung=(B,)),
        (),
        (),
    ),
    Case(
        "unmatched goes to the fallback",
        "routes:\n  - {name: s, when: {direction: outbound}, live: sales}\nunmatched: oncall\n",
        call(DAY),
        (),
        (("oncall", "live", "unmatched", (ONCALL,)),),
    ),
    Case(
        "one delivery per destination and kind, mentions joined in route order",
        "routes:\n  - {name: r1, missed: oncall, mention: '<@U1>', continue: true}\n"
        "  - {name: r2, missed: [oncall, support], mention: ['<@U2>', '<@U1>']}\n",
        call(NIGHT),
        ("r1", "r2"),
        (
            ("oncall", "missed", "r1", ("<@U1>", ONCALL, "<@U2>")),
            ("support", "missed", "r2", ("<@U2>", "<@U1>")),
        ),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_route(case: Case) -> None:
    result = route(rules(case.routes), case.call)
    assert result.matched_routes == case.matched
    assert result.unmatched == (not case.matched)
    expected = tuple(Delivery(d, k, r, m) for d, k, r, m in case.deliveries)  # type: ignore[arg-type]
    assert result.deliveries == expected


def test_internal_definition_directly() -> None:
    colleague_call = call(DAY, direction="outbound", dialled="12345", caller=B)
    seven_digits = call(DAY, direction="outbound", dialled="1234567", caller=B)
    leading_zero = call(DAY, direction="outbound", dialled="0201", caller=B)
    assert is_internal(colleague_call)
    assert not is_internal(seven_digits)
    assert not is_internal(leading_zero)
