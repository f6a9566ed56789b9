"""Plain-text description of a routing decision (what `callbridge route` prints; pure): per
call its routes, messages and what it does to callback cases, and at the end the cases all
the input's calls make."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo

from bridge.core.calls import Call
from bridge.core.cases import Case, CaseKey, Fact, Missed, case_of, fact_id, fold
from bridge.core.duration import format_duration
from bridge.core.mentions import mentions_on
from bridge.render.text import headline, step_line
from bridge.rules.callbacks import outcome
from bridge.rules.casewords import fact_text, human, told
from bridge.rules.match import UNMATCHED_ROUTE
from bridge.rules.model import Delivery, RouteResult, Ruleset
from bridge.rules.targets import channels


def describe(
    ruleset: Ruleset, call: Call, result: RouteResult, cases: Sequence[Case] = ()
) -> list[str]:
    """The call's ids and headline, the routes it matched, each message that would be
    posted and what it does to callback cases (told against ``cases``, the cases of all the
    input's calls, when given)."""
    lines = [f"{name(call)}: {headline(call)}"]
    if result.unmatched:
        fallback = " (sent to `unmatched`)" if ruleset.unmatched is not None else ""
        lines.append(f"  routes: none matched{fallback}")
    else:
        lines.append(f"  routes: {', '.join(result.matched_routes)}")
    if not result.deliveries:
        lines.append("  nothing would be posted")
    found = outcome(ruleset, call, result)
    stacked = _stacked_on(found.facts, cases)
    for delivery in result.deliveries:
        lines.extend(_delivery(ruleset, call, delivery, stacked))
    tz = ruleset.timezone
    lines.extend(f"  case: {_role(key, fact, cases, tz)}" for key, fact in found.facts)
    if not found.facts:
        lines.append(f"  case: none ({found.why})")
    return lines


TIMES: Final = "\N{MULTIPLICATION SIGN}"  # as in "missed 2x"


def _stacked_on(facts: Sequence[tuple[CaseKey, Fact]], cases: Sequence[Case]) -> str | None:
    """The case (its id) a missed call stacks on: its alerts are that case's, not its own."""
    for key, fact in facts:
        if isinstance(fact, Missed):
            case = case_of([c for c in cases if c.key == key], fact.story_id)
            if case is not None and case.id != fact.story_id:
                return case.id
    return None


def _role(key: CaseKey, fact: Fact, cases: Sequence[Case], tz: ZoneInfo) -> str:
    """What the fact did among ``cases`` (without them: what it does in general)."""
    if not cases:
        return fact_text(key, fact, tz)
    mine = [c for c in cases if c.key == key]
    where = f"{key.number} in scope {key.scope}"
    if isinstance(fact, Missed):
        if (opened_by := _stacked_on([(key, fact)], mine)) is not None:
            return f"stacks on the open case of {where} (opened by call {opened_by})"
        return fact_text(key, fact, tz, opens=True)
    source = fact_id(fact)
    for case in mine:
        step = next((s for s in case.steps if s.source == source), None)
        if step is not None:
            verb = "closes" if step.kind == "closed" else "an attempt on"
            return f"{verb} the case of {where} (opened by call {case.id}): {told(fact)}"
    return f"no open case of {where} to close ({told(fact)})"


def fold_all(facts: Sequence[tuple[CaseKey, Fact]], now: datetime) -> list[Case]:
    """The cases the facts of all calls make, folded per (scope, number) as of ``now``."""
    by_key: dict[CaseKey, list[Fact]] = {}
    for key, fact in facts:
        by_key.setdefault(key, []).append(fact)
    return [case for key in sorted(by_key) for case in fold(key, by_key[key], now)]


def case_summary(ruleset: Ruleset, cases: Sequence[Case], now: datetime) -> list[str]:
    """One line per case, for the end of `callbridge route`."""
    tz = ruleset.timezone
    if not cases:
        return ["callback cases: none"]
    lines = [f"callback cases, as of {human(now, tz)}:"]
    lines.extend(f"  {case_line(case, now, tz)}" for case in cases)
    return lines


def case_line(case: Case, now: datetime, tz: ZoneInfo) -> str:
    """One case on one line: ``case +31612345678 (default): missed 2x (Tue 2026-12-01
    14:02, 14:09), tried 1x (Alice 14:25), called back by Alice at 14:32, 30m after the first
    miss`` (with a multiplication sign for the x)."""
    day = case.opened_at.astimezone(tz).date()

    def at(moment: datetime) -> str:
        local = moment.astimezone(tz)
        return local.strftime("%H:%M") if local.date() == day else human(moment, tz)

    misses = [human(case.opened_at, tz), *(at(m.at) for m in case.misses[1:])]
    parts = [f"missed {len(case.misses)}{TIMES} ({', '.join(misses)})"]
    if case.attempts:
        tries = ", ".join(f"{a.by} {at(a.at)}" for a in case.attempts)
        parts.append(f"tried {len(case.attempts)}{TIMES} ({tries})")
    if case.claim is not None:
        parts.append(f"claimed by {case.claim.user} at {at(case.claim.at)}")
    if case.escalated_at is not None:
        whom = case.first.escalate_to
        mentioning = f" mentioning {' '.join(whom)}" if whom else ""
        parts.append(f"escalated at {at(case.escalated_at)}{mentioning}")
    closing = case.closing
    if closing is None:
        parts.append(f"open, waiting {format_duration(now - case.opened_at)}")
        if (check := case.next_check()) is not None:
            what = "expires" if check == case.first.expire_at else "escalates"
            parts.append(f"{what} at {at(check)}")
    else:
        how = {
            "got_through": f"got through, answered by {closing.by}",
            "called_back": f"called back by {closing.by}",
            "done": f"closed by {closing.by}",
            "expired": "not called back: expired",
        }[closing.how]
        waited = format_duration(closing.at - case.opened_at)
        parts.append(f"{how} at {at(closing.at)}, {waited} after the first miss")
    return f"case {case.key.number} ({case.key.scope}): " + ", ".join(parts)


def name(call: Call) -> str:
    """``call ID``, with the ids a transfer merged into it: ``call t1 (merged t2)``."""
    merged = [i for i in call.call_ids if i != call.call_id]
    return f"call {call.call_id}" + (f" (merged {', '.join(merged)})" if merged else "")


def _delivery(
    ruleset: Ruleset, call: Call, delivery: Delivery, stacked: str | None = None
) -> list[str]:
    destination = ruleset.destinations[delivery.destination]
    where = destination.describe
    via = "the unmatched fallback" if delivery.route == UNMATCHED_ROUTE else delivery.route
    platform = channels(destination)[0][0]  # a destination names one (the loader's rule)
    shown = mentions_on(platform, delivery.mentions)
    mentions = f", mentioning {' '.join(shown)}" if shown else ""
    head = f"  {delivery.kind} -> {delivery.destination} ({where}) from {via}{mentions}:"
    if delivery.kind == "live":
        body = [f"      root: {headline(call)}"]
        body += [
            f"      thread: {step_line(step, ruleset.timezone, call.started_at)}"
            for step in call.steps
        ]
    elif delivery.kind == "missed" and stacked is not None:
        body = [f"      no alert of its own: the open case's alert (call {stacked}) counts it"]
    elif delivery.kind == "missed":
        body = [f"      alert: {headline(call)}"]
    else:
        body = [f"      summary: {headline(call)}"]
    return [head, *body]
