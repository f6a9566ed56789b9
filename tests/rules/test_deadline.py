"""A case's deadlines with office hours (bridge.rules.callbacks.deadline): the clock runs only
while the schedule is open. Every expected instant is worked out by hand in the comments
(CET = UTC+1; CEST = UTC+2 from Sun 2026-03-29 01:00 UTC until Sun 2026-10-25 01:00 UTC)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bridge.rules.callbacks import deadline
from bridge.rules.model import Hours

from .helpers import rules

SCHEDULES = """\
  lunch:
    mon-fri: ["08:30-12:30", "13:00-17:30"]
  always:
    mon-sun: "00:00-24:00"
    closed: [2026-12-25]
  nights:
    sun: "00:00-06:00"
  new_york:
    timezone: America/New_York
    mon-fri: "09:00-17:00"
  shut: {}
routes:
  - {name: all, live: support}
"""
HOURS = rules(SCHEDULES).hours


def utc(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


M = timedelta(minutes=1)
H = timedelta(hours=1)

# (what, start, duration, schedule, expected); office is mon-fri 08:30-17:30, closed 2026-12-25
CASES = [
    # Tue 2026-12-01 10:00 CET + 30m, open all along: 10:30 CET.
    ("open hours", utc(2026, 12, 1, 9, 0), 30 * M, "office", utc(2026, 12, 1, 9, 30)),
    # Tue 08:30 CET (opening) + 30m: 09:00.
    ("at opening", utc(2026, 12, 1, 7, 30), 30 * M, "office", utc(2026, 12, 1, 8, 0)),
    # Tue 17:00 + 30m ends exactly at closing time, 17:30 CET (not the next morning).
    ("up to closing", utc(2026, 12, 1, 16, 0), 30 * M, "office", utc(2026, 12, 1, 16, 30)),
    # Tue 17:15 + 30m: 15m on Tuesday, paused overnight, 15m from Wed 08:30: 08:45 CET.
    ("paused overnight", utc(2026, 12, 1, 16, 15), 30 * M, "office", utc(2026, 12, 2, 7, 45)),
    # Tue 23:10 (closed) + 30m: the clock starts Wed 08:30: 09:00 CET.
    ("missed at night", utc(2026, 12, 1, 22, 10), 30 * M, "office", utc(2026, 12, 2, 8, 0)),
    # Wed 07:00 (before opening) + 30m: 09:00 CET.
    ("before opening", utc(2026, 12, 2, 6, 0), 30 * M, "office", utc(2026, 12, 2, 8, 0)),
    # Fri 2026-12-04 17:00 + 1h: 30m on Friday, weekend, 30m on Mon 12-07: 09:00 CET.
    ("over the weekend", utc(2026, 12, 4, 16, 0), H, "office", utc(2026, 12, 7, 8, 0)),
    # Sat 2026-12-05 11:00 + 30m: Mon 09:00 CET.
    ("missed on Saturday", utc(2026, 12, 5, 10, 0), 30 * M, "office", utc(2026, 12, 7, 8, 0)),
    # Thu 2026-12-24 17:00 + 1h: 30m Thu, Fri 25 closed, weekend, 30m Mon 28: 09:00 CET.
    ("closed date", utc(2026, 12, 24, 16, 0), H, "office", utc(2026, 12, 28, 8, 0)),
    # Tue 2026-12-01 10:00 + 3d (72h of open time): 7.5h Tue, 9h Wed..Fri and Mon..Thu
    # (63h, 70.5h in all), 1.5h on Fri 12-11: 10:00 CET.
    ("3 days of open time", utc(2026, 12, 1, 9, 0), 72 * H, "office", utc(2026, 12, 11, 9, 0)),
    # Fri 2026-03-27 17:00 CET + 1h: 30m Fri, DST weekend, Mon 03-30 09:00 CEST = 07:00 UTC.
    ("over a DST change", utc(2026, 3, 27, 16, 0), H, "office", utc(2026, 3, 30, 7, 0)),
    # Tue 12:15 + 30m: 15m before lunch, paused 12:30-13:00, 15m after: 13:15 CET.
    ("paused at lunch", utc(2026, 12, 1, 11, 15), 30 * M, "lunch", utc(2026, 12, 1, 12, 15)),
    # Sat 2026-03-28 12:00 CET + 24h, open all day: the 23-hour Sunday counts as it really
    # lasts: 2026-03-29 11:00 UTC (13:00 CEST), as without hours.
    ("24h, spring forward", utc(2026, 3, 28, 11, 0), 24 * H, "always", utc(2026, 3, 29, 11, 0)),
    # Sat 2026-10-24 12:00 CEST + 24h: 2026-10-25 10:00 UTC (11:00 CET).
    ("24h, fall back", utc(2026, 10, 24, 10, 0), 24 * H, "always", utc(2026, 10, 25, 10, 0)),
    # Thu 2026-12-24 23:00 CET + 2h on a 24h schedule closed on the 25th: 1h on the 24th,
    # then from Sat 26 00:00: 01:00 CET = 00:00 UTC.
    ("24h with a closed date", utc(2026, 12, 24, 22, 0), 2 * H, "always", utc(2026, 12, 26, 0, 0)),
    # Sun 2026-03-29 00:00-06:00 lasts 5 real hours (23:00 to 04:00 UTC): a miss at its start
    # + 5h runs out at closing (06:00 CEST); + 5h30m needs 30m of the next Sunday, 2026-04-05
    # 00:30 CEST = 04-04 22:30 UTC.
    ("short DST night", utc(2026, 3, 28, 23, 0), 5 * H, "nights", utc(2026, 3, 29, 4, 0)),
    ("short DST night, more", utc(2026, 3, 28, 23, 0), 330 * M, "nights", utc(2026, 4, 4, 22, 30)),
    # Sun 2026-10-25 00:00-06:00 lasts 7 real hours (22:00 to 05:00 UTC): + 6h30m is 04:30 UTC
    # (05:30 CET), still open.
    ("long DST night", utc(2026, 10, 24, 22, 0), 390 * M, "nights", utc(2026, 10, 25, 4, 30)),
    # New York hours (their own time zone, EST = UTC-5): Tue 16:45 EST + 30m: 15m Tue, 15m
    # from Wed 09:00: 09:15 EST = 14:15 UTC.
    ("other time zone", utc(2026, 12, 1, 21, 45), 30 * M, "new_york", utc(2026, 12, 2, 14, 15)),
]


@pytest.mark.parametrize(
    ("start", "duration", "schedule", "expected"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_deadline_counts_only_open_time(
    start: datetime, duration: timedelta, schedule: str, expected: datetime
) -> None:
    assert deadline(start, duration, HOURS[schedule]) == expected


def test_without_hours_the_clock_always_runs() -> None:
    start = utc(2026, 3, 28, 11, 0)
    assert deadline(start, 24 * H, None) == utc(2026, 3, 29, 11, 0)
    assert deadline(start, 3 * 24 * H, None) == utc(2026, 3, 31, 11, 0)


def test_a_schedule_that_never_opens_does_not_pause_the_clock() -> None:
    """The loader refuses such hours for `callbacks`; the function still ends."""
    shut: Hours = HOURS["shut"]
    start = utc(2026, 12, 1, 9, 0)
    assert deadline(start, 30 * M, shut) == start + 30 * M


def test_deadlines_grow_with_the_duration() -> None:
    """Escalation before expiry stays so when the clock pauses (the loader checks
    escalate_after < callback_window on durations; this is why that is enough)."""
    start = utc(2026, 12, 4, 16, 29)  # Fri 17:29 CET, a minute before closing
    office = HOURS["office"]
    times = [deadline(start, n * M, office) for n in range(0, 600, 7)]
    assert times == sorted(times)
    assert len(set(times)) == len(times)
