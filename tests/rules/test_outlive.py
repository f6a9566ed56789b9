"""Callback windows that retention would cut short (bridge.rules.outlive). Every expected span
is worked out by hand in the comments (office: mon-fri 08:30-17:30 Europe/Amsterdam, closed
Fri 2026-12-25; CET = UTC+1)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bridge.rules.model import CallbackPolicy
from bridge.rules.outlive import longest, outliving

from .helpers import rules

NOW = datetime(2026, 12, 4, 5, 0, tzinfo=UTC)  # Fri 06:00 CET
D = timedelta(days=1)
THREE_WORKING_DAYS = rules(
    "routes:\n"
    "  - {name: support, missed: support, callback: {hours: office, callback_window: 27h}}\n"
)


def three_working_days() -> CallbackPolicy:
    policy = THREE_WORKING_DAYS.routes[0].actions.callback
    assert policy is not None
    return policy


def test_without_hours_the_window_is_the_span() -> None:
    ruleset = rules(
        "routes:\n"
        "  - {name: short, missed: support}\n"  # the default window, 3d
        "  - {name: long, missed: support, callback: {callback_window: 15d}}\n"
    )
    found = outliving(ruleset, 14 * D, NOW)
    assert [(f.route, f.span) for f in found] == [("long", 15 * D)]
    assert found[0].message(14 * D) == (
        'route "long": its callback_window is 15d, not shorter than CALLBRIDGE_RETENTION '
        "(14d): retention would delete an open case's first missed call and the case with it "
        "(its alert would keep saying it waits for a callback); shorten callback_window or "
        "raise CALLBRIDGE_RETENTION"
    )
    assert outliving(ruleset, 15 * D + timedelta(seconds=1), NOW) == []


def test_with_hours_the_longest_wait_is_over_christmas() -> None:
    # 27h of open time is three working days. Opened as the office closes on Tue 2026-12-22
    # 17:30 CET (16:30 UTC): Wed 23 (9h), Thu 24 (9h), Fri 25 closed, the weekend, Mon 28
    # (9h) until 17:30: 6 days. Other weeks: 5 days at most (and an hour, below).
    policy = three_working_days()
    assert longest(policy, NOW) == (6 * D, datetime(2026, 12, 22, 16, 30, tzinfo=UTC))
    found = outliving(THREE_WORKING_DAYS, 6 * D, NOW)
    assert [f.route for f in found] == ["support"]
    assert (
        found[0]
        .message(6 * D)
        .startswith(
            'route "support": its callback_window 1d3h counts only while hours "office" is open, '
            "so a case opened Tue 2026-12-22 17:30 stays open 6d, not shorter than "
            "CALLBRIDGE_RETENTION (6d): "
        )
    )
    assert outliving(THREE_WORKING_DAYS, 6 * D + timedelta(minutes=1), NOW) == []


def test_after_christmas_the_longest_wait_is_the_week_the_clocks_go_back() -> None:
    # From Sat 2026-12-26 on, no closed day is left within the year: a wait that spans a
    # weekend takes 5 days (Wed 17:30 to Mon 17:30, ..., Fri 17:30 to Wed 17:30), and one hour
    # more across the night summer time ends. The first of those: Wed 2027-10-27 17:30 CEST
    # (15:30 UTC) to Mon 2027-11-01 17:30 CET (16:30 UTC).
    policy = three_working_days()
    assert longest(policy, datetime(2026, 12, 26, 12, 0, tzinfo=UTC)) == (
        5 * D + timedelta(hours=1),
        datetime(2027, 10, 27, 15, 30, tzinfo=UTC),
    )


def test_routes_that_open_no_cases_are_left_out_and_unmatched_is_named() -> None:
    ruleset = rules(
        "callbacks: {callback_window: 20d}\n"
        "routes:\n"
        "  - {name: live-only, live: support}\n"  # no missed alert: opens no case
        "  - {name: quiet, missed: support, callback: off}\n"
        "unmatched: {missed: support}\n"
    )
    found = outliving(ruleset, 14 * D, NOW)
    assert [(f.route, f.span) for f in found] == [("unmatched", 20 * D)]
    assert (
        found[0]
        .message(14 * D)
        .startswith("the `unmatched` fallback: its callback_window is 20d, ")
    )
