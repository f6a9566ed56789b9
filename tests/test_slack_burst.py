"""200 calls in 60 seconds into one Slack channel, with Slack's limits enforced by the fake:
every call ends in its correct final state, every missed alert is posted, nothing is lost or
duplicated, and pacing keeps the bridge out of 429s. Time is compressed (see slack_env)."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from bridge.simulate import SCENARIOS
from tests.support.slack_env import ALL, ONCALL, SUPPORT, scenario_calls, slack_bridge
from tests.test_slack_delivery import check_scenario

pytestmark = pytest.mark.slow

CALLS = 200
WINDOW = 60.0  # seconds (scaled) over which the calls start


async def test_burst_of_200_calls_into_one_channel(tmp_path: Path) -> None:
    rng = random.Random(2026)
    names = [rng.choice(ALL) for _ in range(CALLS)]
    async with slack_bridge(tmp_path, scale=100.0) as env:
        calls = scenario_calls(names, env.time.wall(), seed=11)

        ended_at: dict[str, float] = {}  # story -> when its `ended` was accepted (scaled)

        async def one_call(n: int, events: list[dict[str, object]]) -> None:
            await env.time.sleep(WINDOW * n / CALLS)
            for payload in events:
                assert await env.send(payload) == "accepted"
                if payload["status"] == "ended":
                    ended_at[calls[n][1].call_id()] = env.time.wall_seconds()
                await env.time.sleep(rng.uniform(0.5, 3.0))  # the call goes on

        await asyncio.gather(*(one_call(n, events) for n, (_, _, events) in enumerate(calls)))
        await env.settle()

        for name, ctx, _events in calls:
            check_scenario(env, name, ctx.call_id(SCENARIOS[name].expected.story_leg))
        missed = sum(SCENARIOS[name].expected.missed for name in names)
        assert len([k for k in env.by_slot(ONCALL) if k[1] == "missed"]) == missed
        live = [k for k in env.by_slot(SUPPORT) if k[1] == "root"]
        assert len(live) == sum(name != "internal" for name in names)
        assert env.slack.ratelimited.total() == 0, env.slack.ratelimited
        # Alerts are not held up by the live channel's backlog of thread replies (it takes
        # Slack-paced minutes to drain): each alert goes out early in that drain, not at its
        # end. Relative, not absolute: speed is measured in tests/bench, not asserted here.
        first = min(ended_at.values())
        drained = max(float(m.ts) for m in env.slack.messages(SUPPORT)) - first
        for (story, slot), [alert] in env.by_slot(ONCALL).items():
            assert slot == "missed"
            waited = float(alert.ts) - ended_at[story]
            assert waited < drained / 4, (story, waited, drained)
