"""Health endpoints: /readyz answers whether webhooks can be accepted and stored (what a load
balancer needs), never whether Slack works; /delivery answers that (what a monitor needs).
Without the webhook token they say one word; details (paths, workspace, problems) need it."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.harness import payload
from tests.support.slack_env import RULES, Env, slack_bridge

AUTH = {"Authorization": "Bearer s3cret-webhook-token"}
PLANTED = "xoxb-planted-1234567890-secret"


async def wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)  # the bridge's own tasks run meanwhile; bounded by deadline


async def get(env: Env, path: str, **headers: str) -> tuple[int, dict[str, Any]]:
    response = await env.client.get(path, headers=headers)
    return response.status, await response.json()


def gauge(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    assert found, name
    return float(found.group(1))


async def test_readyz_stays_200_while_slack_is_down_and_delivery_says_why(
    tmp_path: Path,
) -> None:
    async with slack_bridge(tmp_path) as env:
        env.slack.down(503)
        # The provider's webhooks are still accepted: an outage of Slack stops no ingest.
        assert await env.send(payload(call_id="outage-1")) == "accepted"
        delivery = env.bridge.delivery
        assert delivery is not None
        await wait_for(lambda: "slack" in delivery.problems())

        assert await get(env, "/readyz") == (200, {"status": "ready"})
        status, ready = await get(env, "/readyz", **AUTH)
        assert status == 200
        assert ready["delivery"] == "failing"
        assert ready["chat"]["slack"]["status"] == "failing"

        assert await get(env, "/delivery") == (503, {"status": "failing"})
        status, report = await get(env, "/delivery", **AUTH)
        assert status == 503
        assert report["status"] == "failing"
        [reason] = report["reasons"]
        assert reason.startswith("slack: ")
        assert "503" in reason
        metrics = await (await env.client.get("/metrics")).text()
        assert gauge(metrics, 'callbridge_chat_platform_up{platform="slack"}') == 0

        env.slack.recover()
        await env.settle()
        assert env.slack.roots(RULES_SUPPORT)
        status, report = await get(env, "/delivery", **AUTH)
        assert status == 200, report
        assert report["status"] == "delivering"
        assert report["reasons"] == []
        metrics = await (await env.client.get("/metrics")).text()
        assert gauge(metrics, 'callbridge_chat_platform_up{platform="slack"}') == 1


RULES_SUPPORT = "C0123456789"
REFUSED = RULES.replace("live: support", f"live: {PLANTED}")


async def test_probes_without_the_token_say_one_word(tmp_path: Path) -> None:
    async with slack_bridge(tmp_path) as env:
        rules_path = env.bridge.rules.path
        rules_path.write_text(REFUSED, encoding="utf-8")
        assert await env.bridge.reload_rules() is False
        assert any(PLANTED in p for p in env.bridge.rules.problems)  # it is in the log

        for headers in ({}, {"Authorization": "Bearer wrong"}):
            assert await get(env, "/healthz", **headers) == (200, {"status": "alive"})
            assert await get(env, "/readyz", **headers) == (200, {"status": "ready"})
            assert await get(env, "/delivery", **headers) == (200, {"status": "delivering"})
            for path in ("/readyz?token=wrong", "/delivery?token=wrong"):
                text = await (await env.client.get(path)).text()
                assert len(json.loads(text)) == 1

        status, ready = await get(env, "/readyz", **AUTH)
        assert status == 200
        text = json.dumps(ready)
        assert "REFUSED" in ready["checks"]["rules"]["detail"]
        assert "1 problem on line " in ready["checks"]["rules"]["detail"]
        assert "Fake Workspace" in ready["chat"]["slack"]["detail"]  # details with the token
        assert PLANTED not in text  # never, not even with the token
        assert str(rules_path) not in text
        status, report = await get(env, "/delivery", **AUTH)
        assert "Fake Workspace" in report["chat"]["slack"]["detail"]
        assert PLANTED not in json.dumps(report)
