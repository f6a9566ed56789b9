"""The one duration grammar of settings and rules files (pure).

``90s``, ``15m``, ``1.5h``, ``14d``, ``2w``; parts may be combined (``1h30m``, ``1h 30m``);
a bare number is seconds (``90``, ``2.5``). Units: ``s`` seconds, ``m`` minutes, ``h`` hours,
``d`` days, ``w`` weeks (upper case is read the same). Negative durations do not exist, nor
any longer than a century.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Final

EXAMPLES: Final = "90s, 15m, 1.5h, 14d or 2w"
HINT: Final = f"a duration like {EXAMPLES} (parts combine: 1h30m; a bare number is seconds)"

_NUMBER: Final = r"\d+(?:\.\d+)?"
_PART: Final = re.compile(rf"({_NUMBER})\s*([smhdw])", re.IGNORECASE)
_WHOLE: Final = re.compile(rf"(?:{_NUMBER}\s*[smhdw]\s*)+", re.IGNORECASE)
_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# A century: longer than anything a setting or rule means, and short enough that a moment
# plus or minus it is still a date (Python's run from year 1 to 9999).
_LONGEST: Final = timedelta(days=36500)


class TooLong(ValueError):
    """A duration in the grammar, longer than any that is meant (a century)."""


def parse_duration(text: str) -> timedelta:
    """``"1.5h"`` -> 90 minutes. Raises ``ValueError`` naming the grammar and the input."""
    value = text.strip()
    if re.fullmatch(_NUMBER, value):
        seconds = float(value)
    elif _WHOLE.fullmatch(value):
        seconds = sum(float(n) * _UNIT_SECONDS[u.lower()] for n, u in _PART.findall(value))
    else:
        raise ValueError(f"expected {HINT}, got {text!r}")
    if seconds > _LONGEST.total_seconds():
        raise TooLong(f"{text!r} is too long: at most {LONGEST}")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """An exact spelling in the grammar, in days at most: 14 days -> ``14d``, 90 s -> ``1m30s``."""
    rest = value.total_seconds()
    if rest == 0:
        return "0s"
    parts = []
    for unit in "dhm":
        size = _UNIT_SECONDS[unit]
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{int(count)}{unit}")
    if rest:
        parts.append(f"{rest:g}s")
    return "".join(parts)


LONGEST: Final = format_duration(_LONGEST)  # "36500d", as messages say it
