"""A bridge wired to the fake Slack Web API through the real slack-sdk client, on one
compressed clock (the bridge's wall clock, its pacer, and the fake's rate limiter all run
``scale`` times faster than real time, so Slack's per-second limits can be enforced in a test
that takes seconds instead of minutes)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from bridge.deliver.delivery import DeliveryOptions
from bridge.deliver.dispatcher import DispatchOptions
from bridge.secret import Secret
from bridge.service.app import Bridge
from bridge.service.chat import chat_platforms
from bridge.simulate import SCENARIOS, ScenarioContext, build
from tests.support.fake_slack import FakeSlack, Limits, Message
from tests.support.harness import make_settings, running_bridge, write_rules

SUPPORT = "C0123456789"
# Real seconds the shared event loop may take to carry a paced request to the fake Slack
# under a loaded machine; the fake's limits allow that much (scaled: ``Limits.late``), as
# Slack itself judges arrival times. The pacer's own arithmetic is tested in test_pacing.
LOOP_LATENCY = 0.01
ONCALL = "C0999999999"
RULES = f"""\
version: 1
timezone: Europe/Amsterdam
destinations:
  support: {{slack: {{channel: {SUPPORT}}}}}
  oncall: {{slack: {{channel: {ONCALL}, mention: ["<!subteam^S0123ABCD>"]}}}}
routes:
  - name: ignore internal calls
    when: {{internal: true}}
    drop: true
  - name: everything else
    live: support
    missed: [support, oncall]
"""


class ScaledTime:
    """Real time, ``scale`` times faster, from a fixed wall-clock start."""

    def __init__(self, scale: float, start: datetime | None = None) -> None:
        self.scale = scale
        self._t0 = time.monotonic()
        self._w0 = start or datetime(2026, 11, 24, 9, 0, tzinfo=UTC)

    def elapsed(self) -> float:
        return (time.monotonic() - self._t0) * self.scale

    def monotonic(self) -> float:
        return self._t0 + self.elapsed()

    def wall(self) -> datetime:
        return self._w0 + timedelta(seconds=self.elapsed())

    def wall_seconds(self) -> float:
        return self.wall().timestamp()

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of scaled time (pacing a simulated provider, not synchronising)."""
        await asyncio.sleep(seconds / self.scale)


@dataclass
class Env:
    bridge: Bridge
    client: TestClient[Any, Any]
    slack: FakeSlack
    time: ScaledTime

    async def send(self, payload: dict[str, Any]) -> str:
        response = await self.client.post(
            "/notifications",
            data=json.dumps(payload),
            headers={"Authorization": "Bearer s3cret-webhook-token"},
        )
        assert response.status == 200, await response.text()
        status: str = (await response.json())["status"]
        return status

    async def settle(self) -> None:
        """Everything stored is dispatched and everything planned is delivered."""
        assert self.bridge.delivery is not None
        while True:
            await self.bridge.dispatcher.drained()
            await self.bridge.delivery.settled()
            if not await self.bridge.store.dirty_stories():
                return

    def by_slot(self, channel: str) -> dict[tuple[str, str], list[Message]]:
        """(story, slot) -> messages carrying that metadata (more than one is a duplicate)."""
        found: dict[tuple[str, str], list[Message]] = {}
        for message in self.slack.messages(channel):
            meta = message.metadata or {}
            payload = meta.get("event_payload", {})
            key = (str(payload.get("story")), str(payload.get("slot")))
            found.setdefault(key, []).append(message)
        return found


@asynccontextmanager
async def slack_bridge(
    tmp_path: Path,
    *,
    scale: float = 100.0,
    limits: Limits | None = None,
    users: dict[str, str] | None = None,
    rules: str = RULES,
    settings_extra: dict[str, Any] | None = None,
    **bridge_kwargs: Any,
) -> AsyncIterator[Env]:
    """``settings_extra``: more settings; ``bridge_kwargs``: more arguments of Bridge."""
    clock = ScaledTime(scale)
    async with FakeSlack(
        channels=(SUPPORT, ONCALL),
        users=users,
        limits=limits or Limits(late=LOOP_LATENCY * scale),
        clock=clock.monotonic,
        wall=clock.wall_seconds,
    ) as slack:
        settings = make_settings(
            tmp_path,
            rules=write_rules(tmp_path, rules, name="slack-rules.yaml"),
            slack_bot_token=Secret(slack.token),
            slack_api_url=slack.url,
            **(settings_extra or {}),
        )
        async with running_bridge(
            settings,
            clock=clock.wall,
            platforms=chat_platforms(settings, timeout=0.5),
            monotonic=clock.monotonic,
            delivery=DeliveryOptions(time_scale=scale, base_backoff=1.0),
            dispatch=DispatchOptions(
                poll_interval=3600,
                janitor_interval=3600,
                cycle_interval=DispatchOptions().cycle_interval / scale,  # real seconds
            ),
            **bridge_kwargs,
        ) as (bridge, client, _unused):
            yield Env(bridge, client, slack, clock)


def scenario_calls(
    names: Iterable[str], start: datetime, *, seed: int = 0
) -> list[tuple[str, ScenarioContext, list[dict[str, Any]]]]:
    out = []
    for n, name in enumerate(names):
        ctx = ScenarioContext(start, seed=seed * 10_000 + n)
        out.append((name, ctx, build(name, ctx)))
    return out


ALL = tuple(SCENARIOS)
