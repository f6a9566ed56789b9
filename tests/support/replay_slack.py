"""A replay of many calls against real ``callbridge serve`` processes, with kill -9 mid-stream
and a provider that retries, checked against an oracle computed from the scenario alone.

The calls are built from the provider's sample payloads (tests/fixtures/voys): inbound
answered, inbound missed (ring time above or below ``min_ring``), warm and cold transfers with
``merged_id``, outbound. Their events are interleaved across calls on a compressed timeline.
The sender plays the provider: it POSTs each event to ``/notifications`` with the webhook
token at its time; on a connection error or any non-2xx answer it retries that event later
with a growing backoff, while the call's later events go on at their own time (so a retried
event arrives out of order); now and then it also redelivers an event that was answered 2xx.

The oracle (:func:`expected`) knows only the scenario and the rules below: every call has
exactly one live message; a missed call with ring time >= ``MIN_RING`` has exactly one alert;
no other call keeps an alert; no message is posted twice. It reads the fake Slack's final
state, not the bridge's store.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import platform
import random
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager, closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from tests.support.fake_slack import FakeSlack, Limits
from tests.support.harness import FIXTURES, write_rules
from tests.support.process import Server, serve

Payload = dict[str, Any]
TOKEN = "replay-webhook-token"
LIVE = "C0REPLAYLIVE"
ALERTS = "C0REPLAYALRT"
MIN_RING = 10.0  # seconds; the oracle's copy of the rule below
RULES = f"""\
version: 1
timezone: Europe/Amsterdam
destinations:
  live: {{slack: {{channel: {LIVE}}}}}
  alerts: {{slack: {{channel: {ALERTS}}}}}
routes:
  - name: ignore internal calls
    when: {{internal: true}}
    drop: true
  - name: everything
    live: live
    missed: alerts
    min_ring: {int(MIN_RING)}s
"""
KINDS = ("answered", "missed-long", "missed-short", "warm", "cold", "outbound")
WEIGHTS = (30, 20, 10, 12, 12, 16)


# -- the scenario -------------------------------------------------------------------------------


def _fixture(name: str) -> Payload:
    doc: Payload = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return doc


@dataclass
class Call:
    kind: str
    call_id: str
    ids: frozenset[str]  # every id the call's events carry (a transfer's other leg too)
    events: list[tuple[float, Payload]]  # (seconds after the replay's start, payload)
    ring: float  # seconds the customer's phone rang before answer or hang-up

    @property
    def alert(self) -> bool:
        return self.kind == "missed-long"


class Builder:
    """Calls from the fixtures with fresh ids, numbers and timestamps."""

    def __init__(self, start: datetime, rng: random.Random) -> None:
        self.start = start
        self.rng = rng
        self.ringing = _fixture("ringing.json")
        self.answered = _fixture("in-progress.json")
        self.ended = _fixture("ended.json")
        self.created = _fixture("created-2019.json")
        self.warm = _fixture("warm-transfer.json")
        self.cold = _fixture("cold-transfer.json")
        b = self.ringing["destination"]["targets"][0]
        self.agent_b = {k: b[k] for k in ("account_number", "user_numbers", "number", "name")}
        self.agent_b_internal = {**self.agent_b, "number": "201"}
        self.agent_c = dict(self.warm["destination"]["target"])

    def _event(
        self, base: Payload, call_id: str, at: float, **changes: Any
    ) -> tuple[float, Payload]:
        doc = copy.deepcopy(base)
        doc.pop("merged_id", None)
        doc.pop("redirector", None)
        doc.update(changes)
        doc["call_id"] = call_id
        doc["timestamp"] = (self.start + timedelta(seconds=at)).isoformat()
        return at, doc

    def call(self, n: int, kind: str, t: float) -> Call:
        rng = self.rng
        call_id = f"replay{n:05d}-{1700000000 + n}.{n}"
        customer = f"+3150{n:07d}"
        caller = {**copy.deepcopy(self.ringing["caller"]), "number": customer, "name": f"C{n}"}
        line = self.ringing["destination"]["number"]
        ring = rng.uniform(2.0, 6.0) if kind == "missed-short" else rng.uniform(3.0, 40.0)
        if kind == "missed-long":
            ring = rng.uniform(MIN_RING + 4.0, 45.0)
        ev = self._event
        common = {"caller": caller, "direction": "inbound"}
        events: list[tuple[float, Payload]] = []
        ids = {call_id}
        if kind == "outbound":
            dest = {
                "number": customer,
                "targets": [
                    {"number": customer, "name": None, "account_number": None, "user_numbers": []}
                ],
            }
            out = {"caller": dict(self.agent_b_internal), "direction": "outbound"}
            events += [
                ev(self.ringing, call_id, t, **out, destination=dest),
                ev(
                    self.answered,
                    call_id,
                    t + ring,
                    **out,
                    destination={"number": customer, "target": dest["targets"][0]},
                ),
                ev(
                    self.ended,
                    call_id,
                    t + ring + rng.uniform(20, 200),
                    **out,
                    destination={"number": customer},
                ),
            ]
            return Call(kind, call_id, frozenset(ids), events, ring)
        events += [
            ev(self.created, call_id, t, **common, destination={"number": line}),
            ev(self.ringing, call_id, t + 0.4, **common),
        ]
        if kind.startswith("missed"):
            events.append(ev(self.ended, call_id, t + 0.4 + ring, **common, reason="completed"))
            return Call(kind, call_id, frozenset(ids), events, ring)
        answer = t + 0.4 + ring
        events.append(ev(self.answered, call_id, answer, **common))
        end = answer + rng.uniform(60, 240)
        if kind == "warm":
            consult = f"replay{n:05d}-{1700000000 + n}.{n}c"
            ids.add(consult)
            c_number = self.agent_c["user_numbers"][0]
            c_out = {"caller": dict(self.agent_b_internal), "direction": "outbound"}
            events += [
                ev(
                    self.ringing,
                    consult,
                    answer + 20,
                    **c_out,
                    destination={"number": c_number, "targets": [dict(self.agent_c)]},
                ),
                ev(
                    self.answered,
                    consult,
                    answer + 26,
                    **c_out,
                    destination={"number": c_number, "target": dict(self.agent_c)},
                ),
                ev(
                    self.warm,
                    call_id,
                    answer + 30,
                    **common,
                    merged_id=consult,
                    destination=copy.deepcopy(self.warm["destination"]),
                    redirector=copy.deepcopy(self.warm["redirector"]),
                ),
            ]
        elif kind == "cold":
            blind = f"replay{n:05d}-{1700000000 + n}.{n}b"
            ids.add(blind)
            targets = copy.deepcopy(self.cold["destination"])
            events += [
                ev(
                    self.cold,
                    call_id,
                    answer + 25,
                    **common,
                    merged_id=blind,
                    destination=targets,
                    redirector=copy.deepcopy(self.cold["redirector"]),
                ),
                ev(
                    self.ringing,
                    call_id,
                    answer + 25.5,
                    **common,
                    destination={"number": line, "targets": [dict(self.agent_c)]},
                ),
                ev(
                    self.answered,
                    call_id,
                    answer + 31,
                    **common,
                    destination={"number": line, "target": dict(self.agent_c)},
                ),
            ]
        events.append(ev(self.ended, call_id, end, **common, reason="completed"))
        return Call(kind, call_id, frozenset(ids), events, ring)


def scenario(count: int, *, seed: int = 0, spacing: float = 3.0) -> list[Call]:
    """``count`` calls starting on average every ``spacing`` seconds (scaled time)."""
    rng = random.Random(seed)
    builder = Builder(datetime(2026, 11, 24, 9, 0, tzinfo=UTC), rng)
    t = 0.0
    calls = []
    for n in range(count):
        kind = rng.choices(KINDS, WEIGHTS)[0]
        calls.append(builder.call(n, kind, t))
        t += rng.expovariate(1 / spacing)
    return calls


# -- the oracle ---------------------------------------------------------------------------------


@dataclass
class Verdict:
    calls: int = 0
    expected_alerts: int = 0
    missing_calls: list[str] = field(default_factory=list)  # no live message
    lost_alerts: list[str] = field(default_factory=list)  # missed >= min_ring, no alert
    wrong_alerts: list[str] = field(default_factory=list)  # an alert kept for another call
    duplicates: list[str] = field(default_factory=list)  # posted twice
    strays: list[str] = field(default_factory=list)  # a root message of no call

    @property
    def ok(self) -> bool:
        return not (
            self.missing_calls
            or self.lost_alerts
            or self.wrong_alerts
            or self.duplicates
            or self.strays
        )

    def summary(self) -> dict[str, int]:
        return {
            "calls": self.calls,
            "expected_alerts": self.expected_alerts,
            "missing_calls": len(self.missing_calls),
            "lost_alerts": len(self.lost_alerts),
            "wrong_alerts": len(self.wrong_alerts),
            "duplicates": len(self.duplicates),
            "strays": len(self.strays),
        }


def _story(message: Any) -> str:
    meta = message.metadata or {}
    return str(meta.get("event_payload", {}).get("story", ""))


def _slot(message: Any) -> str:
    meta = message.metadata or {}
    return str(meta.get("event_payload", {}).get("slot", ""))


def judge(calls: list[Call], slack: FakeSlack) -> Verdict:
    owner = {i: call for call in calls for i in call.ids}
    verdict = Verdict(calls=len(calls), expected_alerts=sum(c.alert for c in calls))
    roots: dict[tuple[str, str], list[Any]] = {}
    for channel in (LIVE, ALERTS):
        for root in slack.roots(channel):
            call = owner.get(_story(root))
            if call is None:
                verdict.strays.append(f"{channel}: {_story(root)!r} {root.text[:60]!r}")
                continue
            roots.setdefault((channel, call.call_id), []).append(root)
    for call in calls:
        live = roots.get((LIVE, call.call_id), [])
        alerts = roots.get((ALERTS, call.call_id), [])
        if not live:
            verdict.missing_calls.append(f"{call.call_id} ({call.kind})")
        if call.alert and not alerts:
            verdict.lost_alerts.append(f"{call.call_id} (rang {call.ring:.1f}s)")
        if not call.alert and alerts:
            verdict.wrong_alerts.append(f"{call.call_id} ({call.kind}): {alerts[0].text[:60]!r}")
        for channel, found in ((LIVE, live), (ALERTS, alerts)):
            if len(found) > 1:
                verdict.duplicates.append(f"{call.call_id}: {len(found)} roots in {channel}")
    # Replies: one message per (story, slot) per channel, and no text twice in one thread.
    for channel in (LIVE, ALERTS):
        slots = Counter((_story(m), _slot(m)) for m in slack.messages(channel))
        verdict.duplicates += [
            f"{channel}: {story}/{slot} posted {n} times"
            for (story, slot), n in slots.items()
            if n > 1
        ]
        for root in slack.roots(channel):
            texts = Counter(m.text for m in slack.replies(channel, root.ts))
            verdict.duplicates += [
                f"{channel}: reply {text[:50]!r} {n} times in {_story(root)}"
                for text, n in texts.items()
                if n > 1
            ]
    return verdict


# -- the provider -------------------------------------------------------------------------------


@dataclass
class Clock:
    """The replay's compressed time: ``scale`` scaled seconds per real second."""

    scale: float
    t0: float = field(default_factory=time.monotonic)
    wall0: float = 0.0

    def elapsed(self) -> float:
        return (time.monotonic() - self.t0) * self.scale

    def monotonic(self) -> float:
        return self.t0 + self.elapsed()

    def wall_seconds(self) -> float:
        return self.wall0 + self.elapsed()

    async def until(self, at: float) -> None:
        """Wait until scaled time ``at`` (pacing the simulated provider, not synchronising)."""
        delay = (at - self.elapsed()) / self.scale
        if delay > 0:
            await asyncio.sleep(delay)


@dataclass
class Sender:
    """The provider: every event at its time; retried with backoff until answered 2xx."""

    clock: Clock
    rng: random.Random
    url: Callable[[], str]
    redeliver: float = 0.03  # share of 2xx-answered events delivered once more, later
    accepted: int = 0  # events answered 2xx (first time)
    retries: int = 0  # attempts after a failure
    redelivered: int = 0
    progress: asyncio.Event = field(default_factory=asyncio.Event)

    async def _post(self, http: aiohttp.ClientSession, payload: Payload) -> bool:
        try:
            async with http.post(
                self.url(),
                data=json.dumps(payload),
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=aiohttp.ClientTimeout(total=10),
            ) as response:
                await response.read()
                return 200 <= response.status < 300
        except (aiohttp.ClientError, TimeoutError):
            return False

    async def event(self, http: aiohttp.ClientSession, at: float, payload: Payload) -> None:
        await self.clock.until(at)
        backoff = 2.0  # scaled seconds
        while not await self._post(http, payload):
            self.retries += 1
            await self.clock.until(self.clock.elapsed() + backoff * self.rng.uniform(0.5, 1.5))
            backoff = min(backoff * 2, 60.0)
        self.accepted += 1
        self.progress.set()
        if self.rng.random() < self.redeliver:
            await self.clock.until(self.clock.elapsed() + self.rng.uniform(1.0, 30.0))
            while not await self._post(http, payload):
                await self.clock.until(self.clock.elapsed() + backoff)
            self.redelivered += 1


# -- the run ------------------------------------------------------------------------------------


@dataclass
class Report:
    calls: int
    events: int
    kills: int
    retries: int
    redelivered: int
    seconds: float
    verdict: Verdict
    restarts_at: list[int]  # events accepted when each kill happened

    def summary(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "events": self.events,
            "kills": self.kills,
            "retries": self.retries,
            "redelivered": self.redelivered,
            "seconds": round(self.seconds, 1),
            "killed_after_events": self.restarts_at,
            **self.verdict.summary(),
        }


def sqlite_pending(db: Path) -> tuple[int, int, int]:
    """(stories to fold, messages to deliver, messages given up) as the store says."""
    with closing(sqlite3.connect(db, timeout=5)) as conn:
        dirty = conn.execute("SELECT count(*) FROM stories WHERE dirty").fetchone()[0]
        pending, failed = conn.execute(
            "SELECT coalesce(sum(posted_version < desired_version AND NOT failed), 0),"
            " coalesce(sum(failed), 0) FROM outbox"
        ).fetchone()
    return int(dirty), int(pending), int(failed)


async def postgres_pending(dsn: str) -> tuple[int, int, int]:
    import asyncpg  # type: ignore[import-untyped]  # noqa: PLC0415 (only for this option)

    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM stories WHERE dirty),"
            " (SELECT count(*) FROM outbox WHERE posted_version < desired_version AND NOT failed),"
            " (SELECT count(*) FROM outbox WHERE failed)"
        )
    finally:
        await conn.close()
    return int(row[0]), int(row[1]), int(row[2])


async def wait_quiescent(
    pending: Callable[[], Awaitable[tuple[int, int, int]]],
    slack: FakeSlack,
    timeout: float,
    poll: float = 0.25,
) -> tuple[int, int, int]:
    """Until the store has nothing left to fold or deliver, twice in a row with no Slack
    request in between (polling other processes' progress, bounded by ``timeout``)."""
    deadline = time.monotonic() + timeout
    calm = 0
    seen = -1
    state = (-1, -1, -1)
    while time.monotonic() < deadline:
        state = await pending()
        requests = len(slack.requests)
        calm = calm + 1 if state[:2] == (0, 0) and requests == seen else 0
        if calm >= 2:
            return state
        seen = requests
        await asyncio.sleep(poll)
    raise AssertionError(f"not quiescent within {timeout}s: (dirty, pending, failed) = {state}")


@asynccontextmanager
async def _fake_slack(clock: Clock) -> AsyncIterator[FakeSlack]:
    async with FakeSlack(
        channels=(LIVE, ALERTS), limits=Limits(), clock=clock.monotonic, wall=clock.wall_seconds
    ) as slack:
        yield slack


async def replay(
    tmp_path: Path,
    *,
    calls: int,
    kills: int = 3,
    seed: int = 0,
    scale: float = 50.0,
    spacing: float = 3.0,
    postgres: str | None = None,
    instances: int = 1,
    quiet_timeout: float = 120.0,
    log: Callable[[str], None] = lambda _line: None,
) -> Report:
    """Play ``calls`` calls against ``callbridge serve`` on one store (SQLite in ``tmp_path``,
    or the PostgreSQL database ``postgres`` with ``instances`` processes behind a "load
    balancer" that picks one at random per attempt), SIGKILL a process ``kills`` times while
    events arrive (the leader, when several; each is restarted on the same store at once),
    wait until delivery is quiescent, and judge the fake Slack's final state."""
    if postgres is None and instances != 1:
        raise ValueError("several instances need PostgreSQL")
    rng = random.Random(seed)
    plan = scenario(calls, seed=seed, spacing=spacing)
    events = sorted(((at, p) for call in plan for at, p in call.events), key=lambda e: e[0])
    start = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    clock = Clock(scale, wall0=start.timestamp())
    db = tmp_path / "replay.db"
    rules = write_rules(tmp_path, RULES, name="replay-rules.yaml")
    began = time.monotonic()

    async def pending() -> tuple[int, int, int]:
        if postgres is not None:
            return await postgres_pending(postgres)
        return await asyncio.to_thread(sqlite_pending, db)

    async with _fake_slack(clock) as slack, AsyncExitStack() as stack:
        env = {
            "SLACK_BOT_TOKEN": slack.token,
            "SLACK_API_URL": slack.url,
            "CALLBRIDGE_WEBHOOK_TOKEN": TOKEN,
            "REPLAY_SCALE": repr(scale),
            "REPLAY_T0": repr(clock.t0),
            "REPLAY_WALL0": repr(clock.wall0),
        }
        where: dict[str, Any] = {"store": postgres} if postgres else {"db": db}

        async def start_server() -> Server:
            return await stack.enter_async_context(
                serve(
                    tmp_path,
                    rules=rules,
                    extra_env=env,
                    module="tests.support.replay_serve",
                    **where,
                )
            )

        servers = [await start_server() for _ in range(instances)]
        sender = Sender(clock, rng, lambda: rng.choice(servers).url)
        killed_at: list[int] = []
        thresholds = [len(events) * (k + 1) // (kills + 1) for k in range(kills)]
        connector = aiohttp.TCPConnector(limit=32)
        async with aiohttp.ClientSession(connector=connector) as http:
            sending = asyncio.gather(*(sender.event(http, at, p) for at, p in events))
            for threshold in thresholds:
                while sender.accepted < threshold:
                    sender.progress.clear()
                    await sender.progress.wait()
                victim = _leader(servers)
                killed_at.append(sender.accepted)
                log(f"kill -9 instance {victim} after {sender.accepted}/{len(events)} events")
                await servers[victim].stop(signal.SIGKILL)
                servers[victim] = await start_server()
            await sending
            log(f"all {len(events)} events accepted; {sender.retries} retries; waiting")
            await wait_quiescent(pending, slack, quiet_timeout)
        for server in servers:
            assert await server.stop(signal.SIGTERM) == 0
        verdict = judge(plan, slack)
    return Report(
        calls=len(plan),
        events=len(events),
        kills=len(killed_at),
        retries=sender.retries,
        redelivered=sender.redelivered,
        seconds=time.monotonic() - began,
        verdict=verdict,
        restarts_at=killed_at,
    )


def _leader(servers: list[Server]) -> int:
    """The instance that leads now (acquired the lead and did not lose it), else the first."""
    for index, server in enumerate(servers):
        events = [line.get("event") for line in server.lines]
        if "leader.acquired" in events and events[::-1].index("leader.acquired") < (
            events[::-1].index("leader.lost") if "leader.lost" in events else len(events)
        ):
            return index
    return 0


def machine() -> dict[str, str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "python": platform.python_version(),
    }
