"""The daily digest end to end: missed calls and a callback through the real bridge, the
janitor's round at the digest's time, the card in the fake Bot Connector (HTTP), once.

Tuesday 24 November 2026 in Amsterdam (CET, UTC+1): the bridge starts at 16:00 (too late
for that morning's digest: more than 6 hours); +31 50 123 4567 is missed at 16:00 and called
back by Sanne at 16:30 (answered 16:30:05); +31 6 12345678 is missed at 16:05 and still
waits. The next digest is due on Wednesday at 08:30 (07:30 UTC)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from bridge.deliver.digests import Digests
from tests.support.clicks_env import callback_call, missed_call
from tests.support.harness import FakeClock
from tests.support.teams_env import CHANNEL, World, teams_bridge
from tests.support.teams_env import RULES as TEAMS_RULES

T0 = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # Tue 16:00 in Amsterdam
DUE = datetime(2026, 11, 25, 7, 30, tzinfo=UTC)  # Wed 08:30
RULES = TEAMS_RULES + 'digest: {at: "08:30", to: sales}\n'


def digests(world: World) -> list[list[str]]:
    """The texts of every digest card in the channel."""
    return [
        t.root.texts() for t in world.teams.threads(CHANNEL) if "Callbacks" in t.root.texts()[0]
    ]


async def a_day_of_calls(world: World) -> None:
    await world.send(missed_call("miss-1", T0))
    await world.send(missed_call("miss-2", T0 + timedelta(minutes=5), caller="+31612345678"))
    await world.bridge.dispatcher.drained()
    world.clock.now = T0 + timedelta(minutes=30)
    await world.send(callback_call("back-1", world.clock.now, "0501234567", "Sanne"))
    await world.settle()


async def test_the_digest_goes_out_once_at_its_time(tmp_path: Path) -> None:
    async with teams_bridge(tmp_path, rules=RULES, clock=FakeClock(T0)) as world:
        await a_day_of_calls(world)
        world.clock.now = DUE - timedelta(minutes=1)
        await world.bridge.dispatcher.sweep()  # not yet
        await world.settle()
        assert digests(world) == []
        planned = world.bridge.metrics.digests
        assert planned._value.get() == 0

        world.clock.now = DUE + timedelta(seconds=20)  # the janitor's next round
        await world.bridge.dispatcher.sweep()
        await world.settle()
        assert digests(world) == [
            [
                "📊 Callbacks · Wed 25 Nov",
                "2 missed customers since Tue 08:30",
                "✅ 1 called back or got through (in 30 min)",
                "⏳ 1 still waiting",
                "Still waiting",
                "+31 6 12345678 since Tue 16:05 (16 h 25 min)",
            ]
        ]

        assert planned._value.get() == 1  # one destination with one channel
        world.clock.advance(timedelta(minutes=1))  # rounds later in its window: nothing
        await world.bridge.dispatcher.sweep()
        await world.settle()
        assert len(digests(world)) == 1
        assert planned._value.get() == 1
        # a restarted bridge (or another instance taking over) plans nothing twice either
        ruleset = world.bridge.rules.current
        assert ruleset is not None
        assert await Digests(world.bridge.store).plan(ruleset, world.clock.now) == 0


async def test_a_bridge_down_at_the_time_posts_it_late_within_six_hours_only(
    tmp_path: Path,
) -> None:
    async with teams_bridge(tmp_path, rules=RULES, clock=FakeClock(T0)) as world:
        await a_day_of_calls(world)
        world.clock.now = DUE + timedelta(hours=6, minutes=1)  # back after the grace
        await world.bridge.dispatcher.sweep()
        await world.settle()
        assert digests(world) == []
        world.clock.now = DUE + timedelta(days=1, hours=5)  # Thursday, 5 h late: posted
        await world.bridge.dispatcher.sweep()
        await world.settle()
        [thursday] = digests(world)
        assert thursday[:2] == [
            "📊 Callbacks · Thu 26 Nov",
            "No new missed customers since Wed 08:30; 1 from before",
        ]
