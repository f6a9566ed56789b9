"""What a routed call means for callback cases (pure): the facts it adds to its customer
number's cases (bridge/core/cases.py), and the deadlines of a case opened by a missed call.

- An inbound call from a readable number: a missed call with a missed-call alert opens or
  stacks on a case (with the policy of the route that decided the alert); an answered one
  means the customer got through.
- An outbound call to a readable number that is not internal: a callback attempt, answered
  or not (only once answered or ended).
- Everything else (internal calls, anonymous or withheld callers, extensions) adds nothing.

The scope (which organisation's cases) is the policy's of the first route the call matched
(``drop`` routes included: a call that is not posted was still made), else ``unmatched``'s,
else the file's; for every call alike, so a missed call and the call that closes its case
meet in one scope. When that route says ``callback: off`` the call takes no part in cases.
A missed call's case runs on the clock (escalation, window, office hours) of the route that
raised its missed-call alert, and opens no case when that route says ``callback: off``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final

from bridge.core.calls import Call
from bridge.core.cases import AlertTo, Answered, Attempt, CaseKey, Fact, Missed
from bridge.core.numbers import e164
from bridge.core.routing import RouteResult
from bridge.rules.match import UNMATCHED_ROUTE, is_internal
from bridge.rules.model import CallbackPolicy, Hours, Ruleset

_SEARCH_DAYS: Final = 400  # how far ahead a paused clock looks for open hours


@dataclass(frozen=True)
class CaseOutcome:
    """What a routed call means for callback cases: its facts, or why it has none."""

    facts: tuple[tuple[CaseKey, Fact], ...] = ()
    why: str = ""  # when there are no facts: the reason, for `callbridge route` and tests


def case_facts(ruleset: Ruleset, call: Call, result: RouteResult) -> list[tuple[CaseKey, Fact]]:
    """The case facts of ``call`` (one story), routed as ``result`` by ``ruleset``."""
    return list(outcome(ruleset, call, result).facts)


def outcome(ruleset: Ruleset, call: Call, result: RouteResult) -> CaseOutcome:
    """:func:`case_facts` with the reason when there are none."""
    if is_internal(call):
        return CaseOutcome(why="an internal call, between colleagues")
    region = ruleset.callbacks.region
    story = call.call_id
    first = result.matched_routes[0] if result.matched_routes else UNMATCHED_ROUTE
    scope = policy_of(ruleset, first)
    if call.direction == "inbound":
        number = e164(call.caller.number, region)
        if number is None:
            shown = call.caller.number or "no number"
            return CaseOutcome(why=f'the caller ("{shown}") has no public number')
        if scope is None:
            return CaseOutcome(why=f"{_route_words(first)} says `callback: off`")
        if call.missed:
            return _missed(ruleset, call, result, CaseKey(scope.scope, number))
        if call.answered_at is None:
            return CaseOutcome(why="not answered yet")
        by = call.answered_by.label if call.answered_by is not None else "someone"
        fact: Fact = Answered(story_id=story, at=call.answered_at, by=by)
        return CaseOutcome(((CaseKey(scope.scope, number), fact),))
    number = e164(call.dialled, region)
    if number is None:
        return CaseOutcome(why=f'the dialled number "{call.dialled}" is not a public number')
    if scope is None:
        return CaseOutcome(why=f"{_route_words(first)} says `callback: off`")
    if call.answered_at is not None:
        fact = Attempt(story_id=story, at=call.answered_at, by=call.caller.label, answered=True)
    elif call.ended:
        fact = Attempt(story_id=story, at=call.started_at, by=call.caller.label, answered=False)
    else:
        return CaseOutcome(why="still ringing")
    return CaseOutcome(((CaseKey(scope.scope, number), fact),))


def _missed(ruleset: Ruleset, call: Call, result: RouteResult, key: CaseKey) -> CaseOutcome:
    """A missed call's case, in the call's scope (``key``), on the clock of the route that
    raised its missed-call alert (the first one, when several routes alert)."""
    alerts = [d for d in result.deliveries if d.kind == "missed"]
    if not alerts:
        return CaseOutcome(why="missed, but it raised no missed-call alert")
    policy = policy_of(ruleset, alerts[0].route)
    if policy is None:
        return CaseOutcome(why=f"its alert's {_route_words(alerts[0].route)} says `callback: off`")
    mentions = tuple(dict.fromkeys(m for d in alerts for m in d.mentions))
    start = call.started_at
    fact = Missed(
        story_id=call.call_id,
        at=start,
        caller=call.caller.label,
        dialled=call.dialled,
        rung=tuple(p.label for p in call.rung),
        destinations=tuple(dict.fromkeys(d.destination for d in alerts)),
        mentions=mentions,
        alerts=tuple(AlertTo(d.destination, d.mentions) for d in alerts),
        escalate_at=(
            None
            if policy.escalate_after is None
            else deadline(start, policy.escalate_after, policy.hours)
        ),
        escalate_to=policy.escalate_to or mentions,
        expire_at=deadline(start, policy.callback_window, policy.hours),
    )
    return CaseOutcome(((key, fact),))


def _route_words(route: str) -> str:
    return "the `unmatched` fallback" if route == UNMATCHED_ROUTE else f'route "{route}"'


def policy_of(ruleset: Ruleset, route: str) -> CallbackPolicy | None:
    """The callback policy of the route named ``route`` (None: it keeps no cases)."""
    if route == UNMATCHED_ROUTE:
        actions = ruleset.unmatched
        return ruleset.callbacks.policy if actions is None else actions.callback
    found = next((r for r in ruleset.routes if r.name == route), None)
    return ruleset.callbacks.policy if found is None else found.actions.callback


def deadline(start: datetime, duration: timedelta, hours: Hours | None) -> datetime:
    """``duration`` after ``start``, counting only time when ``hours`` is open (all time
    when None). A schedule that never opens does not pause the clock."""
    if hours is None or duration <= timedelta(0):
        return start + duration
    remaining = duration
    day = start.astimezone(hours.timezone).date()
    for _ in range(_SEARCH_DAYS):
        for opens, closes in open_ranges(hours, day):
            begin = max(opens, start.astimezone(UTC))
            if begin >= closes:
                continue
            if begin + remaining <= closes:
                return begin + remaining
            remaining -= closes - begin
        day += timedelta(days=1)
    return start + duration


def open_ranges(hours: Hours, day: date) -> list[tuple[datetime, datetime]]:
    """When ``hours`` opens and closes on ``day`` (its own calendar day), in UTC, in order;
    none on a closed day."""
    if day in hours.closed:
        return []
    tz = hours.timezone
    return [
        (
            datetime.combine(day, r.start, tzinfo=tz).astimezone(UTC),
            (
                datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz)
                if r.end is None
                else datetime.combine(day, r.end, tzinfo=tz)
            ).astimezone(UTC),
        )
        for r in sorted(hours.week[day.isoweekday() - 1], key=lambda r: r.start)
    ]
