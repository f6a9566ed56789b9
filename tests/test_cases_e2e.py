"""Callback cases end to end (issue 16): provider payloads over HTTP, clicks stored as the
interactivity endpoint stores them, the real dispatcher and delivery, the fake Slack Web API.

Every flow of bridge/simulate/case_flows.py, in order and shuffled (with redeliveries): one
alert per case in the support channel, its thread telling the case's steps, and the case
ending as the flow's hand-written expectations say."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from bridge.secret import Secret
from bridge.simulate.case_client import play_case_flows, press_body, signed
from bridge.simulate.case_flows import CASE_FLOWS, CaseCall, CaseContext, Press
from tests.support.fake_slack import Message
from tests.support.slack_clicks import SIGNING_SECRET
from tests.support.slack_env import SUPPORT, Env, slack_bridge

RULES = f"""\
version: 1
timezone: Europe/Amsterdam
destinations:
  support: {{slack: {{channel: {SUPPORT}}}}}
routes:
  - name: customers
    when: {{direction: inbound}}
    live: support
    missed: support
  - name: callbacks
    when: {{direction: outbound}}
    live: support
"""
CLICKS = {"slack_signing_secret": Secret(SIGNING_SECRET)}
SCALE = 10.0  # slower than the other Slack tests: a case's deadlines are minutes away

CLOSED_AS = {
    "called_back": "Called back by {by}",
    "got_through": "Got through: answered by {by}",
    "done": "Closed by {by}",
    "expired": "Not called back in time",
}


async def press(env: Env, ctx: CaseContext, step: Press, n: int) -> None:
    """As Slack does: a signed block_actions interaction to /slack/interactions."""
    body = press_body(ctx, step, n, "default", env.time.wall_seconds())
    headers = signed(body, SIGNING_SECRET, env.time.wall_seconds())
    response = await env.client.post("/slack/interactions", data=body, headers=headers)
    assert response.status == 200, await response.text()
    await env.settle()


async def play(env: Env, name: str, *, shuffle: bool) -> CaseContext:
    ctx = CaseContext(env.time.wall(), seed=len(name))
    actions = CASE_FLOWS[name].build(ctx)
    payloads: list[dict[str, Any]] = [
        p for a in actions if isinstance(a, CaseCall) for p in a.payloads
    ]
    if shuffle:
        rng = random.Random(name)
        payloads += rng.sample(payloads, len(payloads) // 2)  # redeliveries
        rng.shuffle(payloads)
    for payload in payloads:
        await env.send(payload)
    await env.settle()
    for n, step in enumerate(a for a in actions if isinstance(a, Press)):
        await press(env, ctx, step, n)
    return ctx


def alerts(env: Env) -> list[Message]:
    return [m for m in env.slack.roots(SUPPORT) if "Missed call" in m.text]


@pytest.mark.parametrize("shuffle", [False, True], ids=["in-order", "shuffled"])
@pytest.mark.parametrize("name", sorted(CASE_FLOWS))
async def test_a_case_flow_ends_as_expected(tmp_path: Path, name: str, shuffle: bool) -> None:
    expected = CASE_FLOWS[name].expected
    async with slack_bridge(tmp_path, rules=RULES, scale=SCALE, settings_extra=CLICKS) as env:
        await play(env, name, shuffle=shuffle)
        (alert,) = alerts(env)  # one alert for the case, however many misses
        replies = [r.text for r in env.slack.replies(SUPPORT, alert.ts)]
        assert sum("Missed again" in r for r in replies) == expected.misses - 1, replies
        assert sum("Tried by" in r for r in replies) == expected.attempts, replies
        assert any("Still not called back" in r for r in replies) is expected.escalated, replies
        if expected.closed is None:
            assert not any("Called back" in r or "Closed by" in r for r in replies)
        else:
            closing = CLOSED_AS[expected.closed].format(by=expected.by)
            assert sum(closing in r for r in replies) == 1, (closing, replies)
        assert all(r.edits == 0 for r in env.slack.replies(SUPPORT, alert.ts))
        assert await env.bridge.store.count_open_cases() == (0 if expected.closed else 1)
        text = await (await env.client.get("/metrics")).text()
        if expected.closed is not None:
            line = f'callbridge_callback_cases_closed_total{{how="{expected.closed}"}} 1.0'
            assert line in text.splitlines()


async def test_a_second_claim_is_refused_and_the_first_claimer_holds_the_case(
    tmp_path: Path,
) -> None:
    async with slack_bridge(tmp_path, rules=RULES, scale=SCALE, settings_extra=CLICKS) as env:
        ctx = await play(env, "case-claimed-done", shuffle=False)
        (alert,) = alerts(env)
        replies = [r.text for r in env.slack.replies(SUPPORT, alert.ts)]
        assert sum("is calling back" in r for r in replies) == 1
        assert any("Alice is calling back" in r for r in replies)
        assert not any("Bob" in r for r in replies)
        assert ctx.first_call_id is not None


async def test_a_restart_between_the_miss_and_the_callback_closes_the_case(
    tmp_path: Path,
) -> None:
    ctx: CaseContext
    async with slack_bridge(tmp_path, rules=RULES, scale=SCALE, settings_extra=CLICKS) as env:
        ctx = CaseContext(env.time.wall(), seed=7)
        miss, callback = CASE_FLOWS["case-called-back"].build(ctx)
        assert isinstance(miss, CaseCall)
        assert isinstance(callback, CaseCall)
        for payload in miss.payloads:
            await env.send(payload)
        await env.settle()
        assert await env.bridge.store.count_open_cases() == 1
    async with slack_bridge(
        tmp_path, rules=RULES, scale=SCALE, settings_extra=CLICKS
    ) as env:  # same store, new Slack
        for payload in callback.payloads:
            await env.send(payload)
        await env.settle()
        assert await env.bridge.store.count_open_cases() == 0
        # The alert was posted in the first run; the new fake Slack sees the edit's attempt
        # through a lookup, or the closing reply: either way the case closed once.
        text = await (await env.client.get("/metrics")).text()
        assert 'callbridge_callback_cases_closed_total{how="called_back"} 1.0' in text.splitlines()


async def test_callbridge_simulate_plays_every_case_flow(tmp_path: Path) -> None:
    """The simulator's case flows (calls and signed presses) end as their expectations say."""
    async with slack_bridge(tmp_path, rules=RULES, scale=SCALE, settings_extra=CLICKS) as env:
        runs = await play_case_flows(
            env.client.session,
            str(env.client.make_url("/notifications")),
            sorted(CASE_FLOWS),
            token="s3cret-webhook-token",
            signing_secret=SIGNING_SECRET,
            now=env.time.wall,
            wall=env.time.wall_seconds,
        )
        assert [(r.flow, r.problems, r.skipped) for r in runs] == [
            (name, (), None) for name in sorted(CASE_FLOWS)
        ]
        await env.settle()
        assert len(alerts(env)) == len(CASE_FLOWS)
        assert await env.bridge.store.count_open_cases() == 0
        text = (await (await env.client.get("/metrics")).text()).splitlines()
        for how in ("called_back", "got_through", "expired", "done"):
            assert f'callbridge_callback_cases_closed_total{{how="{how}"}} 1.0' in text


async def test_a_flow_with_presses_is_skipped_without_the_signing_secret(tmp_path: Path) -> None:
    async with slack_bridge(tmp_path, rules=RULES, scale=SCALE) as env:
        (run,) = await play_case_flows(
            env.client.session,
            str(env.client.make_url("/notifications")),
            ["case-claimed-done"],
            token="s3cret-webhook-token",
            signing_secret=None,
            now=env.time.wall,
        )
        assert (run.sent, run.skipped) == (
            0,
            "needs the bridge's Slack signing secret (--slack-signing-secret)",
        )
