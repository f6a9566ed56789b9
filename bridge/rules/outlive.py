"""Callback windows that retention would cut short (pure).

A case's facts are stored with its calls, and retention deletes a call
``CALLBRIDGE_RETENTION`` after the bridge last received an event of it. A case still open
then loses the missed call that opened it, and with it the case: its alert is never updated
again (it keeps saying *waiting for a callback*) and its buttons answer that the case is no
longer kept. :func:`outliving` finds the routes whose missed-call alerts open cases that can
stay open that long: the window itself, or, with ``hours``, the longest it stretches in
calendar time over the closed hours, weekends and closed days of the coming year. A case
opened just as the schedule closes waits longest, so the spans are measured from every
closing time of that year (and from now).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from bridge.core.duration import format_duration
from bridge.rules.callbacks import deadline, open_ranges
from bridge.rules.match import UNMATCHED_ROUTE
from bridge.rules.model import Actions, CallbackPolicy, Hours, Ruleset

HORIZON: Final = timedelta(days=366)  # how far ahead closed days are looked at


@dataclass(frozen=True)
class Outliving:
    """A route whose cases can outlive retention: ``span`` from ``opened`` (a case's longest
    calendar time to its window's end, reached by a case opened at ``opened``)."""

    route: str
    policy: CallbackPolicy
    span: timedelta
    opened: datetime

    def message(self, retention: timedelta) -> str:
        where = (
            "the `unmatched` fallback" if self.route == UNMATCHED_ROUTE else f'route "{self.route}"'
        )
        window = format_duration(self.policy.callback_window)
        hours = self.policy.hours
        if hours is None:
            how = f"its callback_window is {window}"
        else:
            local = self.opened.astimezone(hours.timezone)
            how = (
                f'its callback_window {window} counts only while hours "{hours.name}" is open, '
                f"so a case opened {local:%a %Y-%m-%d %H:%M} stays open "
                f"{format_duration(self.span)}"
            )
        return (
            f"{where}: {how}, not shorter than CALLBRIDGE_RETENTION "
            f"({format_duration(retention)}): retention would delete an open case's first "
            "missed call and the case with it (its alert would keep saying it waits for a "
            "callback); shorten callback_window or raise CALLBRIDGE_RETENTION"
        )


def outliving(ruleset: Ruleset, retention: timedelta, now: datetime) -> list[Outliving]:
    """The routes (and the ``unmatched`` fallback) that open callback cases which can still
    be open ``retention`` after they were opened."""
    found: list[Outliving] = []
    alerting: list[tuple[str, Actions]] = [(r.name, r.actions) for r in ruleset.routes]
    if ruleset.unmatched is not None:
        alerting.append((UNMATCHED_ROUTE, ruleset.unmatched))
    for name, actions in alerting:
        policy = actions.callback
        if not actions.missed or policy is None:  # opens no cases
            continue
        span, opened = longest(policy, now)
        if span >= retention:
            found.append(Outliving(name, policy, span, opened))
    return found


def longest(policy: CallbackPolicy, now: datetime) -> tuple[timedelta, datetime]:
    """The longest calendar time from a case's opening to its window's end, and when a case
    opened to take that long, over the coming year."""
    window, hours = policy.callback_window, policy.hours
    if hours is None:
        return window, now
    spans = ((deadline(start, window, hours) - start, start) for start in _starts(hours, now))
    return max(spans, key=lambda pair: pair[0])


def _starts(hours: Hours, now: datetime) -> Iterator[datetime]:
    """Now, then every time the schedule closes within :data:`HORIZON` of now."""
    yield now
    day = now.astimezone(hours.timezone).date()
    last = (now + HORIZON).astimezone(hours.timezone).date()
    while day <= last:
        yield from (closes for _, closes in open_ranges(hours, day) if closes >= now)
        day += timedelta(days=1)
