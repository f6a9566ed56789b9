"""Slack burst benchmark (issue 4): 200 calls started over 60 s into one channel, a realistic
mix of :mod:`bridge.simulate`, Slack's limits enforced by the fake Slack Web API.

Run by hand: ``.venv/bin/python -m tests.bench.bench_slack_burst [--scale 25] [--runs 2]``.

The bridge runs in this process (the same wiring as ``tests/test_slack_burst.py``) against
``tests/support/fake_slack.py`` with ``Limits()``, through the real slack-sdk client. Time is
compressed ``--scale`` times (bridge clock, pacer and the fake's rate limiter share one scaled
clock), and every time printed is *scaled*: seconds as they would pass against real Slack.

Measured, per run:

* Slack API calls per call, by method, from the fake's ``calls`` counters (429s included);
* missed-alert latency: from the call's last ``ended`` event being acknowledged (HTTP 200) to
  the fake carrying out the alert's ``chat.postMessage`` (p50/p95/max), for the on-call alert
  and for the alert in the live channel; it includes the bridge's deliberate settle time;
* final-state lag: from a call's last event acknowledged to its root showing the final render;
* time until all final states are posted, from the first call's start;
* 429s answered by the fake (target 0).

Each run checks every call's messages with the test suite's ``check_scenario`` first: numbers
from a run that posted the wrong thing would be meaningless.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tests.support.slack_env
from bridge import logs
from bridge.deliver.delivery import DeliveryOptions
from bridge.deliver.dispatcher import DispatchOptions
from bridge.simulate import SCENARIOS
from tests.support.fake_slack import FakeSlack, Params
from tests.support.slack_env import ALL, ONCALL, SUPPORT, Env, scenario_calls, slack_bridge
from tests.test_slack_delivery import check_scenario

CALLS = 200
WINDOW = 60.0  # scaled seconds over which the calls start
SETTLE = DispatchOptions().missed_settle.total_seconds()  # an alert waits this long on purpose
WRITES = {"chat.postMessage": "post", "chat.update": "update", "chat.delete": "delete"}


@dataclass(frozen=True)
class Write:
    """One write the fake carried out (answered ``ok``), at scaled time ``at``."""

    at: float
    action: str
    channel: str
    ts: str


@dataclass(frozen=True)
class CallTimes:
    name: str
    story: str
    last_event: float  # scaled seconds since the burst started, when the 200 came back
    last_ended: float


def record_writes(slack: FakeSlack, elapsed: Callable[[], float], into: list[Write]) -> None:
    """Note the scaled time of every successful post/update/delete (instance-level wrap)."""
    Handler = Callable[[FakeSlack, Params], Params]

    def timed(handler: Handler, action: str) -> Handler:
        def run(fake: FakeSlack, params: Params) -> Params:
            out = handler(fake, params)  # raises on a Slack error: not a write
            into.append(Write(elapsed(), action, str(out["channel"]), str(out["ts"])))
            return out

        return run

    methods: Mapping[str, Handler] = slack._methods
    slack._methods = {
        name: timed(handler, WRITES[name]) if name in WRITES else handler
        for name, handler in methods.items()
    }


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def drive(env: Env, names: list[str], seed: int) -> tuple[float, list[CallTimes]]:
    """The burst of tests/test_slack_burst.py; returns (start, per-call times)."""
    rng = random.Random(seed)
    calls = scenario_calls(names, env.time.wall(), seed=11)
    t0 = env.time.elapsed()
    times: list[CallTimes] = []

    async def one(n: int, name: str, story: str, events: list[dict[str, Any]]) -> None:
        await env.time.sleep(WINDOW * n / CALLS)
        last_sent = last_ended = float("nan")
        for payload in events:
            assert await env.send(payload) == "accepted"
            last_sent = env.time.elapsed() - t0
            if payload["status"] == "ended":
                last_ended = last_sent
            await env.time.sleep(rng.uniform(0.5, 3.0))  # the call goes on
        times.append(CallTimes(name, story, last_sent, last_ended))

    stories = [
        (name, ctx.call_id(SCENARIOS[name].expected.story_leg), events)
        for name, ctx, events in calls
    ]
    await asyncio.gather(*(one(n, *call) for n, call in enumerate(stories)))
    return t0, times


@dataclass(frozen=True)
class Run:
    scale: float
    real_seconds: float
    visible_calls: int  # calls the rules send to Slack (internal calls are dropped)
    api: Counter[str]
    ratelimited: int
    messages: Counter[str]  # "root" / "reply" / "alert" messages in Slack at the end
    deleted: int
    root_edits: list[int]
    alert_oncall: list[float]  # seconds from `ended` acknowledged to the alert posted
    alert_live: list[float]
    final_lag: list[float]  # seconds from the last event acknowledged to the final root render
    all_final: float  # seconds from the burst's start until every root shows its final state
    last_event: float  # seconds from the burst's start until the last event was acknowledged
    settled: float  # seconds from the burst's start until nothing was left to deliver


async def burst(scale: float) -> Run:
    rng = random.Random(2026)
    names = [rng.choice(ALL) for _ in range(CALLS)]  # the mix of tests/test_slack_burst.py
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        async with slack_bridge(Path(tmp), scale=scale) as env:
            writes: list[Write] = []
            record_writes(env.slack, env.time.elapsed, writes)
            t0, times = await drive(env, names, seed=2027)
            await env.settle()
            settled = env.time.elapsed() - t0
            for call in times:
                check_scenario(env, call.name, call.story)
            return measure(env, writes, t0, times, settled, scale, time.monotonic() - started)


def measure(
    env: Env,
    writes: list[Write],
    t0: float,
    times: list[CallTimes],
    settled: float,
    scale: float,
    real_seconds: float,
) -> Run:
    done: dict[tuple[str, str], float] = {}  # (channel, ts) -> its last write
    posted: dict[tuple[str, str], float] = {}  # (channel, ts) -> its post
    for write in writes:
        done[(write.channel, write.ts)] = write.at - t0
        if write.action == "post":
            posted[(write.channel, write.ts)] = write.at - t0
    support, oncall = env.by_slot(SUPPORT), env.by_slot(ONCALL)
    alert_oncall, alert_live, final_lag, finals, edits = [], [], [], [], []
    for call in times:
        root = support.get((call.story, "root"))
        if root is None:  # dropped by the rules (internal call)
            continue
        finished = done[(SUPPORT, root[0].ts)]
        finals.append(finished)
        final_lag.append(finished - call.last_event)
        edits.append(root[0].edits)
        if SCENARIOS[call.name].expected.missed:
            [alert] = oncall[(call.story, "missed")]
            alert_oncall.append(posted[(ONCALL, alert.ts)] - call.last_ended)
            [alert] = support[(call.story, "missed")]
            alert_live.append(posted[(SUPPORT, alert.ts)] - call.last_ended)
    messages: Counter[str] = Counter()
    for slots in (support, oncall):
        for (_story, slot), found in slots.items():
            kind = "reply" if slot.startswith("reply:") else "alert" if slot == "missed" else slot
            messages[kind] += len(found)
    return Run(
        scale=scale,
        real_seconds=real_seconds,
        visible_calls=len(finals),
        api=Counter(env.slack.calls),
        ratelimited=env.slack.ratelimited.total(),
        messages=messages,
        deleted=len(env.slack.deleted),
        root_edits=edits,
        alert_oncall=alert_oncall,
        alert_live=alert_live,
        final_lag=final_lag,
        all_final=max(finals),
        last_event=max(call.last_event for call in times),
        settled=settled,
    )


def spread(values: list[float]) -> str:
    return f"{pct(values, 0.5):.1f} / {pct(values, 0.95):.1f} / {max(values):.1f}"


def table(runs: list[Run]) -> str:
    def per_call(run: Run, method: str) -> str:
        return f"{run.api[method] / run.visible_calls:.2f}"

    rows: list[tuple[str, Callable[[Run], str]]] = [
        ("scale (scaled s per real s)", lambda r: f"{r.scale:g}"),
        ("calls shown in Slack (of 200; internal ones dropped)", lambda r: f"{r.visible_calls}"),
        (
            "Slack API calls per call, all methods",
            lambda r: f"{r.api.total() / r.visible_calls:.2f}",
        ),
        ("· chat.postMessage", lambda r: per_call(r, "chat.postMessage")),
        ("· chat.update", lambda r: per_call(r, "chat.update")),
        ("· chat.delete", lambda r: per_call(r, "chat.delete")),
        ("· conversations.history", lambda r: per_call(r, "conversations.history")),
        ("· users.lookupByEmail", lambda r: per_call(r, "users.lookupByEmail")),
        (
            "messages in Slack per call (roots + replies + alerts in both channels)",
            lambda r: (
                f"{r.messages.total() / r.visible_calls:.2f} "
                f"({r.messages['root']} + {r.messages['reply']} + {r.messages['alert']})"
            ),
        ),
        (
            "root edits per call, mean (max)",
            lambda r: f"{statistics.mean(r.root_edits):.2f} ({max(r.root_edits)})",
        ),
        ("messages deleted (orphans)", lambda r: f"{r.deleted}"),
        ("missed alert (on-call channel) p50 / p95 / max s", lambda r: spread(r.alert_oncall)),
        ("missed alert (live channel) p50 / p95 / max s", lambda r: spread(r.alert_live)),
        (
            f"· on-call alert beyond the {SETTLE:g} s settle time, p50 / p95 s",
            lambda r: (
                f"{pct(r.alert_oncall, 0.5) - SETTLE:.1f} / "
                f"{pct(r.alert_oncall, 0.95) - SETTLE:.1f}"
            ),
        ),
        (
            "final state after the call's last event p50 / p95 / max s",
            lambda r: spread(r.final_lag),
        ),
        ("last event acknowledged at s", lambda r: f"{r.last_event:.0f}"),
        ("all final states posted at s", lambda r: f"{r.all_final:.0f}"),
        ("everything (every reply) delivered at s", lambda r: f"{r.settled:.0f}"),
        ("429 answers from the fake (target 0)", lambda r: f"{r.ratelimited}"),
        ("real time of the run s", lambda r: f"{r.real_seconds:.0f}"),
    ]
    lines = [
        "| metric (scaled seconds) | "
        + " | ".join(f"run {n + 1}" for n in range(len(runs)))
        + " |",
        "|---|" + "---|" * len(runs),
    ]
    lines += [f"| {label} | " + " | ".join(cell(r) for r in runs) + " |" for label, cell in rows]
    return "\n".join(lines)


async def main(scales: list[float], runs: int) -> None:
    logs.configure(level="warning", stream=sys.stderr)  # as quiet as production at INFO
    results: list[Run] = []
    for scale in scales:
        for _ in range(runs):
            result = await burst(scale)
            print(f"run {len(results) + 1}: scale {scale:g}, {result.real_seconds:.0f} s real")
            results.append(result)
    print(f"\n{CALLS} calls started over {WINDOW:g} s into one channel; Slack's limits enforced")
    print("(chat.postMessage 1/s per channel, burst 3; chat.update 50/min, burst 5)\n")
    print(table(results))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scale", type=float, nargs="+", default=[20.0], help="time compression(s) (default 20)"
    )
    parser.add_argument("--runs", type=int, default=2, help="runs per scale (default 2)")
    parser.add_argument(
        "--delivery-batch",
        type=int,
        default=None,
        metavar="N",
        help="experiment: read N due slots per delivery round instead of the default "
        f"{DeliveryOptions().batch} (patches the test environment, not the bridge)",
    )
    args = parser.parse_args()
    if args.delivery_batch is not None:
        options = functools.partial(DeliveryOptions, batch=args.delivery_batch)
        tests.support.slack_env.DeliveryOptions = options  # type: ignore[attr-defined,assignment]
    asyncio.run(main(args.scale, args.runs))
