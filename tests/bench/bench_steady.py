"""Steady-load benchmark (issue 17): CPU per event of `callbridge serve` (SQLite, dry-run chat:
dispatch and delivery run, nothing leaves the machine) against the bare aiohttp handler
(tests/bench/bare_server.py), both fed the same paced stream of realistic provider events
(default 10 calls/s), in alternating pairs on fresh servers; and the bridge's CPU when idle.

Run by hand: ``.venv/bin/python -m tests.bench.bench_steady [--rate 10] [--seconds 30]
[--runs 3]``. CPU is the server process's user + system time from /proc/<pid>/stat (all its
threads): for the bridge from the first event until every event is folded and every planned
message delivered (missed alerts wait their 8 s settle time), per event; idle: over 10 s after
that, per second. Prints a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tests.bench.bench_ingest import (
    EVENTS_PER_CALL,
    PIDS,
    bridge_cmd,
    cpu_seconds,
    load,
    machine,
    server,
)
from tests.support.harness import write_rules

IDLE_SECONDS = 10.0


def sqlite_backlog(path: Path) -> int:
    """Stories not folded yet plus messages not delivered yet (the bridge's own database)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        dirty = conn.execute("SELECT count(*) FROM stories WHERE dirty = 1").fetchone()[0]
        pending = conn.execute(
            "SELECT count(*) FROM outbox WHERE posted_version < desired_version AND failed = 0"
        ).fetchone()[0]
        return int(dirty) + int(pending)
    finally:
        conn.close()


async def drained(path: Path) -> float:
    started = time.perf_counter()
    while sqlite_backlog(path):  # noqa: ASYNC110 (the state lives in another process's database)
        await asyncio.sleep(0.1)
    return time.perf_counter() - started


async def one_run(
    url: str, *, rate: float, seconds: float, seed: int, db: Path | None
) -> dict[str, float]:
    pid = PIDS[url]
    await load([url], calls=20, rate=50, in_flight=8, seed=seed * 10)  # warm up
    if db is not None:
        await drained(db)
    calls = int(rate * seconds)
    before = cpu_seconds(pid)
    paced = await load([url], calls=calls, rate=rate, in_flight=64, seed=seed * 10 + 1)
    assert paced.accepted == paced.sent, paced.render()
    lag = await drained(db) if db is not None else 0.0
    spent = cpu_seconds(pid) - before
    idle_before = cpu_seconds(pid)
    await asyncio.sleep(IDLE_SECONDS)  # the measured idle period
    idle = cpu_seconds(pid) - idle_before
    return {
        "events": paced.sent,
        "events_per_s": paced.sent / paced.elapsed,
        "cpu_us_per_event": spent / paced.sent * 1e6,
        "idle_ms_per_s": idle / IDLE_SECONDS * 1e3,
        "drain_s": lag,
    }


async def main(rate: float, seconds: float, runs: int) -> None:
    bare: list[dict[str, float]] = []
    bridge: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        rules = write_rules(Path(tmp))
        for run in range(runs):
            async with server([sys.executable, "-m", "tests.bench.bare_server"]) as url:
                bare.append(await one_run(url, rate=rate, seconds=seconds, seed=run, db=None))
            db = Path(tmp) / f"steady-{run}.db"
            store = f"sqlite:///{db.as_posix().lstrip('/')}"
            async with server(bridge_cmd(store, rules)) as url:
                bridge.append(await one_run(url, rate=rate, seconds=seconds, seed=run, db=db))
            print(f"run {run + 1}: bare {bare[-1]}, callbridge {bridge[-1]}", file=sys.stderr)
    print(f"\nMachine: {machine()}")
    print(
        f"Load: {rate:g} calls/s (~{rate * EVENTS_PER_CALL:.0f} events/s) for {seconds:g} s, "
        f"{runs} alternating pair(s), fresh servers\n"
    )
    print(
        "| run | events/s | bare µs/event | callbridge µs/event | ratio "
        "| callbridge drained after | callbridge idle CPU ms/s | bare idle CPU ms/s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    ratios = []
    for n, (b, c) in enumerate(zip(bare, bridge, strict=True), start=1):
        ratio = c["cpu_us_per_event"] / b["cpu_us_per_event"]
        ratios.append(ratio)
        print(
            f"| {n} | {c['events_per_s']:.0f} | {b['cpu_us_per_event']:.0f} | "
            f"{c['cpu_us_per_event']:.0f} | {ratio:.2f} | {c['drain_s']:.1f} s | "
            f"{c['idle_ms_per_s']:.2f} | {b['idle_ms_per_s']:.2f} |"
        )
    print(
        f"\nCPU per event, callbridge / bare: median {statistics.median(ratios):.2f} "
        f"(min {min(ratios):.2f}, max {max(ratios):.2f}); target <= 3"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=10.0, help="calls per second")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--runs", type=int, default=3, help="bare/callbridge pairs")
    args = parser.parse_args()
    started = time.monotonic()
    asyncio.run(main(args.rate, args.seconds, max(1, args.runs)))
    print(f"\n(benchmark took {time.monotonic() - started:.0f} s)")
