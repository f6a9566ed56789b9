"""Local times as messages show them: the time alone on the day a story is told from, the
date too on any other day (a call across midnight, a case that goes on for days)."""

from __future__ import annotations

from datetime import datetime, tzinfo


def shown_time(at: datetime, tz: tzinfo, day_of: datetime, *, seconds: bool = False) -> str:
    """``14:02`` (``14:02:05`` with ``seconds``), or ``2026-12-05 14:02`` when ``at`` is not on
    ``day_of``'s local day."""
    local = at.astimezone(tz)
    clock = "%H:%M:%S" if seconds else "%H:%M"
    same_day = local.date() == day_of.astimezone(tz).date()
    return local.strftime(clock if same_day else f"%Y-%m-%d {clock}")
