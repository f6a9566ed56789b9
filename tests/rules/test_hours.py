"""Hours in local wall-clock time across Europe/Amsterdam's DST changes, and closed dates."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bridge.rules.hours import is_open

from .helpers import rules

HOURS = """\
  shop:
    mon-fri: "08:30-17:30"
    sun: "02:00-03:00"
  always:
    mon-sun: "00:00-24:00"
    closed: [2026-12-25, "2027-01-01..2027-01-02"]
routes:
  - {name: all, live: support}
"""


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# (UTC instant, schedule, open?) -- local times worked out by hand:
# CET = UTC+1 until Sun 2026-03-29 01:00 UTC, then CEST = UTC+2 until Sun 2026-10-25 01:00 UTC.
CASES = [
    (utc(2026, 3, 27, 7, 45), "shop", True),  # Fri 08:45 CET
    (utc(2026, 3, 27, 7, 15), "shop", False),  # Fri 08:15 CET
    (utc(2026, 3, 30, 6, 45), "shop", True),  # Mon 08:45 CEST: same wall clock, 1h earlier UTC
    (utc(2026, 3, 27, 6, 45), "shop", False),  # Fri 07:45 CET: same UTC time, before opening
    (utc(2026, 3, 30, 15, 29), "shop", True),  # Mon 17:29 CEST
    (utc(2026, 3, 30, 15, 30), "shop", False),  # Mon 17:30 CEST: the end is exclusive
    (utc(2026, 3, 29, 0, 59), "shop", False),  # Sun 01:59 CET
    (utc(2026, 3, 29, 1, 0), "shop", False),  # Sun 03:00 CEST: 02:00-03:00 never happened
    (utc(2026, 10, 25, 0, 30), "shop", True),  # Sun 02:30 CEST (first time)
    (utc(2026, 10, 25, 1, 30), "shop", True),  # Sun 02:30 CET (second time)
    (utc(2026, 10, 25, 2, 0), "shop", False),  # Sun 03:00 CET
    (utc(2026, 10, 23, 6, 45), "shop", True),  # Fri 08:45 CEST
    (utc(2026, 10, 26, 6, 45), "shop", False),  # Mon 07:45 CET: same UTC time, now too early
    (utc(2026, 10, 26, 7, 45), "shop", True),  # Mon 08:45 CET
    (utc(2026, 12, 24, 22, 59), "always", True),  # Thu 24 Dec 23:59 CET
    (utc(2026, 12, 24, 23, 0), "always", False),  # Fri 25 Dec 00:00 CET: closed date
    (utc(2026, 12, 25, 22, 59), "always", False),  # Fri 25 Dec 23:59 CET
    (utc(2026, 12, 25, 23, 0), "always", True),  # Sat 26 Dec 00:00 CET
    (utc(2027, 1, 2, 12, 0), "always", False),  # in the closed range
    (utc(2027, 1, 2, 23, 0), "always", True),  # Sun 3 Jan 00:00 CET, after the range
]


@pytest.mark.parametrize(
    ("at", "name", "expected"), CASES, ids=[f"{c[0]:%m-%dT%H:%MZ}-{c[1]}" for c in CASES]
)
def test_is_open(at: datetime, name: str, expected: bool) -> None:
    ruleset = rules(HOURS)
    assert is_open(ruleset.hours[name], at) is expected


def test_several_ranges_per_day_and_own_timezone() -> None:
    body = """\
  lunch_break:
    timezone: America/New_York
    mon-fri: ["09:00-12:00", "13:00-17:00"]
routes:
  - {name: all, live: support}
"""
    hours = rules(body).hours["lunch_break"]
    assert is_open(hours, utc(2026, 7, 1, 15, 59))  # Wed 11:59 EDT
    assert not is_open(hours, utc(2026, 7, 1, 16, 30))  # Wed 12:30 EDT
    assert is_open(hours, utc(2026, 7, 1, 17, 0))  # Wed 13:00 EDT
    assert not is_open(hours, utc(2026, 7, 4, 15, 0))  # Saturday
