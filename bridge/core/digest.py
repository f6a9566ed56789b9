"""The daily digest of callback cases (pure): which cases a destination's digest tells, and
when digests are due.

Once a day at a set local time (``digest:`` in the rules), each destination the rules name
gets one message about the callback cases whose missed-call alerts it received: those opened
since the previous digest, those closed since then, and those still waiting. A team lead
reads in it whether every missed customer was called back, and how fast.

:func:`digest_cases` picks and summarises the cases (folded as of the digest's time);
:func:`latest_due` and :func:`previous_due` place digests on the local calendar (wall-clock
time in the rules' zone, so 08:30 stays 08:30 across daylight-saving changes).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

import msgspec

from bridge.core.cases import Case, Closed, Closing

LOOKBACK: Final = 8  # days searched for a digest time (a weekly digest: 7)


class DigestCase(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One case as a digest tells it."""

    number: str  # the number to call back (E.164, the case's)
    caller: str  # the customer as the provider showed them (a name, or the number)
    opened_at: datetime  # the first miss
    misses: int
    how: Closed | None = None  # None: still open at the digest's time
    closed_at: datetime | None = None
    by: str | None = None  # who answered, called back or closed it
    claimed_by: str | None = None  # still open, and someone is calling back
    claimed_at: datetime | None = None


class DigestContent(msgspec.Struct, frozen=True, tag="digest"):
    """A digest's render input: one destination's cases over ``(since, until]``."""

    destination: str
    since: datetime  # the previous digest's time (exclusive)
    until: datetime  # this digest's time
    tz: str
    cases: tuple[DigestCase, ...]  # by first miss, oldest first


def digest_cases(
    cases: Iterable[Case], destination: str, since: datetime, until: datetime
) -> tuple[DigestCase, ...]:
    """The cases ``destination``'s digest for ``(since, until]`` tells, oldest first: those
    whose alert went there (:attr:`Case.destinations`), opened by ``until``, and opened or
    closed after ``since`` or still open at ``until``. ``cases`` are folded as of ``until``;
    what happened after it is not told yet (a closing after it: the case is told as open; a
    miss after it neither counts nor sends the case to its destinations)."""
    told: list[DigestCase] = []
    for case in cases:
        misses = [m for m in case.misses if m.at <= until]  # (a later one is not told yet)
        if not any(destination in m.destinations for m in misses):
            continue
        closing = case.closing if case.closing is not None and case.closing.at <= until else None
        if closing is None or case.opened_at > since or closing.at > since:
            told.append(_told(case, len(misses), closing, until))
    return tuple(sorted(told, key=lambda c: (c.opened_at, c.number)))


def _told(case: Case, misses: int, closing: Closing | None, until: datetime) -> DigestCase:
    """``case`` as the digest tells it: ``misses`` by ``until`` and ``closing``, its closing
    by then (None: open)."""
    if closing is not None:
        return DigestCase(
            number=case.key.number,
            caller=case.caller,
            opened_at=case.opened_at,
            misses=misses,
            how=closing.how,
            closed_at=closing.at,
            by=closing.by,
        )
    claim = case.claim if case.claim is not None and case.claim.at <= until else None
    return DigestCase(
        number=case.key.number,
        caller=case.caller,
        opened_at=case.opened_at,
        misses=misses,
        claimed_by=None if claim is None else claim.user,
        claimed_at=None if claim is None else claim.at,
    )


def _times(at: time, days: frozenset[int], tz: ZoneInfo, moment: datetime) -> Iterator[datetime]:
    """The digest times (UTC) on ``moment``'s local day and the :data:`LOOKBACK` days
    before it, latest first (wall-clock ``at`` in ``tz`` on each of ``days``)."""
    today = moment.astimezone(tz).date()
    for back in range(LOOKBACK + 1):
        day = today - timedelta(days=back)
        if day.isoweekday() in days:
            yield datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def latest_due(at: time, days: frozenset[int], tz: ZoneInfo, now: datetime) -> datetime | None:
    """The latest digest time at or before ``now``: ``at`` local time on one of ``days``
    (ISO weekdays, 1 = Monday), within the last 8 days (None: no such day)."""
    return next((due for due in _times(at, days, tz, now) if due <= now), None)


def previous_due(at: time, days: frozenset[int], tz: ZoneInfo, instant: datetime) -> datetime:
    """The digest time before ``instant`` (the start of the period ``instant``'s digest
    tells); at most 8 days back (a digest on one weekday only: a week). With no digest
    day at all, a day before ``instant``."""
    found = next((due for due in _times(at, days, tz, instant) if due < instant), None)
    return instant - timedelta(days=1) if found is None else found
