"""Callback case facts and times in words, for `callbridge route` and the rules' tests (pure).

Times are shown in the rules' time zone: ``2026-12-07T09:00`` where a test compares them
(with seconds when they are not whole minutes, and with the UTC offset when the wall-clock
time happens twice, in the hour a daylight-saving change repeats), and ``Mon 2026-12-07
09:00`` where a person reads them.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bridge.core.cases import Answered, Attempt, CaseKey, Fact, Missed


def stamp(at: datetime | None, tz: ZoneInfo) -> str:
    """``2026-12-07T09:00`` in ``tz`` (as a test writes it), or ``never``."""
    if at is None:
        return "never"
    local = at.astimezone(tz)
    text = local.strftime("%Y-%m-%dT%H:%M" if local.second == 0 else "%Y-%m-%dT%H:%M:%S")
    if _repeated(local, tz):
        offset = local.strftime("%z")
        text += f"{offset[:3]}:{offset[3:]}"
    return text


def _repeated(local: datetime, tz: ZoneInfo) -> bool:
    """Whether this (existing) wall-clock time happens twice: a DST change repeats it."""
    naive = local.replace(tzinfo=None)
    return (
        naive.replace(tzinfo=tz, fold=0).utcoffset() != naive.replace(tzinfo=tz, fold=1).utcoffset()
    )


def human(at: datetime, tz: ZoneInfo) -> str:
    """``Mon 2026-12-07 09:00`` in ``tz``."""
    return at.astimezone(tz).strftime("%a %Y-%m-%d %H:%M")


def fact_text(key: CaseKey, fact: Fact, tz: ZoneInfo, *, opens: bool = False) -> str:
    """What one call's fact does to the cases of its number (``opens``: a missed call is
    known to open a case rather than stack on an open one)."""
    where = f"{key.number} in scope {key.scope}"
    if isinstance(fact, Missed):
        if fact.escalate_at is None:
            escalation = "never escalates"
        else:
            whom = f" mentioning {' '.join(fact.escalate_to)}" if fact.escalate_to else ""
            escalation = f"escalates {human(fact.escalate_at, tz)}{whom} unless claimed"
        expiry = (
            "never expires" if fact.expire_at is None else f"expires {human(fact.expire_at, tz)}"
        )
        stacks = "" if opens else " (or stacks on its open one)"
        return f"opens a case for {where}{stacks}; {escalation}, {expiry}"
    if isinstance(fact, Attempt) and not fact.answered:
        return f"an attempt on an open case of {where}: {told(fact)}"
    return f"closes an open case of {where}: {told(fact)}"


def told(fact: Fact) -> str:
    """How a call closed or tried a case: ``called back by Alice``."""
    if isinstance(fact, Answered):
        return f"got through, answered by {fact.by}"
    if isinstance(fact, Attempt):
        return f"called back by {fact.by}" if fact.answered else f"tried by {fact.by}, no answer"
    if isinstance(fact, Missed):
        return f"missed call from {fact.caller}"
    return f"{fact.action} by {fact.user}"
