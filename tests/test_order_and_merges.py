"""Arrival order, redelivery and merges never lose, duplicate or strand a message (issue 12,
items 1-4), end to end: provider payloads over HTTP, the real dispatcher and delivery, the
fake Slack Web API.

Each test forces a processing order the provider's at-least-once, unordered delivery produces
after a 503, a restart or a kill: it sends some events, lets the bridge fold, post and settle,
then sends the rest. The expected messages come from the flows' hand-written facts.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from bridge.simulate import ScenarioContext, build
from tests.support.slack_env import ONCALL, SUPPORT, Env, slack_bridge

# A support line with min_ring (as 4 of the 5 shipped rules files), and an `unmatched`
# fallback that also posts internal calls (so a consult leg gets a message of its own).
RULES = f"""\
version: 1
timezone: Europe/Amsterdam
destinations:
  support: {{slack: {{channel: {SUPPORT}}}}}
  oncall: {{slack: {{channel: {ONCALL}}}}}
routes:
  - name: support line
    when: {{direction: inbound}}
    live: support
    missed: support
    min_ring: 10s
unmatched: oncall
"""


def texts(env: Env, channel: str) -> list[str]:
    return [m.text for m in env.slack.messages(channel)]


def roots(env: Env, channel: str) -> list[str]:
    return [m.text for m in env.slack.roots(channel)]


async def send_all(env: Env, events: list[dict[str, Any]]) -> None:
    for payload in events:
        await env.send(payload)
    await env.settle()


async def test_ended_folded_first_still_alerts_with_min_ring(tmp_path: Path) -> None:
    """Item 1: `ended` alone has no ring time, so min_ring holds the alert back; the call's
    earlier events, folded later, show it rang 30 s: the alert must be posted."""
    async with slack_bridge(tmp_path, rules=RULES) as env:
        events = build("no-answer", ScenarioContext(env.time.wall(), seed=1))
        ended = events[-1]
        assert ended["status"] == "ended"
        await send_all(env, [ended])
        assert not [t for t in roots(env, SUPPORT) if "Missed call" in t]  # 0 s: held back
        await send_all(env, events[:-1])
        alerts = [t for t in roots(env, SUPPORT) if "Missed call" in t]
        assert len(alerts) == 1, roots(env, SUPPORT)
        live = [t for t in roots(env, SUPPORT) if "Missed call" not in t]
        assert len(live) == 1, live
        assert live[0].startswith("📵 Missed"), live


async def test_consult_leg_first_customer_call_is_still_posted(tmp_path: Path) -> None:
    """Item 2: the consult leg, the transfer (on the consult id) and `ended` are processed
    before the customer's own events. The customer's call must get its live message, and
    the consult leg's message in the `unmatched` channel must go."""
    async with slack_bridge(tmp_path, rules=RULES) as env:
        ctx = ScenarioContext(env.time.wall(), seed=2)
        events = build("warm-transfer-consult-survives", ctx)
        consult_id = ctx.call_id("consult")
        consult_leg = [e for e in events if e["call_id"] == consult_id]
        customer_leg = [e for e in events if e["call_id"] != consult_id]
        await send_all(env, consult_leg)
        assert roots(env, ONCALL), "the consult leg alone is an unmatched internal call"
        await send_all(env, customer_leg)
        live = roots(env, SUPPORT)
        assert len(live) == 1, live
        assert live[0].startswith("✅ Ended"), live
        assert "Sanne" in live[0]  # the customer ends up talking to Sanne
        assert texts(env, ONCALL) == [], "the consult leg's message must not stay behind"


async def test_two_copies_of_one_step_with_different_content(tmp_path: Path) -> None:
    """Item 3: `created` delivered twice, the second copy without the caller's name. Both
    fold into the same thread step; the call must still be posted through to its end."""
    async with slack_bridge(tmp_path, rules=RULES) as env:
        events = build("no-answer", ScenarioContext(env.time.wall(), seed=3))
        created = events[0]
        assert created["status"] == "created"
        nameless = copy.deepcopy(created)
        nameless["caller"]["name"] = None
        await send_all(env, [created, nameless, *events[1:]])
        live = [t for t in roots(env, SUPPORT) if "Missed call" not in t]
        assert len(live) == 1, live
        assert live[0].startswith("📵 Missed"), live
        assert len([t for t in roots(env, SUPPORT) if "Missed call" in t]) == 1
        root = env.slack.roots(SUPPORT)[0]
        replies = [r.text for r in env.slack.replies(SUPPORT, root.ts)]
        assert len(replies) == len(set(replies)), f"a step told twice: {replies}"


def cold_transfer_with_leg(ctx: ScenarioContext) -> list[dict[str, Any]]:
    """A blind transfer whose new leg (Johan's phone dialling 205) reports its own ringing
    before the transfer names it as ``merged_id``: an internal call on its own until then."""
    events = build("cold-transfer", ctx)
    transfer = next(e for e in events if e["status"] == "cold-transfer")
    leg_id = transfer["merged_id"]
    johan = transfer["redirector"]
    pieter = transfer["destination"]["targets"][0]
    leg_ringing = {
        "version": "v2",
        "call_id": leg_id,
        "timestamp": transfer["timestamp"],
        "status": "ringing",
        "direction": "outbound",
        "caller": johan,
        "destination": {"number": "205", "targets": [pieter]},
    }
    at = events.index(transfer)
    return [*events[:at], leg_ringing, *events[at:]]


async def test_cold_transfer_leaves_one_story(tmp_path: Path) -> None:
    """Item 4: the blind leg was posted as an internal call (`unmatched`) before the transfer
    merged it into the customer's call: after the merge exactly one story remains."""
    async with slack_bridge(tmp_path, rules=RULES) as env:
        events = cold_transfer_with_leg(ScenarioContext(env.time.wall(), seed=4))
        at = next(i for i, e in enumerate(events) if e["status"] == "cold-transfer")
        await send_all(env, events[:at])
        assert roots(env, ONCALL), "the blind leg alone is an unmatched internal call"
        await send_all(env, events[at:])
        live = roots(env, SUPPORT)
        assert len(live) == 1, live
        assert live[0].startswith("✅ Ended"), live
        assert texts(env, ONCALL) == [], "the blind leg's message must not stay behind"
