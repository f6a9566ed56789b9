"""Named weekly schedules (``hours:``): parsing with positions, and evaluation in local time.

A schedule is open on an ISO weekday during any of that day's ranges, except on closed
dates. Ranges are wall-clock times in the schedule's time zone, so a range keeps meaning
"08:30 local" on both sides of a daylight-saving change (zoneinfo does the conversion).
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from bridge.rules.fields import Reader, suggest, unknown_key
from bridge.rules.model import Hours, TimeRange
from bridge.rules.yamlpos import Map, Node, Scalar, Seq, join

DAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE: Final = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")
_DATE_RANGE: Final = re.compile(r"^(\S+)\s*\.\.\s*(\S+)$")
_MAX_CLOSED_SPAN: Final = 366
RANGE_HINT: Final = 'expected "HH:MM-HH:MM", e.g. "08:30-17:30"'


def is_open(hours: Hours, at: datetime) -> bool:
    """Whether ``at`` (an aware datetime) falls in the schedule, in its own time zone."""
    local = at.astimezone(hours.timezone)
    if local.date() in hours.closed:
        return False
    clock = local.time().replace(tzinfo=None)
    return any(r.contains(clock) for r in hours.week[local.isoweekday() - 1])


def timezone(reader: Reader, node: Node, path: str) -> ZoneInfo | None:
    name = reader.text(node, path, example="Europe/Amsterdam")
    if name is None:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        hint = suggest(name, available_timezones()) or " (use an IANA name like Europe/Amsterdam)"
        reader.error(node, path, f'unknown time zone "{name}"{hint}')
        return None


def parse(reader: Reader, name: str, node: Node, path: str, default_tz: ZoneInfo) -> Hours | None:
    """One named schedule; ``None`` (with problems recorded) when it is unusable."""
    allowed = [*DAYS, "mon-fri", "sat-sun", "closed", "timezone"]
    if not isinstance(node, Map):
        reader.mapping(node, path, allowed=allowed)
        return None
    ok = True
    tz = default_tz
    if (tz_node := node.get("timezone")) is not None:
        found = timezone(reader, tz_node, join(path, "timezone"))
        ok, tz = found is not None, found or default_tz
    week: list[list[tuple[TimeRange, str, Node]]] = [[] for _ in DAYS]
    closed: set[date] = set()
    for key, value in node.items:
        key_path = join(path, key.text)
        if key.text == "timezone":
            continue
        if key.text == "closed":
            dates = _closed(reader, value, key_path)
            ok = ok and dates is not None
            closed |= dates or set()
            continue
        days = _days(reader, key, key_path)
        ranges = _ranges(reader, value, key_path)
        if days is None or ranges is None:
            ok = False
            continue
        for rng, rng_node in ranges:
            for day in days:
                for other, other_key, _ in week[day]:
                    if rng.start < (other.end or time.max) and other.start < (rng.end or time.max):
                        where = "" if other_key == key.text else f" from {other_key}"
                        reader.error(
                            rng_node,
                            key_path,
                            f'"{rng}" overlaps "{other}"{where} on '
                            f"{DAYS[day]} (ranges of one day must not overlap; merge them)",
                        )
                        ok = False
                week[day].append((rng, key.text, rng_node))
    if not ok:
        return None
    ordered = tuple(tuple(sorted((r for r, _, _ in day), key=lambda r: r.start)) for day in week)
    return Hours(name=name, timezone=tz, week=ordered, closed=frozenset(closed))


def day_range(text: str) -> list[int] | None:
    """The weekdays (0 = mon) of ``mon`` or of a forward range ``mon-fri``; None for
    anything else (a range that runs backwards too)."""
    text = text.strip().lower()
    if text in DAYS:
        return [DAYS.index(text)]
    first, sep, last = text.partition("-")
    if sep and first in DAYS and last in DAYS and DAYS.index(first) < DAYS.index(last):
        return list(range(DAYS.index(first), DAYS.index(last) + 1))
    return None


def _days(reader: Reader, key: Scalar, path: str) -> list[int] | None:
    if (found := day_range(key.text)) is not None:
        return found
    text = key.text.strip().lower()
    first, sep, last = text.partition("-")
    if sep and first in DAYS and last in DAYS:
        reader.error(
            key,
            path,
            f"day range {key.text} runs backwards (ranges go from mon to sun, "
            "e.g. mon-fri or sat-sun; list other days separately)",
        )
        return None
    allowed = "a day mon..sun, a day range like mon-fri, closed, timezone"
    reader.error(key, path, unknown_key(text, [*DAYS, "closed", "timezone"], allowed))
    return None
    allowed = "a day mon..sun, a day range like mon-fri, closed, timezone"
    reader.error(key, path, unknown_key(text, [*DAYS, "closed", "timezone"], allowed))
    return None


def _ranges(reader: Reader, node: Node, path: str) -> list[tuple[TimeRange, Node]] | None:
    items = node.items if isinstance(node, Seq) else (node,)
    if isinstance(node, Seq) and not node.items:
        reader.error(node, path, f"the list is empty ({RANGE_HINT}; leave the day out if closed)")
        return None
    out: list[tuple[TimeRange, Node]] = []
    ok = True
    for i, item in enumerate(items):
        item_path = f"{path}[{i}]" if isinstance(node, Seq) else path
        rng = _range(reader, item, item_path)
        if rng is None:
            ok = False
        else:
            out.append((rng, item))
    return out if ok else None


def _range(reader: Reader, node: Node, path: str) -> TimeRange | None:
    text = node.text.strip() if isinstance(node, Scalar) else ""
    match = _RANGE.match(text)
    if match is None:
        shown = f'"{text}"' if isinstance(node, Scalar) else "a " + type(node).__name__.lower()
        reader.error(node, path, f"{shown} is not a time range ({RANGE_HINT})")
        return None
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2 != 0):
        reader.error(node, path, f'"{text}" has an impossible time (hours 00-23, or 24:00 as end)')
        return None
    start, end = time(h1, m1), (None if h2 == 24 else time(h2, m2))
    if end == start:
        reader.error(
            node, path, f'"{text}" is empty: it ends when it starts (leave the day out to close it)'
        )
        return None
    if end is not None and end < start:
        reader.error(
            node,
            path,
            f'"{text}" ends before it starts (write start-end within one day; '
            'split hours past midnight, e.g. mon: "22:00-24:00" and tue: "00:00-06:00")',
        )
        return None
    return TimeRange(start, end)


def _closed(reader: Reader, node: Node, path: str) -> set[date] | None:
    if not isinstance(node, Seq):
        reader.error(node, path, "expected a list of dates, e.g. [2026-12-25, 2026-12-26]")
        return None
    out: set[date] = set()
    ok = True
    for i, item in enumerate(node.items):
        item_path = f"{path}[{i}]"
        text = item.text.strip() if isinstance(item, Scalar) else ""
        span = _DATE_RANGE.match(text)
        first = _date(reader, item, item_path, span[1] if span else text)
        last = _date(reader, item, item_path, span[2]) if span else first
        if first is None or last is None:
            ok = False
            continue
        if not first <= last <= first + timedelta(days=_MAX_CLOSED_SPAN):
            reader.error(
                item,
                item_path,
                f'"{text}" is not a forward range of at most a year '
                '(e.g. "2026-12-24..2026-12-31")',
            )
            ok = False
            continue
        out.update(first + timedelta(days=n) for n in range((last - first).days + 1))
    return out if ok else None


def _date(reader: Reader, node: Node, path: str, text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        shown = f'"{text}"' if isinstance(node, Scalar) else "a " + type(node).__name__.lower()
        reader.error(
            node,
            path,
            f"{shown} is not a date (expected YYYY-MM-DD like 2026-12-25, "
            "or a range like 2026-12-24..2026-12-31)",
        )
        return None
