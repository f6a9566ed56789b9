"""The real `callbridge serve` process posting to the fake Slack, SIGKILLed right after Slack
carried out a post but before the bridge stored the answer, then restarted: every call ends in
its correct final state and no message exists twice (the restart finds the post by its
metadata instead of posting again)."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest

from bridge.simulate import SCENARIOS
from tests.support.fake_slack import FakeSlack, Fault, Limits
from tests.support.harness import write_rules
from tests.support.process import serve
from tests.support.slack_env import ONCALL, RULES, SUPPORT, Env, scenario_calls
from tests.test_durability import wait_until_clean
from tests.test_slack_delivery import check_scenario

pytestmark = pytest.mark.slow
NAMES = ["answered", "no-answer", "cold-transfer", "forwarding"]


async def wait_for(predicate: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)  # watching another process, bounded by the deadline


async def test_sigkill_between_slack_answer_and_store_then_restart(tmp_path: Path) -> None:
    db = tmp_path / "bridge.db"
    rules = write_rules(tmp_path, RULES, name="slack-rules.yaml")
    calls = scenario_calls(NAMES, datetime.now(UTC), seed=21)
    async with FakeSlack(channels=(SUPPORT, ONCALL), limits=Limits.loose()) as slack:
        env = {"SLACK_BOT_TOKEN": slack.token, "SLACK_API_URL": slack.url}

        async def post_all(url: str, http: aiohttp.ClientSession) -> list[str]:
            statuses = []
            for _name, _ctx, events in calls:
                for payload in events:
                    async with http.post(url, data=json.dumps(payload)) as response:
                        assert response.status == 200
                        statuses.append((await response.json())["status"])
            return statuses

        async with (
            serve(tmp_path, db, rules=rules, extra_env=env) as server,
            aiohttp.ClientSession() as http,
        ):
            sending = asyncio.create_task(post_all(server.url, http))
            await wait_for(lambda: slack.calls["chat.postMessage"] >= 3)
            slack.fail("chat.postMessage", Fault.lost_answer())
            await wait_for(lambda: slack.pending_faults("chat.postMessage") == 0)
            posted_before = len(slack.messages())
            server.proc.kill()  # Slack has the message; the bridge never heard back
            assert await server.stop(signal.SIGKILL) == -signal.SIGKILL
            sending.cancel()
            await asyncio.gather(sending, return_exceptions=True)
        assert posted_before >= 4

        # Restart; the provider redelivers everything (at least once, unordered is fine).
        async with (
            serve(tmp_path, db, rules=rules, extra_env=env) as server,
            aiohttp.ClientSession() as http,
        ):
            statuses = await post_all(server.url, http)
            assert set(statuses) <= {"accepted", "duplicate"}
            await wait_until_clean(db, timeout=90)
            recovered = await server.wait_for_line(
                lambda line: line.get("event") == "delivery.recovered"
            )
            assert recovered["story"]
            assert await server.stop(signal.SIGTERM) == 0

        view = cast(Env, _SlackOnly(slack))
        for name, ctx, _events in calls:
            check_scenario(view, name, ctx.call_id(SCENARIOS[name].expected.story_leg))


class _SlackOnly:
    """What check_scenario reads of an Env: the fake Slack and its messages by metadata."""

    def __init__(self, slack: FakeSlack) -> None:
        self.slack = slack

    by_slot = Env.by_slot
