"""The pure routing decision: ``route(ruleset, call) -> RouteResult``.

Routes are tried top to bottom. A route matches when every condition in its ``when`` holds
(a list means any of its values). The first matching route wins, unless it says
``continue: true``, in which case later routes are tried as well; ``drop: true`` matches,
posts nothing and stops. Deliveries from several routes are merged per (destination, kind):
the first route that asked for one names it, and mentions are joined in route order.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

from bridge.core.calls import Call
from bridge.core.events import Participant
from bridge.rules.hours import is_open
from bridge.rules.model import (
    KINDS,
    Actions,
    Delivery,
    Kind,
    RouteResult,
    Ruleset,
    When,
)
from bridge.rules.patterns import matches_email, matches_number, normalise

UNMATCHED_ROUTE: Final = "unmatched"
_EXTENSION: Final = re.compile(r"^[1-9][0-9]{0,5}$")
EMERGENCY_NUMBERS: Final = frozenset({"112", "911", "999", "000"})


def is_extension(number: str) -> bool:
    """A colleague's internal extension: 1-6 digits, no + or 0 prefix, not an emergency number."""
    cleaned = normalise(number)
    return bool(_EXTENSION.match(cleaned)) and cleaned not in EMERGENCY_NUMBERS


def is_internal(call: Call) -> bool:
    """A call between colleagues (the provider has no flag for it).

    Internal means: the call is ``outbound`` (the provider reports calls between colleagues as
    outbound) AND the other side is a colleague, i.e. the dialled number is an internal
    extension (see :func:`is_extension`), or someone rung or answering has an
    ``account_number`` (only the platform's own users have one). Inbound calls never are.
    """
    if call.direction != "outbound":
        return False
    if is_extension(call.dialled):
        return True
    return any(p.account_number is not None for p in _reached(call))


def _reached(call: Call) -> Iterator[Participant]:
    """Everyone rung or answering, including transfer targets."""
    yield from call.rung
    if call.answered_by is not None:
        yield call.answered_by
    if call.connected is not None:
        yield call.connected
    for transfer in call.transfers:
        yield from transfer.to


def _target_matches(when: When, call: Call) -> bool:
    assert when.target is not None
    for person in _reached(call):
        numbers = (person.number, *person.user_numbers)
        if any(matches_number(when.target, n) for n in numbers if n):
            return True
        if any(matches_email(when.target, e) for e in person.user_emails):
            return True
    return False


def matches(when: When, call: Call) -> bool:
    """Whether every condition of ``when`` holds for ``call``."""
    if when.direction is not None and call.direction not in when.direction:
        return False
    if when.caller is not None and not matches_number(when.caller, call.caller.number):
        return False
    if when.destination is not None and not matches_number(when.destination, call.dialled):
        return False
    if when.caller_name is not None:
        name = call.caller.name or ""
        if not name or not any(r.search(name) for r in when.caller_name):
            return False
    if when.target is not None and not _target_matches(when, call):
        return False
    if when.internal is not None and is_internal(call) != when.internal:
        return False
    if when.during is not None and not any(is_open(h, call.started_at) for h in when.during):
        return False
    return when.outside is None or not any(is_open(h, call.started_at) for h in when.outside)


# End reasons of a call the line ended, not the caller: a busy line rings nobody, so its
# ring time says nothing of the caller's patience (`min_ring` is about the caller hanging up).
LINE_ENDED: Final = ("busy", "failed")


def _wanted(actions: Actions, kind: Kind, call: Call) -> bool:
    """Whether a route's deliveries of ``kind`` apply to the call as it is now."""
    if kind == "live":
        return True
    if kind == "summary":
        return call.ended
    if not call.missed:
        return False
    if (
        actions.min_ring is not None
        and call.end_reason not in LINE_ENDED
        and (call.ring_time is None or call.ring_time < actions.min_ring)
    ):
        return False
    return actions.missed_reason is None or (call.end_reason or "") in actions.missed_reason


def route(ruleset: Ruleset, call: Call) -> RouteResult:
    """Which routes match ``call`` and what should be posted where, now (pure)."""
    matched: list[tuple[str, Actions]] = []
    for rule in ruleset.routes:
        if not matches(rule.when, call):
            continue
        matched.append((rule.name, rule.actions))
        if rule.drop or not rule.continue_:
            break
    names = tuple(name for name, _ in matched)
    sources = matched
    if not matched and ruleset.unmatched is not None:
        sources = [(UNMATCHED_ROUTE, ruleset.unmatched)]
    merged: dict[tuple[str, Kind], Delivery] = {}
    for name, actions in sources:
        for kind in KINDS:
            if not actions.destinations(kind) or not _wanted(actions, kind, call):
                continue
            for dest in actions.destinations(kind):
                extra = (*actions.mention, *ruleset.destinations[dest].mention)
                old = merged.get((dest, kind))
                if old is None:
                    merged[(dest, kind)] = Delivery(dest, kind, name, _unique(extra))
                else:
                    mentions = _unique((*old.mentions, *extra))
                    merged[(dest, kind)] = Delivery(dest, kind, old.route, mentions)
    return RouteResult(matched_routes=names, deliveries=tuple(merged.values()), unmatched=not names)


def _unique(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))
