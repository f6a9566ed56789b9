"""The rules file's ``digest:`` block: when the daily callback case digest goes out, and where.

```yaml
digest:
  at: "08:30"          # local time, in the rules' time zone (required)
  to: [support]        # destinations (required): each gets the digest of its own alerts
  days: mon-fri        # optional: a day, a range, or a list of them; every day if absent
```
"""

from __future__ import annotations

import re
from datetime import time
from typing import Final

from bridge.rules.fields import Reader, suggest
from bridge.rules.hours import day_range
from bridge.rules.model import DigestRule
from bridge.rules.yamlpos import Node, join

KEYS: Final = ("at", "to", "days")
_TIME: Final = re.compile(r"^(\d{1,2}):(\d{2})$")
DAYS_HINT: Final = "a day mon..sun, a range like mon-fri, or a list of them"


def read_digest(
    reader: Reader, node: Node | None, names: set[str], alerted: set[str]
) -> DigestRule | None:
    """The digest, or None (absent, or with problems recorded). ``alerted``: the
    destinations some route (or ``unmatched``) sends missed-call alerts to: a digest tells
    only those alerts' cases, so one for any other destination would always be empty."""
    if node is None:
        return None
    required = {
        "at": 'the local time it goes out, e.g. at: "08:30"',
        "to": "the destinations that get it, e.g. to: [support]",
    }
    spec = reader.mapping(node, "digest", allowed=KEYS, required=required)
    if spec is None:
        return None
    at = _time(reader, spec.get("at"))
    to = _destinations(reader, spec.get("to"), names, alerted)
    days = _days(reader, spec.get("days"))
    if at is None or not to or days is None:
        return None
    return DigestRule(at=at, to=to, days=days)


def _time(reader: Reader, node: Node | None) -> time | None:
    if node is None:
        return None
    text = reader.text(node, "digest.at", example='"08:30"')
    if text is None:
        return None
    match = _TIME.match(text)
    if match is None or int(match[1]) > 23 or int(match[2]) > 59:
        reader.error(node, "digest.at", f'"{text}" is not a time of day (expected "HH:MM")')
        return None
    return time(int(match[1]), int(match[2]))


def _destinations(
    reader: Reader, node: Node | None, names: set[str], alerted: set[str]
) -> tuple[str, ...]:
    if node is None:
        return ()
    out: list[str] = []
    for value, item, path in reader.texts(node, "digest.to", example="support"):
        if value not in names:
            known = ", ".join(sorted(names)) or "none"
            reader.error(
                item,
                path,
                f'unknown destination "{value}"{suggest(value, names)} '
                f"(defined under destinations: {known})",
            )
        elif value not in alerted:
            reader.error(
                item,
                path,
                f'"{value}" gets no missed-call alerts (no route sends `missed` to it): its '
                "digest, which tells the callback cases of its alerts, would always be empty",
            )
        elif value not in out:
            out.append(value)
    return tuple(out)


def _days(reader: Reader, node: Node | None) -> frozenset[int] | None:
    """ISO weekdays; every day when absent."""
    if node is None:
        return frozenset(range(1, 8))
    days: set[int] = set()
    ok = True
    for value, item, path in reader.texts(node, join("digest", "days"), example="mon-fri"):
        found = day_range(value)
        if found is None:
            reader.error(item, path, f'"{value}" is not a day ({DAYS_HINT})')
            ok = False
        else:
            days.update(day + 1 for day in found)  # ISO weekdays
    return frozenset(days) if ok and days else None
