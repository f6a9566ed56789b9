"""The daily digest's core (bridge/core/digest.py): which callback cases a destination's
digest tells, and when digests are due on the local calendar.

The period is Wednesday 2 December 2026 08:30 to Thursday 3 December 08:30 in Amsterdam (CET,
UTC+1), so 07:30 UTC both days. Cases are folded by bridge.core.cases.fold from hand-written
facts; every expected value is written out by hand."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bridge.core.cases import Answered, Attempt, Case, CaseKey, Click, Fact, Missed, fold
from bridge.core.digest import DigestCase, digest_cases, latest_due, previous_due

AMS = ZoneInfo("Europe/Amsterdam")
SINCE = datetime(2026, 12, 2, 7, 30, tzinfo=UTC)  # Wed 08:30 local
UNTIL = datetime(2026, 12, 3, 7, 30, tzinfo=UTC)  # Thu 08:30 local
EVERY_DAY = frozenset(range(1, 8))
WEEKDAYS = frozenset(range(1, 6))
AT = time(8, 30)


def utc(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def missed(
    story: str, at: datetime, number: str, destinations: tuple[str, ...] = ("support",)
) -> Missed:
    return Missed(
        story_id=story,
        at=at,
        caller=number,
        dialled="+31508009000",
        rung=("Johan",),
        destinations=destinations,
        expire_at=at + timedelta(days=3),
    )


def case(number: str, facts: Sequence[Fact]) -> Case:
    (one,) = fold(CaseKey("acme", number), facts, UNTIL)
    return one


def test_which_cases_a_digest_tells() -> None:
    cases = [
        # opened in the period, called back in it
        case("+31600000001", [
            missed("s1", utc(12, 2, 9), "+31600000001"),
            Attempt(story_id="o1", at=utc(12, 2, 9, 20), by="Alice", answered=True),
        ]),
        # opened in the period, its alert went to another destination only
        case("+31600000002", [missed("s2", utc(12, 2, 10), "+31600000002", ("sales",))]),
        # opened before the period and closed before it: told yesterday
        case("+31600000003", [
            missed("s3", utc(12, 1, 10), "+31600000003"),
            Answered(story_id="a3", at=utc(12, 1, 11), by="Bob"),
        ]),
        # opened before the period, closed exactly at its start: told yesterday
        case("+31600000004", [
            missed("s4", utc(12, 1, 12), "+31600000004"),
            Answered(story_id="a4", at=SINCE, by="Bob"),
        ]),
        # opened before the period and still open
        case("+31600000005", [missed("s5", utc(12, 1, 15), "+31600000005")]),
        # opened before the period, got through in it
        case("+31600000006", [
            missed("s6", utc(12, 1, 16), "+31600000006"),
            Answered(story_id="a6", at=utc(12, 2, 8), by="Bob"),
        ]),
        # opened in the period, called back after it: told as open
        case("+31600000007", [
            missed("s7", utc(12, 2, 12), "+31600000007"),
            Attempt(story_id="o7", at=utc(12, 3, 8), by="Alice", answered=True),
        ]),
        # opened in the period, claimed by Alice, open
        case("+31600000008", [
            missed("s8", utc(12, 2, 13), "+31600000008"),
            Click(click_id="k8", case_id="s8", at=utc(12, 2, 13, 5), action="claim",
                  user_id="UALICE", user="Alice"),
        ]),
        # opened after the period
        case("+31600000009", [missed("s9", utc(12, 3, 7, 31), "+31600000009")]),
        # opened exactly at the digest's time
        case("+31600000010", [missed("s10", UNTIL, "+31600000010")]),
        # missed twice: the first alert went to sales, the second to support
        case("+31600000011", [
            missed("s11", utc(12, 2, 14), "+31600000011", ("sales",)),
            missed("s11b", utc(12, 2, 14, 30), "+31600000011"),
        ]),
        # missed again after the digest's time, that alert to sales: not told yet
        case("+31600000012", [
            missed("s12", utc(12, 2, 15), "+31600000012"),
            missed("s12b", utc(12, 3, 7, 45), "+31600000012", ("sales",)),
        ]),
    ]  # fmt: skip
    told = digest_cases(cases, "support", SINCE, UNTIL)
    assert told == (
        DigestCase(
            number="+31600000005", caller="+31600000005", opened_at=utc(12, 1, 15), misses=1
        ),
        DigestCase(
            number="+31600000006",
            caller="+31600000006",
            opened_at=utc(12, 1, 16),
            misses=1,
            how="got_through",
            closed_at=utc(12, 2, 8),
            by="Bob",
        ),
        DigestCase(
            number="+31600000001",
            caller="+31600000001",
            opened_at=utc(12, 2, 9),
            misses=1,
            how="called_back",
            closed_at=utc(12, 2, 9, 20),
            by="Alice",
        ),
        DigestCase(
            number="+31600000007", caller="+31600000007", opened_at=utc(12, 2, 12), misses=1
        ),
        DigestCase(
            number="+31600000008",
            caller="+31600000008",
            opened_at=utc(12, 2, 13),
            misses=1,
            claimed_by="Alice",
            claimed_at=utc(12, 2, 13, 5),
        ),
        DigestCase(
            number="+31600000011", caller="+31600000011", opened_at=utc(12, 2, 14), misses=2
        ),
        DigestCase(
            number="+31600000012", caller="+31600000012", opened_at=utc(12, 2, 15), misses=1
        ),
        DigestCase(number="+31600000010", caller="+31600000010", opened_at=UNTIL, misses=1),
    )
    assert [c.caller for c in digest_cases(cases, "sales", SINCE, UNTIL)] == [
        "+31600000002",
        "+31600000011",
    ]
    assert digest_cases(cases, "billing", SINCE, UNTIL) == ()


def test_cases_opened_together_are_told_by_caller() -> None:
    cases = [
        case("+31600000002", [missed("b", utc(12, 2, 9), "+31600000002")]),
        case("+31600000001", [missed("a", utc(12, 2, 9), "+31600000001")]),
    ]
    told = digest_cases(cases, "support", SINCE, UNTIL)
    assert [c.caller for c in told] == ["+31600000001", "+31600000002"]


def test_latest_due_at_and_just_before_the_time() -> None:
    assert latest_due(AT, EVERY_DAY, AMS, UNTIL) == UNTIL
    assert latest_due(AT, EVERY_DAY, AMS, UNTIL - timedelta(seconds=1)) == SINCE
    assert latest_due(AT, EVERY_DAY, AMS, utc(12, 3, 22)) == UNTIL


def test_latest_due_goes_by_the_local_date() -> None:
    # Thursday 23:30 UTC is Friday 00:30 in Amsterdam: Friday's 00:15 is due.
    assert latest_due(time(0, 15), EVERY_DAY, AMS, utc(12, 3, 23, 30)) == utc(12, 3, 23, 15)


def test_a_weekday_schedule_skips_the_weekend() -> None:
    friday = utc(12, 4, 7, 30)
    monday = utc(12, 7, 7, 30)
    assert latest_due(AT, WEEKDAYS, AMS, utc(12, 6, 12)) == friday  # Sunday noon
    assert latest_due(AT, WEEKDAYS, AMS, monday - timedelta(minutes=1)) == friday
    assert latest_due(AT, WEEKDAYS, AMS, monday) == monday
    assert previous_due(AT, WEEKDAYS, AMS, monday) == friday
    assert previous_due(AT, WEEKDAYS, AMS, utc(12, 8, 7, 30)) == monday  # Tuesday's


def test_a_weekly_digest_looks_back_a_week() -> None:
    thursdays = frozenset({4})
    assert previous_due(AT, thursdays, AMS, UNTIL) == utc(11, 26, 7, 30)
    assert latest_due(AT, thursdays, AMS, utc(12, 9, 12)) == UNTIL  # the Wednesday after


def test_no_digest_days() -> None:
    assert latest_due(AT, frozenset(), AMS, UNTIL) is None
    assert previous_due(AT, frozenset(), AMS, UNTIL) == UNTIL - timedelta(days=1)


def test_the_digest_stays_at_0830_when_summer_time_ends() -> None:
    # Summer time ends on Sunday 25 October 2026 at 03:00 CEST (UTC+2) -> 02:00 CET (UTC+1).
    saturday = utc(10, 24, 6, 30)  # 08:30 CEST
    sunday = utc(10, 25, 7, 30)  # 08:30 CET
    monday = utc(10, 26, 7, 30)
    assert latest_due(AT, EVERY_DAY, AMS, utc(10, 25, 7)) == saturday  # Sun 08:00 CET
    assert latest_due(AT, EVERY_DAY, AMS, sunday) == sunday
    assert previous_due(AT, EVERY_DAY, AMS, sunday) == saturday
    assert previous_due(AT, EVERY_DAY, AMS, monday) == sunday
    assert previous_due(AT, WEEKDAYS, AMS, monday) == utc(10, 23, 6, 30)  # Friday, CEST
    local = [t.astimezone(AMS) for t in (saturday, sunday)]
    assert [t.time() for t in local] == [AT, AT]
    assert [t.utcoffset() for t in local] == [timedelta(hours=2), timedelta(hours=1)]


def test_the_digest_stays_at_0830_when_summer_time_starts() -> None:
    # Summer time starts on Sunday 29 March 2026 at 02:00 CET -> 03:00 CEST.
    friday = utc(3, 27, 7, 30)  # 08:30 CET
    monday = utc(3, 30, 6, 30)  # 08:30 CEST
    assert previous_due(AT, WEEKDAYS, AMS, monday) == friday
    assert latest_due(AT, WEEKDAYS, AMS, monday) == monday
    assert latest_due(AT, WEEKDAYS, AMS, monday - timedelta(seconds=1)) == friday
    assert monday.astimezone(AMS).utcoffset() == timedelta(hours=2)
    assert friday.astimezone(AMS).utcoffset() == timedelta(hours=1)
