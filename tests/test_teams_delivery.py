"""End to end: provider events -> the real bridge -> TeamsNotifier -> the fake Bot Connector.

Time runs :data:`SPEED` times faster than the wall clock for everything time-based (the
bridge's clock, the fake's rate-limit windows, and the client-side pacing, whose Teams rates
are scaled by the same factor), so Teams' limits are enforced as published while a
missed-call settle time of 8 s or a ``Retry-After: 1`` costs milliseconds. Waiting is on the
bridge's own signals (``drained``, ``settled``) and on events, never on sleeps.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bridge.core.calls import fold
from bridge.core.events import decode
from bridge.deliver.delivery import DeliveryOptions, Platform
from bridge.deliver.pacing import TEAMS, Rate
from bridge.notify import AuthError
from bridge.notify.teams import TeamsNotifier
from bridge.render.teams import render as teams_render
from bridge.render.text import render as text_render
from bridge.simulate import SCENARIOS, ScenarioContext
from tests.support.fake_teams import FakeTeams, FakeTokens, Fault, Thread
from tests.support.harness import RecordingNotifier, make_settings, running_bridge, write_rules

SPEED = 100.0
CHANNEL = "19:abc@thread.tacv2"
TOKEN = "fake-bot-token"
AUTH = {"Authorization": "Bearer s3cret-webhook-token"}
RULES = f"""\
version: 1
timezone: Europe/Amsterdam
destinations:
  sales: {{teams: {{conversation: "{CHANNEL}"}}}}
routes:
  - name: everything
    live: sales
    missed: sales
# The cards, not callback cases, are tested here: no escalation on the compressed clock.
callbacks: {{escalate_after: off}}
"""
# From the scenario descriptions (bridge/simulate/__init__.py): nobody answered these.
MISSED = {"no-answer", "caller-hangs-up", "unavailable"}
PACING = {
    "teams": {
        action: tuple((scope, Rate(r.per_second * SPEED, r.burst)) for scope, r in limits)
        for action, limits in TEAMS.items()
    }
}


class FastClock:
    """Wall time from ``start``, running SPEED times faster than time.monotonic()."""

    def __init__(self, start: datetime) -> None:
        self.start, self._t0 = start, time.monotonic()

    def seconds(self) -> float:
        return (time.monotonic() - self._t0) * SPEED

    def __call__(self) -> datetime:
        return self.start + timedelta(seconds=self.seconds())


@dataclass
class World:
    bridge: Any
    client: Any
    teams: FakeTeams
    tokens: FakeTokens
    auth_failed: asyncio.Event
    clock: FastClock

    async def post(self, name: str, seed: int = 1) -> None:
        ctx = ScenarioContext(self.clock() - timedelta(hours=1), seed=seed)
        for doc in SCENARIOS[name].build(ctx):
            response = await self.client.post("/notifications", json=doc, headers=AUTH)
            assert response.status == 200, await response.text()

    async def settle(self) -> None:
        await self.bridge.dispatcher.drained()
        async with asyncio.timeout(30):  # a deadline, so a bug fails instead of hanging
            await self.bridge.delivery.settled()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    clock = FastClock(datetime(2026, 11, 24, 12, 0, tzinfo=UTC))
    tokens = FakeTokens(TOKEN)
    auth_failed = asyncio.Event()

    def on_call(method: str, result: str) -> None:
        if result == "auth":
            auth_failed.set()

    async with FakeTeams(token=TOKEN, channels=[CHANNEL], clock=clock.seconds) as teams:

        def platforms(session: aiohttp.ClientSession, metrics: Any) -> Mapping[str, Platform]:
            notifier = TeamsNotifier(tokens, session, teams.url, timeout=5, on_call=on_call)
            return {
                "slack": Platform(RecordingNotifier(), text_render),
                "teams": Platform(notifier, teams_render, notifier.link),
            }

        settings = make_settings(tmp_path)  # writes the default rules file, so:
        settings = replace(settings, rules=write_rules(tmp_path, RULES))
        async with running_bridge(
            settings,
            clock=clock,  # type: ignore[arg-type]
            platforms=platforms,
            pacing=PACING,
            delivery=DeliveryOptions(time_scale=SPEED, auth_pause=30.0),
        ) as (bridge, client, _slack):
            yield World(bridge, client, teams, tokens, auth_failed, clock)


def steps_of(name: str, seed: int = 1) -> int:
    """How many story steps the fold of the scenario has (one thread reply each)."""
    docs = SCENARIOS[name].build(ScenarioContext(seed=seed))
    return len(fold([decode(_json(d)) for d in docs]).steps)


def _json(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc).encode()


def check_live_thread(thread: Thread, name: str, seed: int = 1) -> None:
    title = thread.root.texts()[0]
    assert title.startswith("📵 Missed" if name in MISSED else "✅ Ended"), (name, title)
    replies = [r.texts()[0] for r in thread.replies]
    assert len(replies) == steps_of(name, seed), (name, replies)
    assert len(set(replies)) == len(replies), f"{name}: duplicate replies {replies}"
    inbound = SCENARIOS[name].expected.direction == "inbound"
    if inbound and name not in ("unavailable", "auto-answer"):
        assert "Call came in on +31 50 800 90" in replies[0], (name, replies)  # support/sales
    last = replies[-1]
    assert ("Missed: " in last) if name in MISSED else ("Call ended, talked " in last), last


TRANSFERS = [name for name, s in SCENARIOS.items() if s.expected.transfers]


async def deliver_each(world: World, names: list[str]) -> None:
    """Post each scenario, let delivery settle, and check what Teams shows for it."""
    seen = 0
    for name in names:
        seed = list(SCENARIOS).index(name) + 1  # distinct seeds: distinct call ids
        await world.post(name, seed=seed)
        await world.settle()
        threads = world.teams.threads(CHANNEL)
        new, seen = threads[seen:], len(threads)
        alerts = [t for t in new if t.root.texts()[0].startswith("📵 Missed call")]
        live = [t for t in new if t not in alerts]
        assert len(live) == 1, f"{name}: {len(live)} live threads"  # also for transfers
        assert len(alerts) == (1 if name in MISSED else 0), name
        check_live_thread(live[0], name, seed)
        for alert in alerts:
            assert alert.replies == []
            assert alert.root.edits == 0
    assert world.teams.rejected == []
    assert world.teams.calls["create"] == len(names) + len(MISSED & set(names))


async def test_every_scenario_without_a_transfer_ends_with_the_expected_cards(
    world: World,
) -> None:
    await deliver_each(world, [name for name in SCENARIOS if name not in TRANSFERS])
    assert world.teams.deleted() == []


async def test_every_transfer_scenario_ends_with_one_thread_telling_the_story(
    world: World,
) -> None:
    await deliver_each(world, TRANSFERS)


async def test_service_unavailable_for_a_while_then_recovering(world: World) -> None:
    world.teams.fail("*", Fault.http(503), times=6)
    await world.post("forwarding")
    await world.settle()

    assert world.teams.pending_faults("*") == 0
    [thread] = world.teams.threads(CHANNEL)
    check_live_thread(thread, "forwarding")


async def test_a_429_storm_is_ridden_out(world: World) -> None:
    # Retry-After pauses the client-side pacer in real seconds (app.py's Pacer runs on
    # time.monotonic), so the storm is short: four 429s in a row, one second each.
    world.teams.fail("*", Fault.ratelimit(retry_after=1), times=4)
    await world.post("call-group")
    await world.post("no-answer", seed=2)
    await world.settle()

    assert world.teams.pending_faults("*") == 0
    assert sum(world.teams.ratelimited.values()) == 4
    threads = world.teams.threads(CHANNEL)
    assert len(threads) == 3  # two live threads and one missed alert
    live = [t for t in threads if not t.root.texts()[0].startswith("📵 Missed call")]
    missed = [t for t in live if t.root.texts()[0].startswith("📵")]
    answered = [t for t in live if t not in missed]
    check_live_thread(answered[0], "call-group")
    check_live_thread(missed[0], "no-answer", seed=2)


async def test_unauthorized_shows_in_delivery_status_and_delivery_resumes(world: World) -> None:
    world.tokens.recover("a-token-the-connector-rejects")
    await world.post("answered")
    async with asyncio.timeout(30):
        await world.auth_failed.wait()

    response = await world.client.get("/readyz", headers=AUTH)
    assert response.status == 200  # webhooks are still accepted: readiness is about ingest
    body = await response.json()
    assert body["delivery"] == "failing"
    assert body["chat"]["teams"]["status"] == "failing"
    response = await world.client.get("/delivery", headers=AUTH)
    body = await response.json()
    assert response.status == 503
    assert body["chat"]["teams"]["status"] == "failing"
    [reason] = body["reasons"]
    assert reason.startswith("teams: ")
    assert "TEAMS_APP_ID" in reason
    assert world.teams.threads(CHANNEL) == []

    world.tokens.recover(TOKEN)
    await world.settle()

    [thread] = world.teams.threads(CHANNEL)
    check_live_thread(thread, "answered")
    response = await world.client.get("/delivery", headers=AUTH)
    assert response.status == 200, await response.text()


async def test_a_token_provider_auth_error_pauses_then_resumes(world: World) -> None:
    world.tokens.fail_with(
        AuthError("Teams: bad secret", platform="teams", method="token", code="AADSTS7000215")
    )
    await world.post("outbound")
    async with asyncio.timeout(30):
        await world.auth_failed.wait()
    assert world.teams.calls["create"] == 0

    world.tokens.recover()
    await world.settle()
    [thread] = world.teams.threads(CHANNEL)
    check_live_thread(thread, "outbound")


async def test_a_channel_without_the_bot_fails_alone_and_pauses_nothing(world: World) -> None:
    world.teams.not_installed.add(CHANNEL)  # e.g. the app was removed from this team
    await world.post("answered")
    await world.settle()  # its messages gave up: nothing is left pending
    assert world.teams.threads(CHANNEL) == []
    text = await (await world.client.get("/metrics")).text()
    assert 'callbridge_delivery_failures_total{code="forbidden",platform="teams"}' in text
    assert not world.auth_failed.is_set()
    assert world.bridge.delivery.auth_problems == {}

    world.teams.not_installed.discard(CHANNEL)  # reinstalled: the next call goes at once
    await world.post("outbound", seed=2)
    await world.settle()
    [thread] = world.teams.threads(CHANNEL)
    check_live_thread(thread, "outbound", seed=2)
    response = await world.client.get("/delivery", headers=AUTH)
    assert response.status == 200, await response.text()


async def test_restart_mid_burst_finishes_every_call_once(tmp_path: Path) -> None:
    """The service stops while cards are still queued; the next start (same store) posts the
    rest: every call ends with one correct thread, nothing twice."""
    clock = FastClock(datetime(2026, 11, 24, 12, 0, tzinfo=UTC))
    tokens = FakeTokens(TOKEN)
    names = ["answered", "no-answer", "forwarding", "call-group", "pickup"]
    async with FakeTeams(token=TOKEN, channels=[CHANNEL], clock=clock.seconds) as teams:

        def platforms(session: aiohttp.ClientSession, metrics: Any) -> Mapping[str, Platform]:
            notifier = TeamsNotifier(tokens, session, teams.url, timeout=5)
            return {
                "slack": Platform(RecordingNotifier(), text_render),
                "teams": Platform(notifier, teams_render, notifier.link),
            }

        settings = replace(make_settings(tmp_path), rules=write_rules(tmp_path, RULES))
        options = {
            "clock": clock,
            "platforms": platforms,
            "pacing": {"teams": TEAMS},  # real-time Teams limits: the first run cannot finish
            "delivery": DeliveryOptions(time_scale=SPEED),
        }
        async with running_bridge(settings, **options) as (bridge, client, _slack):
            for n, name in enumerate(names, start=1):
                ctx = ScenarioContext(clock() - timedelta(hours=1), seed=n)
                for doc in SCENARIOS[name].build(ctx):
                    response = await client.post("/notifications", json=doc, headers=AUTH)
                    assert response.status == 200
            await bridge.dispatcher.drained()
        posted_before = len(teams.threads(CHANNEL))
        assert posted_before < len(names)  # stopped mid-burst

        options["pacing"] = PACING
        async with running_bridge(settings, **options) as (bridge, _client, _slack):
            await bridge.dispatcher.drained()
            async with asyncio.timeout(30):
                assert bridge.delivery is not None
                await bridge.delivery.settled()

        threads = teams.threads(CHANNEL)
        alerts = [t for t in threads if t.root.texts()[0].startswith("📵 Missed call")]
        live = [t for t in threads if t not in alerts]
        assert len(live) == len(names)
        assert len(alerts) == len(MISSED & set(names))
        by_caller = {t.root.texts()[0]: t for t in live}
        assert len(by_caller) == len(names)  # distinct calls, no duplicated root
        assert teams.deleted() == []
