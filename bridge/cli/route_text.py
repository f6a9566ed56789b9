"""Plain-text description of a routing decision (what `callbridge route` prints; pure)."""

from __future__ import annotations

from bridge.core.calls import Call
from bridge.render.text import headline, step_line
from bridge.rules.match import UNMATCHED_ROUTE
from bridge.rules.model import Delivery, RouteResult, Ruleset


def describe(ruleset: Ruleset, call: Call, result: RouteResult) -> list[str]:
    """The call's ids and headline, the routes it matched and each message that would be
    posted."""
    lines = [f"{name(call)}: {headline(call)}"]
    if result.unmatched:
        fallback = " (sent to `unmatched`)" if ruleset.unmatched is not None else ""
        lines.append(f"  routes: none matched{fallback}")
    else:
        lines.append(f"  routes: {', '.join(result.matched_routes)}")
    if not result.deliveries:
        lines.append("  nothing would be posted")
    for delivery in result.deliveries:
        lines.extend(_delivery(ruleset, call, delivery))
    return lines


def name(call: Call) -> str:
    """``call ID``, with the ids a transfer merged into it: ``call t1 (merged t2)``."""
    merged = [i for i in call.call_ids if i != call.call_id]
    return f"call {call.call_id}" + (f" (merged {', '.join(merged)})" if merged else "")


def _delivery(ruleset: Ruleset, call: Call, delivery: Delivery) -> list[str]:
    where = ruleset.destinations[delivery.destination].describe
    via = "the unmatched fallback" if delivery.route == UNMATCHED_ROUTE else delivery.route
    mentions = f", mentioning {' '.join(delivery.mentions)}" if delivery.mentions else ""
    head = f"  {delivery.kind} -> {delivery.destination} ({where}) from {via}{mentions}:"
    if delivery.kind == "live":
        body = [f"      root: {headline(call)}"]
        body += [f"      thread: {step_line(step, ruleset.timezone)}" for step in call.steps]
    elif delivery.kind == "missed":
        body = [f"      alert: {headline(call)}"]
    else:
        body = [f"      summary: {headline(call)}"]
    return [head, *body]
