"""A provider replay against real `callbridge serve` processes, killed with SIGKILL mid-stream
(issue 12's "done when"): many calls of every flow, interleaved, sent like the provider sends
(a non-2xx answer or a connection error is retried later with backoff, so a retried event
arrives after later ones), then checked against an oracle that knows nothing of the bridge.

The oracle is the scenarios' hand-written expectations (``bridge.simulate.SCENARIOS``) and the
events' own timestamps (ring time, for ``min_ring``); what the bridge showed is read from its
dry-run lines (every post, reply and delete it made, across all its processes) and its store:

* **missing call**: a call that is not internal has no live message;
* **lost alert**: a missed call that rang at least ``min_ring`` (or found the line busy) has
  no visible alert;
* **wrong alert**: an answered call (or one that rang less) still shows one;
* **duplicate**: a (story, slot, channel) shows more than one message at the end.

Dry-run message ids are unique across restarts (bridge/notify/dryrun.py), so a delete made by
a later process is matched to the post an earlier one made.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from contextlib import AsyncExitStack, closing, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from bridge.simulate import SCENARIOS, ScenarioContext, build
from tests.support.harness import write_rules
from tests.support.process import Server, serve, wait_until_clean

MIN_RING = 5  # seconds: the rules' `min_ring`
SUPPORT, ONCALL = "C0123456789", "C0999999999"
RULES = f"""\
version: 1
timezone: Europe/Amsterdam
destinations:
  support: {{slack: {{channel: {SUPPORT}}}}}
  oncall: {{slack: {{channel: {ONCALL}}}}}
routes:
  - name: internal
    when: {{internal: true}}
    drop: true
  - name: everything
    live: support
    missed: [support, oncall]
    min_ring: {MIN_RING}s
    # One alert per missed call: callback cases would stack a caller's repeat misses.
    callback: off
"""


@dataclass
class Call:
    name: str
    story: str  # the customer's call id
    legs: tuple[str, ...]  # every call id of the call: a merged story keeps one of them
    events: list[dict[str, Any]]
    live: bool  # the oracle: a live message must exist
    alert: bool  # the oracle: a missed alert must exist (else none may)


def ring_seconds(events: list[dict[str, Any]]) -> float:
    """From the customer's first `ringing` to `ended`, by the events' own timestamps."""

    def at(e: dict[str, Any]) -> datetime:
        return datetime.fromisoformat(str(e["timestamp"]))

    ringing = [at(e) for e in events if e["status"] == "ringing"]
    ended = [at(e) for e in events if e["status"] == "ended"]
    return (max(ended) - min(ringing)).total_seconds() if ringing and ended else 0.0


def generate(n: int, seed: int, start: datetime) -> list[Call]:
    rng = random.Random(seed)
    names = list(SCENARIOS)
    calls = []
    for i in range(n):
        name = rng.choice(names)
        ctx = ScenarioContext(start + timedelta(seconds=i), seed=seed * 100_000 + i)
        events = build(name, ctx)
        expected = SCENARIOS[name].expected
        story = ctx.call_id(expected.story_leg)
        mine = [e for e in events if e["call_id"] == story]
        internal = name == "internal"
        # docs/rules.md: `min_ring` is about the caller hanging up; a busy line rings nobody.
        line_ended = expected.end_reason in ("busy", "failed")
        alert = expected.missed and not internal and (line_ended or ring_seconds(mine) >= MIN_RING)
        legs = tuple(dict.fromkeys(str(e["call_id"]) for e in events))
        calls.append(Call(name, story, legs, events, live=not internal, alert=alert))
    return calls


def interleave(calls: list[Call], rng: random.Random, gap: float) -> list[tuple[float, bytes]]:
    """Send times: call i starts at i*gap, its events follow their own spacing compressed
    100x (at least 5 ms apart), so calls overlap as in a busy hour."""
    out = []
    for i, call in enumerate(calls):
        first = datetime.fromisoformat(str(call.events[0]["timestamp"]))
        for event in call.events:
            offset = (datetime.fromisoformat(str(event["timestamp"])) - first).total_seconds()
            when = i * gap + max(offset / 100, 0.005 * call.events.index(event))
            out.append((when + rng.uniform(0, gap / 4), json.dumps(event).encode()))
    out.sort(key=lambda pair: pair[0])
    return out


@dataclass
class Outcome:
    calls: int
    events: int
    kills: int
    retried: int  # sends that failed and were retried (503s, refused connections)
    live: int = 0  # calls the oracle expects a live message for
    alerts: int = 0  # calls the oracle expects an alert for
    shown: int = 0  # messages showing at the end
    missing: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    # posted by a process killed before it recorded the post, then posted again (dry-run
    # cannot look a message up as Slack's delivery does after a crash; see judge())
    unrecorded: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"{self.calls} calls ({self.live} live, {self.alerts} to alert), {self.events} "
            f"events, {self.shown} messages shown, {self.kills} kill -9, "
            f"{self.retried} retried sends: {len(self.missing)} missing calls, "
            f"{len(self.lost)} lost alerts, {len(self.wrong)} wrong alerts, "
            f"{len(self.duplicates)} duplicates; {len(self.unrecorded)} posts a kill kept from "
            f"being recorded, posted again (a real platform's lookup finds them) "
            f"({self.seconds:.0f} s)"
        )


class Provider:
    """Sends each event until it is answered 2xx, retrying failures with backoff (the
    provider's behaviour), to whichever server is up now."""

    def __init__(self, url: Callable[[], str]) -> None:
        self._url = url
        self.retried = 0
        self.done = 0

    async def send(self, http: aiohttp.ClientSession, body: bytes) -> None:
        delay = 0.05
        while True:
            with suppress(aiohttp.ClientError, TimeoutError):
                async with http.post(self._url(), data=body, timeout=aiohttp.ClientTimeout(5)) as r:
                    if 200 <= r.status < 300:
                        self.done += 1
                        return
            self.retried += 1
            await asyncio.sleep(delay)  # the provider's retry backoff, not synchronisation
            delay = min(delay * 2, 1.0)


def visible(runs: list[list[dict[str, Any]]]) -> dict[tuple[str, str], tuple[str, str, int]]:
    """(channel, message id) -> (story, slot, run) it was posted as and by which process
    (0, 1, ...), for every message showing at the end, from every dry-run line."""
    shown: dict[tuple[str, str], tuple[str, str, int]] = {}
    for run, lines in enumerate(runs):
        for line in lines:
            event = line.get("event")
            if event in ("dryrun.post", "dryrun.reply"):
                shown[(line["channel"], line["message"])] = (line["story"], line["slot"], run)
            elif event == "dryrun.delete":
                shown.pop((line["channel"], line["message"]), None)
    return shown


def recorded(db: Path) -> dict[tuple[str, str], tuple[str, str, bool]]:
    """(channel, message id) -> (story, slot, has content) as the store has it at the end:
    which story's which message each posted message is (after merges re-keyed them)."""
    with closing(sqlite3.connect(db)) as conn:
        rows = conn.execute(
            "SELECT story_id, slot, ref, content IS NOT NULL FROM outbox WHERE ref IS NOT NULL"
        ).fetchall()
    out = {}
    for story, slot, ref, content in rows:
        _platform, channel, message, _thread = json.loads(ref)
        out[(channel, message)] = (str(story), str(slot), bool(content))
    return out


def judge(
    calls: list[Call],
    shown: dict[tuple[str, str], tuple[str, str]],
    store: dict[tuple[str, str], tuple[str, str, bool]],
    outcome: Outcome,
) -> None:
    """Against the oracle, by what shows (the dry-run lines) as the store names it."""
    outcome.live = sum(c.live for c in calls)
    outcome.alerts = sum(c.alert for c in calls)
    outcome.shown = len(shown)
    where: Counter[tuple[str, str, str]] = Counter()
    last = max((run for _story, _slot, run in shown.values()), default=0)
    reposted = {(ch, story, slot, run) for (ch, _m), (story, slot, run) in shown.items()}
    for (channel, message), (story_as, slot_as, run) in shown.items():
        if (channel, message) not in store:
            # Showing, but no slot of any story owns it: posted twice, or left behind. One
            # exception, of the dry-run only: posted by a process killed before it could
            # record the post, and posted again by a later one. A real platform's lookup
            # finds such a message (tests/test_slack_crash.py); dry-run cannot look.
            later = range(run + 1, last + 1)
            if any((channel, story_as, slot_as, n) in reposted for n in later):
                outcome.unrecorded.append(f"{channel} {message} ({story_as}, {slot_as})")
                continue
            outcome.duplicates.append(f"{channel} {message} posted as {story_as}, {slot_as}")
            continue
        story, slot, _content = store[(channel, message)]
        where[(story, slot, channel)] += 1
    outcome.duplicates += [f"{key} shows {n}x" for key, n in where.items() if n > 1]
    for call in calls:
        # One story per call, known by either id after a transfer (whichever survived).
        roots = sum(where[(leg, "root", SUPPORT)] for leg in call.legs)
        if call.live and not roots:
            outcome.missing.append(f"{call.name} {call.story}")
        if roots > 1:
            outcome.duplicates.append(f"{call.name} {call.story}: {roots} live messages")
        for channel in (SUPPORT, ONCALL):
            alerts = sum(where[(leg, "missed", channel)] for leg in call.legs)
            if call.alert and not alerts:
                outcome.lost.append(f"{call.name} {call.story} in {channel}")
            if not call.alert and alerts:
                outcome.wrong.append(f"{call.name} {call.story} in {channel}")


async def replay(
    tmp_path: Path, *, calls: int, kills: int = 3, seed: int = 1, gap: float = 0.02
) -> Outcome:
    """Run the replay; returns what the oracle found (the caller asserts)."""
    started = time.monotonic()
    start = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    generated = generate(calls, seed, start)
    schedule = interleave(generated, random.Random(seed), gap)
    db = tmp_path / "replay.db"
    rules = write_rules(tmp_path, RULES, name="replay.yaml")
    servers: list[Server] = []
    outcome = Outcome(calls, len(schedule), 0, 0)
    async with AsyncExitStack() as stack:

        async def start_server() -> None:
            servers.append(await stack.enter_async_context(serve(tmp_path, db, rules=rules)))

        await start_server()
        provider = Provider(lambda: servers[-1].url)
        kill_at = [len(schedule) * (k + 1) // (kills + 1) for k in range(kills)]
        async with aiohttp.ClientSession() as http:
            t0 = time.monotonic()
            sends: list[asyncio.Task[None]] = []
            for when, body in schedule:
                if kill_at and provider.done >= kill_at[0]:
                    kill_at.pop(0)
                    await servers[-1].stop(signal.SIGKILL)  # mid-stream: sends in flight fail
                    outcome.kills += 1
                    await start_server()
                wait = when - (time.monotonic() - t0)
                if wait > 0:
                    await asyncio.sleep(wait)  # the provider's pacing of the calls
                sends.append(asyncio.create_task(provider.send(http, body)))
            await asyncio.gather(*sends)
        outcome.retried = provider.retried
        await wait_until_clean(db, timeout=60 + calls * 0.2)
        await servers[-1].stop(signal.SIGTERM)
    judge(generated, visible([server.lines for server in servers]), recorded(db), outcome)
    outcome.seconds = time.monotonic() - started
    return outcome
