"""The daily digest in plain words (pure): what every renderer shows of a
:class:`~bridge.core.digest.DigestContent`.

:func:`digest_view` words one destination's digest in the rules' time zone: a title with the
digest's date (``📊 Callbacks · Thu 3 Dec``), a headline (``12 missed customers since Wed
08:30``: the cases opened in the period, plus those ``from before`` it that were still open
at its start), one count per outcome (over every case the digest tells) and the cases still
waiting, oldest first. Texts are plain: each renderer escapes them (names and numbers come
from the provider) its own way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Final
from zoneinfo import ZoneInfo

from bridge.core.digest import DigestCase, DigestContent
from bridge.render.casetext import CLAIMED, WAITING, span
from bridge.render.phone import format_number

DIGEST: Final = "📊"
CALLED_BACK: Final = "✅"
BY_HAND: Final = "✋"
EXPIRED: Final = "⌛"
MAX_WAITING: Final = 10  # waiting cases listed before "… and N more"
WEEKDAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True, slots=True)
class WaitingView:
    """A case still open at the digest's time."""

    caller: str  # the customer: "M. de Jong (+31 50 123 4567)", or the number alone
    since: str  # its first miss, local: "Wed 14:02"
    waited: str  # until the digest's time: "18 h"
    claimed_by: str | None  # who is calling back

    def line(self, escape: Callable[[str], str]) -> str:
        """``+31 6 1234 5678 since Wed 14:02 (18 h) · 📞 Alice is calling back``, its names
        and numbers through a renderer's ``escape``."""
        text = f"{escape(self.caller)} since {self.since} ({self.waited})"
        if self.claimed_by is not None:
            text += f" · {CLAIMED} {escape(self.claimed_by)} is calling back"
        return text


@dataclass(frozen=True, slots=True)
class DigestView:
    destination: str  # the rules' name of where it goes
    title: str  # "📊 Callbacks · Thu 3 Dec"
    headline: str  # "12 missed customers since Wed 08:30" (empty: "✅ No missed …")
    counts: tuple[str, ...]  # "✅ 9 called back or got through (median …)", "⏳ 2 still waiting"
    waiting: tuple[WaitingView, ...]  # the first :data:`MAX_WAITING`, oldest first
    more: int  # waiting cases not listed

    @property
    def summary(self) -> str:
        """The headline and the counts on one line (plain)."""
        return " · ".join((self.headline, *self.counts))

    @property
    def more_text(self) -> str | None:
        """``… and 3 more`` when not every waiting case is listed."""
        return f"… and {self.more} more" if self.more else None


def _customer(caller: str, number: str) -> str:
    """The name the provider showed with the number to call, or the number alone."""
    shown = format_number(number)
    name = caller.strip()
    return shown if not name or format_number(name) == shown else f"{name} ({shown})"


def digest_view(content: DigestContent) -> DigestView:
    tz = ZoneInfo(content.tz)
    until, since = content.until, _when(content.since, tz, content.until)
    new = sum(c.opened_at > content.since for c in content.cases)
    old = len(content.cases) - new
    waiting = [c for c in content.cases if c.how is None]
    waiting.sort(key=lambda c: (c.opened_at, c.number))
    shown = tuple(
        WaitingView(
            caller=_customer(c.caller, c.number),
            since=_when(c.opened_at, tz, until),
            waited=span(until - c.opened_at),
            claimed_by=c.claimed_by,
        )
        for c in waiting[:MAX_WAITING]
    )
    return DigestView(
        destination=content.destination,
        title=f"{DIGEST} Callbacks · {_date(until, tz)}",
        headline=_headline(new, old, since),
        counts=_counts(content.cases, content.since),
        waiting=shown,
        more=len(waiting) - len(shown),
    )


def _headline(new: int, old: int, since: str) -> str:
    if not new and not old:
        return f"{CALLED_BACK} No missed customers since {since}."
    if not new:
        return f"No new missed customers since {since}; {old} from before"
    head = f"{new} missed customer{'s' if new > 1 else ''} since {since}"
    return f"{head}, and {old} from before" if old else head


def _counts(cases: Sequence[DigestCase], since: datetime) -> tuple[str, ...]:
    """One line per outcome that occurred, in a fixed order."""
    reached = [
        c.closed_at - c.opened_at
        for c in cases
        if c.how in {"called_back", "got_through"} and c.closed_at is not None
    ]
    by_hand = sum(c.how == "done" for c in cases)
    expired = sum(c.how == "expired" for c in cases)
    waiting = [c for c in cases if c.how is None]
    earlier = sum(c.opened_at <= since for c in waiting)
    out: list[str] = []
    if reached:
        out.append(f"{CALLED_BACK} {len(reached)} called back or got through ({_times(reached)})")
    if by_hand:
        out.append(f"{BY_HAND} {by_hand} closed by hand")
    if expired:
        out.append(f"{EXPIRED} {expired} not called back in time")
    if waiting:
        before = f" ({earlier} from before)" if earlier else ""
        out.append(f"{WAITING} {len(waiting)} still waiting{before}")
    return tuple(out)


def _times(spans: list[timedelta]) -> str:
    """``median 18 min, longest 2 h 5 min`` (one case: ``in 18 min``)."""
    ordered = sorted(spans)
    if len(ordered) == 1:
        return f"in {span(ordered[0])}"
    mid = len(ordered) // 2
    median = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
    return f"median {span(median)}, longest {span(ordered[-1])}"


def _when(at: datetime, tz: tzinfo, until: datetime) -> str:
    """``Wed 14:02`` within the week before ``until``'s day, else ``Thu 26 Nov 08:30``."""
    local = at.astimezone(tz)
    recent = (until.astimezone(tz).date() - local.date()).days < 7
    day = WEEKDAYS[local.weekday()] if recent else _date(at, tz)
    return f"{day} {local:%H:%M}"


def _date(at: datetime, tz: tzinfo) -> str:
    """``Thu 3 Dec`` (English whatever the locale)."""
    local = at.astimezone(tz)
    return f"{WEEKDAYS[local.weekday()]} {local.day} {MONTHS[local.month - 1]}"
