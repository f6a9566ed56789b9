"""High availability on PostgreSQL, with real `callbridge serve` processes and the fake Slack.

Two instances share one ``postgresql://`` store (a fresh database per test). Every event of a
set of scenario calls goes to a random instance, some to both at once (the provider may
redeliver); the final Slack state of every call must be correct, free of duplicates, and the
same as a single instance produces. Then the leader is SIGKILLed mid-burst: the standby takes
over and finishes every call. Finally, PostgreSQL going away makes webhooks answer 503 (so
the provider retries) and ``/readyz`` fail, and everything recovers by itself.

The bridge paces Slack in real time (0.9 posts per second per channel), so the rules below
spread calls over ten channels by the caller's last digit; missed alerts wait 8 s after the
call ended. Each test takes well under a minute.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import aiohttp
import asyncpg  # type: ignore[import-untyped]
import pytest

from bridge.simulate import SCENARIOS, ScenarioContext
from tests.store import pg
from tests.support.fake_slack import FakeSlack, Limits, Message
from tests.support.harness import write_rules
from tests.support.process import Server, serve
from tests.support.proxy import Proxy
from tests.support.slack_env import ONCALL, SUPPORT, Env, scenario_calls
from tests.test_slack_delivery import INTERNAL, check_scenario

pytestmark = pytest.mark.slow

Payload = dict[str, Any]
Call = tuple[str, ScenarioContext, list[Payload]]  # (scenario name, ScenarioContext, its events)

CHANNELS = tuple(f"C0HA000000{digit}" for digit in range(10))  # live channel per last digit
MENTION = "<!subteam^S0123ABCD>"
RULES = (
    "version: 1\n"
    "timezone: Europe/Amsterdam\n"
    "destinations:\n"
    + "".join(f"  live{d}: {{slack: {{channel: {ch}}}}}\n" for d, ch in enumerate(CHANNELS))
    + f'  oncall: {{slack: {{channel: {ONCALL}, mention: ["{MENTION}"]}}}}\n'
    "routes:\n"
    "  - name: ignore internal calls\n"
    "    when: {internal: true}\n"
    "    drop: true\n"
    + "".join(
        f"  - name: callers ending in {d}\n"
        f'    when: {{caller: "*{d}"}}\n'
        f"    live: live{d}\n"
        f"    missed: [live{d}, oncall]\n"
        for d in range(10)
    )
)
DEADLINE = 60.0  # seconds for the bridges (other processes) to post everything
TAKEOVER = 5.0  # seconds: a SIGKILLed leader's session ends at once, the standby polls 1/s


# -- PostgreSQL ------------------------------------------------------------------------------


async def require_postgres() -> None:
    """Skip, loudly, only when no PostgreSQL server can be reached at all."""
    reason = await pg.unreachable_reason()
    if reason is not None:
        pytest.skip(
            f"POSTGRESQL HA NOT TESTED: no server at {pg.MAINTENANCE_DSN} ({reason}); start it "
            "(pg_ctlcluster <version> main start) or set CALLBRIDGE_TEST_PG"
        )


@pytest.fixture
async def database() -> AsyncIterator[str]:
    """A fresh PostgreSQL database (dropped afterwards)."""
    await require_postgres()
    async with pg.fresh_database() as dsn:
        yield dsn


async def wait_until_settled(dsn: str, timeout: float = DEADLINE) -> None:
    """Every stored event folded, every planned message posted (polling the shared store:
    the work happens in other processes), and nothing given up."""
    deadline = time.monotonic() + timeout
    conn = await asyncpg.connect(dsn)
    try:
        while True:
            dirty, pending, failed = await conn.fetchrow(
                "SELECT (SELECT count(*) FROM stories WHERE dirty),"
                " (SELECT count(*) FROM outbox"
                "  WHERE posted_version < desired_version AND NOT failed),"
                " (SELECT count(*) FROM outbox WHERE failed)"
            )
            assert failed == 0, await conn.fetch("SELECT * FROM outbox WHERE failed")
            if dirty == 0 and pending == 0:
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"not settled within {timeout}s: {dirty} stories to fold, "
                    f"{pending} messages to post"
                )
            await asyncio.sleep(0.2)  # polling other processes' progress, bounded
    finally:
        await conn.close()


# -- the instances -----------------------------------------------------------------------------


@asynccontextmanager
async def instances(
    tmp_path: Path, dsn: str, slack: FakeSlack, count: int
) -> AsyncIterator[list[Server]]:
    """``count`` serve processes on one store, started one after the other (the first
    leads: it takes the lock while starting, before it listens)."""
    rules = write_rules(tmp_path, RULES, name="ha-rules.yaml")
    env = {"SLACK_BOT_TOKEN": slack.token, "SLACK_API_URL": slack.url}
    async with AsyncExitStack() as stack:
        servers = [
            await stack.enter_async_context(serve(tmp_path, store=dsn, rules=rules, extra_env=env))
            for _ in range(count)
        ]
        yield servers
        for server in servers:
            if server.proc.returncode is None:
                assert await server.stop(signal.SIGTERM) == 0


def is_leader_line(line: dict[str, Any]) -> bool:
    return line.get("event") == "leader.acquired"


async def post(http: aiohttp.ClientSession, server: Server, payload: Payload) -> str:
    async with http.post(server.url, data=json.dumps(payload)) as response:
        assert response.status == 200, await response.text()
        status: str = (await response.json())["status"]
        return status


class Sender:
    """Plays the provider against several instances: each event of a call, in order, to a
    random instance, and sometimes to two at once (a redelivery). When an instance fails at
    the HTTP level (it was killed), the event goes to another one, as the provider's retry
    would, and that instance is not used again. ``gap``: seconds between the events of one
    call (pacing, as a real call's events are apart; 0 sends them back to back)."""

    def __init__(self, servers: Sequence[Server], rng: random.Random, gap: float = 0.0) -> None:
        self.servers = list(servers)
        self.rng = rng
        self.gap = gap
        self.failed: set[int] = set()  # instances that failed at the HTTP level
        self.sent = 0  # events delivered
        self.resent = 0  # events retried on another instance after a failure

    def alive(self) -> list[int]:
        return [i for i in range(len(self.servers)) if i not in self.failed]

    async def _deliver(
        self, http: aiohttp.ClientSession, index: int, payload: Payload
    ) -> tuple[str, bool]:
        """(status, whether it had to be retried elsewhere)."""
        try:
            return await post(http, self.servers[index], payload), False
        except aiohttp.ClientConnectionError:
            self.failed.add(index)
        self.resent += 1
        for other in self.alive():
            return await post(http, self.servers[other], payload), True
        raise AssertionError("no instance left to deliver to")

    async def call(self, http: aiohttp.ClientSession, events: Iterable[Payload]) -> None:
        for n, payload in enumerate(events):
            if n and self.gap:
                await asyncio.sleep(self.gap)  # pacing the load, not waiting for a result
            targets = self.alive()
            if len(targets) > 1 and self.rng.random() < 0.25:
                sent = await asyncio.gather(
                    *(self._deliver(http, i, payload) for i in self.rng.sample(targets, 2))
                )
                statuses = sorted(status for status, _retried in sent)
                if any(retried for _status, retried in sent):
                    # The killed instance may have stored it without answering.
                    assert set(statuses) <= {"accepted", "duplicate"}, statuses
                else:  # both stored it at once: exactly one of them was first
                    assert statuses == ["accepted", "duplicate"], statuses
            else:
                status, retried = await self._deliver(http, self.rng.choice(targets), payload)
                assert status == "accepted" or (retried and status == "duplicate"), status
            self.sent += 1

    async def all(self, calls: Sequence[Call], *, concurrency: int = 6) -> None:
        limit = asyncio.Semaphore(concurrency)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:

            async def one(events: list[Payload]) -> None:
                async with limit:
                    await self.call(http, events)

            await asyncio.gather(*(one(events) for _name, _ctx, events in calls))


# -- what Slack shows ------------------------------------------------------------------------


def story_of(name: str, ctx: ScenarioContext) -> str:
    return str(ctx.call_id(SCENARIOS[name].expected.story_leg))


def channel_of(events: Sequence[Payload]) -> str:
    """The live channel the rules above choose: by the last digit of the caller's number."""
    return CHANNELS[int(str(events[0]["caller"]["number"])[-1])]


def slot_key(message: Message) -> tuple[str, str]:
    payload = (message.metadata or {}).get("event_payload", {})
    return str(payload.get("story")), str(payload.get("slot"))


@dataclass(frozen=True)
class Shown:
    """What a person sees of one call: the root's final text, the thread, the alerts."""

    root: str | None
    replies: tuple[str, ...]
    alerts: tuple[str, ...]  # every `missed` message, in any channel

    def thread(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The thread as a reader tells two threads apart: the replies' times in thread
        order, and the replies themselves. Replies within the same second may come in
        either order: a thread is a log, in the order the bridge learned the steps, and
        when it folds (one event at a time or several at once) depends on timing even for
        one instance (a cold transfer's `ringing` and `transfer` share a second)."""
        times = tuple(text.split(" ", 1)[0] for text in self.replies)
        return times, tuple(sorted(self.replies))


def shown(slack: FakeSlack, story: str, channel: str) -> Shown:
    mine = [m for m in slack.messages() if slot_key(m)[0] == story]
    roots = [m for m in mine if slot_key(m)[1] == "root"]
    assert len(roots) <= 1, [m.text for m in roots]
    replies = slack.replies(channel, roots[0].ts) if roots else []
    alerts = sorted(f"{m.channel}: {m.text}" for m in mine if slot_key(m)[1] == "missed")
    return Shown(roots[0].text if roots else None, tuple(m.text for m in replies), tuple(alerts))


class _CallView:
    """What ``check_scenario`` reads of an Env, for one call: its live channel stands in
    for SUPPORT (the rules here spread calls over ten channels)."""

    def __init__(self, slack: FakeSlack, channel: str) -> None:
        self._slack, self._channel = slack, channel
        self.slack = self

    def _real(self, channel: str) -> str:
        return self._channel if channel == SUPPORT else channel

    def replies(self, channel: str, root_ts: str) -> list[Message]:
        return self._slack.replies(self._real(channel), root_ts)

    def by_slot(self, channel: str) -> dict[tuple[str, str], list[Message]]:
        found: dict[tuple[str, str], list[Message]] = {}
        for message in self._slack.messages(self._real(channel)):
            found.setdefault(slot_key(message), []).append(message)
        return found


def check_all(slack: FakeSlack, calls: Sequence[Call]) -> dict[str, Shown]:
    """Every call is correct (check_scenario) and Slack holds nothing else, once."""
    stories = {story_of(name, ctx) for name, ctx, _events in calls}
    keys = [(m.channel, *slot_key(m)) for m in slack.messages()]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    assert duplicates == [], f"posted more than once: {duplicates}"
    strangers = sorted({story for _ch, story, _slot in keys} - stories)
    assert strangers == [], f"messages of no call (orphans): {strangers}"
    assert slack.deleted == [], "nothing needed retracting"
    result = {}
    for name, ctx, events in calls:
        story = story_of(name, ctx)
        channel = channel_of(events)
        check_scenario(cast(Env, _CallView(slack, channel)), name, story)
        result[story] = shown(slack, story, channel)
        if name not in INTERNAL:
            assert result[story].root is not None
    return result


def the_calls(seeds: Iterable[int]) -> list[Call]:
    start = datetime.now(UTC)
    calls: list[Call] = []
    for seed in seeds:
        calls += scenario_calls(SCENARIOS, start, seed=seed)
    return calls


# -- the tests -------------------------------------------------------------------------------


async def run_bridges(
    tmp_path: Path, calls: Sequence[Call], count: int, seed: int
) -> dict[str, Shown]:
    """``count`` instances on a fresh database and their own fake Slack; all calls sent
    (each event to a random instance), settled, checked; what Slack shows per call."""
    async with (
        pg.fresh_database() as dsn,
        FakeSlack(channels=(*CHANNELS, ONCALL), limits=Limits.loose()) as slack,
    ):
        folder = tmp_path / f"{count}-instances"
        folder.mkdir()
        async with instances(folder, dsn, slack, count) as servers:
            leaders = [i for i, s in enumerate(servers) if any(map(is_leader_line, s.lines))]
            assert leaders == [0], "the first instance leads, the others stand by"
            await Sender(servers, random.Random(seed)).all(calls)
            await wait_until_settled(dsn)
        return check_all(slack, calls)


async def test_two_instances_show_what_one_instance_shows(tmp_path: Path) -> None:
    await require_postgres()
    calls = the_calls(seeds=(61, 62))
    # The single instance is the reference; both runs go at once (pacing is real time).
    one, two = await asyncio.gather(
        run_bridges(tmp_path, calls, 1, seed=1), run_bridges(tmp_path, calls, 2, seed=2)
    )
    assert len(one) == len(calls)
    for name, ctx, _events in calls:
        story = story_of(name, ctx)
        assert two[story].root == one[story].root, name
        assert two[story].alerts == one[story].alerts, name
        assert two[story].thread() == one[story].thread(), (name, one[story], two[story])


async def test_the_standby_takes_over_from_a_killed_leader_mid_burst(
    tmp_path: Path, database: str
) -> None:
    calls = the_calls(seeds=(71, 72))
    total = sum(len(events) for _name, _ctx, events in calls)
    async with (
        FakeSlack(channels=(*CHANNELS, ONCALL), limits=Limits.loose()) as slack,
        instances(tmp_path, database, slack, 2) as (first, second),
    ):
        assert any(map(is_leader_line, first.lines))
        assert not any(map(is_leader_line, second.lines)), "one leader at a time"
        # Events of a call 0.1 s apart: the burst lasts a few seconds, long enough for the
        # leader to be posting while events still come in (events are committed before the
        # dispatcher's writes, so a back-to-back burst can end before the first posts).
        sender = Sender([first, second], random.Random(7), gap=0.1)
        sending = asyncio.create_task(sender.all(calls))
        # Mid-burst: events still coming in, Slack posts under way (they are paced).
        deadline = time.monotonic() + DEADLINE
        while sender.sent < total // 3 or slack.calls["chat.postMessage"] < 5:
            assert not sending.done(), "the burst ended before the leader could be killed"
            assert time.monotonic() < deadline, "no progress before the kill"
            await asyncio.sleep(0.01)  # watching other processes, bounded by the deadline
        first.proc.kill()
        killed_at = time.monotonic()
        assert await first.stop(signal.SIGKILL) == -signal.SIGKILL
        posted_before = len(slack.messages())

        await second.wait_for_line(is_leader_line, timeout=TAKEOVER)
        assert time.monotonic() - killed_at < TAKEOVER
        await sending
        await wait_until_settled(database)

    assert sender.sent == total
    # Webhooks to the killed instance failed at the HTTP level and went to the survivor.
    assert sender.failed == {0}
    assert sender.resent >= 1
    assert posted_before < len(slack.messages()), "the survivor finished the work"
    check_all(slack, calls)


async def test_losing_postgresql_answers_503_and_recovers_by_itself(
    tmp_path: Path, database: str
) -> None:
    proxy = Proxy(("127.0.0.1", 5432))  # a relay the test can cut (the server stays up)
    await proxy.start()
    name = database.rsplit("/", 1)[1]
    through_proxy = f"postgresql://postgres@127.0.0.1:{proxy.port}/{name}"
    [(_name, _ctx, events)] = scenario_calls(["answered"], datetime.now(UTC), seed=81)
    first, rest = events[0], events[1:]
    try:
        async with (
            serve(tmp_path, store=through_proxy) as server,
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http,
        ):
            assert await post(http, server, first) == "accepted"
            async with http.get(f"{server.base}/readyz") as response:
                assert response.status == 200
                assert "leader" in (await response.json())["checks"]["store"]["detail"]

            await proxy.cut()  # every connection to PostgreSQL drops; new ones are refused
            async with http.post(server.url, data=json.dumps(rest[0])) as response:
                assert response.status == 503, await response.text()
                assert response.headers["Retry-After"] == "5"
                assert "try again later" in (await response.json())["error"]
            async with http.get(f"{server.base}/readyz") as response:
                assert response.status == 503
                store = (await response.json())["checks"]["store"]
                assert store["status"] == "failing"
                assert "check that the server is running and reachable" in store["detail"]
            await server.wait_for_line(lambda line: line.get("event") == "leader.lost")

            await proxy.start()  # PostgreSQL is reachable again, at the same address
            deadline = time.monotonic() + DEADLINE
            while True:  # the service was not restarted: it must notice by itself
                async with http.get(f"{server.base}/readyz") as response:
                    detail = (await response.json())["checks"]["store"]["detail"]
                    if response.status == 200 and "leader" in detail:
                        break
                recent = [
                    (x.get("event"), str(x.get("error", ""))[:80]) for x in server.lines[-25:]
                ]
                assert time.monotonic() < deadline, (detail, recent)  # what it did meanwhile
                await asyncio.sleep(0.1)  # polling another process, bounded by the deadline
            # The provider retries what got a 503; the rest of the call follows.
            for payload in rest:
                assert await post(http, server, payload) == "accepted"
            assert await post(http, server, first) == "duplicate"
            await wait_until_settled(database)
            acquired = [line for line in server.lines if is_leader_line(line)]
            assert len(acquired) == 2, "leadership was lost and taken back"
            assert await server.stop(signal.SIGTERM) == 0
    finally:
        await proxy.cut()
    conn = await asyncpg.connect(database)
    try:
        statuses = [r[0] for r in await conn.fetch("SELECT status FROM events ORDER BY seq")]
        posted = await conn.fetchval("SELECT count(*) FROM outbox WHERE posted_version > 0")
    finally:
        await conn.close()
    assert statuses == [e["status"] for e in events]  # every event stored once, in order
    assert posted >= 1  # the call reached the (dry-run) chat platform after the recovery
