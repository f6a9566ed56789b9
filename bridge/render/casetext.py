"""Callback cases in plain words (pure): the sentences every renderer builds on."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bridge.core.cases import Closed
from bridge.core.plan import CaseStepContent

CLOSED_AS: dict[Closed, str] = {
    "got_through": "Got through: answered by {by}",
    "called_back": "Called back by {by}",
    "done": "Closed by {by}",
    "expired": "Not called back in time",
}


def clock(at: datetime, tz: ZoneInfo) -> str:
    return at.astimezone(tz).strftime("%H:%M")


def after(first: datetime, then: datetime) -> str:
    """ "30 min after the first miss" (rounded to the minute)."""
    minutes = max(int((then - first) / timedelta(minutes=1)), 0)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [f"{n} {unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "min")) if n]
    return f"{' '.join(parts) or 'less than a minute'} after the first miss"


def step_sentence(content: CaseStepContent) -> str:
    """One reply in a case alert's thread."""
    step, tz = content.step, ZoneInfo(content.tz)
    at = clock(step.at, tz)
    match step.kind:
        case "missed":
            rung = f" (rang {', '.join(step.rung)})" if step.rung else ""
            return f"{at} Missed again{rung}"
        case "attempt":
            return f"{at} Tried by {step.by} (no answer)"
        case "claimed":
            return f"{at} {step.by} is calling back"
        case "released":
            return f"{at} Released by {step.by}: nobody is calling back"
        case "escalated":
            who = " ".join(step.mentions)
            return f"{at} {who} Still not called back".strip().replace("  ", " ")
        case "closed":
            how = CLOSED_AS[step.how or "done"].format(by=step.by or "someone")
            return f"{at} {how}, {after(content.opened_at, step.at)}"
