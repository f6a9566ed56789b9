"""The rules' own tests with `case:`: how an operator checks what a call does to callback
cases, office-hours pausing included. Expected deadlines are worked out by hand."""

from __future__ import annotations

import pytest

from bridge.rules import RulesError, load_text

from .helpers import HEADER

RULES = (
    HEADER
    + """\
callbacks:
  escalate_after: 1h
  hours: office
routes:
  - name: ignore internal calls
    when: {internal: true}
    drop: true
  - name: acme
    when: {destination: "+3120111*"}
    callback: {scope: acme}
    continue: true
  - name: support
    when: {direction: inbound}
    live: support
    missed: [support, oncall]
  - name: outbound
    when: {direction: outbound}
    live: support
tests:
"""
)  # HEADER is 10 lines: `tests:` is line 29, the first test's `- name:` line 30, column 5
MISS = '{caller: "+31612345678", destination: "+31508009000", at: "2026-12-04T17:00", missed: true}'
ONCALL = "<!subteam^S0ONCALL1>"


def load(tests: str) -> list[str]:
    try:
        load_text(RULES + tests, "r.yaml")
    except RulesError as err:
        return [str(p) for p in err.problems]
    return []


def test_office_hours_pause_the_clock_and_the_test_says_when() -> None:
    # Fri 2026-12-04 17:00: 30m of escalate_after on Friday, 30m from Mon 08:30: Mon 09:00.
    # 3d = 72h of open time: 0.5h Fri, 9h Mon 12-07..Fri 12-11 and Mon 12-14..Tue 12-15
    # (63.5h), 8.5h on Wed 12-16: 17:00.
    assert (
        load(
            f"""\
  - name: a miss on Friday evening escalates on Monday morning
    call: {MISS}
    expect:
      live: [support]
      missed: [support, oncall]
      case:
        scope: default
        escalates_at: "2026-12-07T09:00"
        expires_at: "2026-12-16T17:00"
        escalate_to: ["{ONCALL}"]
"""
        )
        == []
    )


def test_a_failing_case_expectation_is_reported_with_the_difference() -> None:
    assert load(
        f"""\
  - name: wrong guesses
    call: {MISS}
    expect:
      live: [support]
      missed: [support, oncall]
      case: {{scope: acme, escalates_at: "2026-12-04T18:00", expires_at: never, escalate_to: []}}
"""
    ) == [
        'r.yaml:30:5: tests[0]: test "wrong guesses" failed (fix the rules or the test):\n'
        "    case.scope: expected acme, got default\n"
        "    case.escalates_at: expected 2026-12-04T18:00, got 2026-12-07T09:00\n"
        "    case.expires_at: expected never, got 2026-12-16T17:00\n"
        f"    case.escalate_to: expected nothing, got [{ONCALL}]\n"
        "    matched routes: support"
    ]


def test_the_scope_of_a_scope_route() -> None:
    assert (
        load(
            """\
  - name: acme's customer, missed
    call:
      {caller: "+31612345678", destination: "+31201110000", at: "2026-12-01T10:00", missed: true}
    expect:
      live: [support]
      missed: [support, oncall]
      case: {scope: acme, escalates_at: "2026-12-01T11:00"}
  - name: a callback to the customer is in the default scope, with no deadline
    call: {direction: outbound, caller: "201", destination: "0612345678", at: "2026-12-01T10:00"}
    expect: {live: [support], case: {scope: default}}
"""
        )
        == []
    )


def test_case_none() -> None:
    assert (
        load(
            """\
  - name: colleagues calling each other touch no case
    call: {direction: outbound, caller: "201", destination: "202", at: "2026-12-01T10:00"}
    expect: {case: none}
  - name: anonymous callers open no case, but alert
    call: {destination: "+31508009000", at: "2026-12-01T10:00", missed: true}
    expect: {live: [support], missed: [support, oncall], case: none}
"""
        )
        == []
    )


def test_case_none_failing_says_what_the_call_does() -> None:
    assert load(
        f"""\
  - name: a miss opens nothing?
    call: {MISS}
    expect: {{live: [support], missed: [support, oncall], case: none}}
"""
    ) == [
        'r.yaml:30:5: tests[0]: test "a miss opens nothing?" failed (fix the rules or the '
        "test):\n"
        "    case: expected none, got: opens a case for +31612345678 in scope default (or "
        f"stacks on its open one); escalates Mon 2026-12-07 09:00 mentioning {ONCALL} unless "
        "claimed, expires Wed 2026-12-16 17:00\n"
        "    matched routes: support"
    ]


def test_expecting_a_case_from_a_call_that_has_none_says_why() -> None:
    assert load(
        """\
  - name: anonymous
    call: {destination: "+31508009000", at: "2026-12-01T10:00", missed: true}
    expect: {live: [support], missed: [support, oncall], case: {}}
"""
    ) == [
        'r.yaml:30:5: tests[0]: test "anonymous" failed (fix the rules or the test):\n'
        '    case: expected a case, got none (the caller ("anonymous") has no public number)\n'
        "    matched routes: support"
    ]


def test_deadlines_of_a_call_that_closes_a_case() -> None:
    assert load(
        """\
  - name: a callback has no deadline
    call: {direction: outbound, caller: "201", destination: "0612345678", at: "2026-12-01T10:00"}
    expect: {live: [support], case: {escalates_at: never}}
"""
    ) == [
        'r.yaml:30:5: tests[0]: test "a callback has no deadline" failed (fix the rules or the '
        "test):\n"
        "    case.escalates_at: expected never, got no deadline (only a missed call that opens "
        "a case has one; this call closes an open case of +31612345678 in scope default: "
        "called back by 201)\n"
        "    matched routes: outbound"
    ]


def test_a_time_the_clock_repeats_shows_its_offset() -> None:
    """2026-10-25 02:00-03:00 happens twice in Amsterdam. Without office hours, a miss at the
    second 02:10 (CET, +01:00) escalates 30 minutes later, at the second 02:40."""
    text = RULES.replace("  escalate_after: 1h\n  hours: office\n", "  escalate_after: 30m\n")
    call = MISS.replace("2026-12-04T17:00", "2026-10-25T02:10+01:00")
    alerts = "live: [support], missed: [support, oncall]"
    tests = f"""\
  - name: first
    call: {call}
    expect: {{{alerts}, case: {{escalates_at: "2026-10-25T02:40"}}}}
  - name: second
    call: {call}
    expect: {{{alerts}, case: {{escalates_at: "2026-10-25T02:40+01:00"}}}}
"""
    with pytest.raises(RulesError) as caught:
        load_text(text + tests, "r.yaml")
    assert [str(p) for p in caught.value.problems] == [
        'r.yaml:29:5: tests[0]: test "first" failed (fix the rules or the test):\n'
        "    case.escalates_at: expected 2026-10-25T02:40+02:00, got 2026-10-25T02:40+01:00\n"
        "    matched routes: support"
    ]


BAD = [
    (
        "unknown key",
        "      case: {escalate_at: never}\n",
        [
            "r.yaml:33:14: tests[0].expect.case.escalate_at: unknown key (did you mean "
            '"escalates_at"? allowed here: scope, escalates_at, expires_at, escalate_to)'
        ],
    ),
    (
        "not a mapping",
        "      case: yes\n",
        [
            "r.yaml:33:13: tests[0].expect.case: expected `none` or a mapping of scope, "
            "escalates_at, expires_at, escalate_to, got a boolean"
        ],
    ),
    (
        "not a time",
        "      case: {expires_at: friday}\n",
        [
            'r.yaml:33:26: tests[0].expect.case.expires_at: "friday" is not a local date and '
            'time (e.g. "2026-12-01T23:10"; the rules\' timezone applies)'
        ],
    ),
    (
        "a time daylight saving skips",
        '      case: {expires_at: "2026-03-29T02:30"}\n',
        [
            'r.yaml:33:26: tests[0].expect.case.expires_at: "2026-03-29T02:30" does not exist '
            "in Europe/Amsterdam (the clocks skip that hour for daylight saving time; pick "
            "another time)"
        ],
    ),
]


@pytest.mark.parametrize(("case", "expected"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_case_expectations(case: str, expected: list[str]) -> None:
    tests = f"""\
  - name: bad
    call: {MISS}
    expect:
{case}"""
    assert load(tests) == expected
