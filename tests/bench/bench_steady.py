"""Steady-load benchmark (issue 17): CPU per event of `callbridge serve` (SQLite, dry-run chat:
dispatch and delivery run, nothing leaves the machine) against two references
(tests/bench/bare_server.py): the bare aiohttp handler (parses the body, answers), and the
durability floor (the same handler that also stores the body with an fsync'd SQLite commit
before answering, as callbridge does before it acknowledges a webhook); all three fed the same
paced stream of realistic provider events (default 10 calls/s), in alternating rounds on
fresh servers; and the bridge's CPU when idle.

Run by hand: ``.venv/bin/python -m tests.bench.bench_steady [--rate 10] [--seconds 30]
[--runs 3]``. CPU is the server process's user + system time from /proc/<pid>/stat (all its
threads): for the bridge from the first event until every event is folded and every planned
message delivered (missed alerts wait their 8 s settle time), per event; idle: over 10 s after
that, per second, from the scheduler's nanosecond count of every thread
(/proc/<pid>/task/*/schedstat: the 10 ms ticks of /proc/<pid>/stat cannot tell 0.2 from 2 ms
per second over 10 s). Prints a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import tempfile
import time
from contextlib import suppress
from pathlib import Path
from typing import Final

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


def cpu_ns(pid: int) -> int:
    """Nanoseconds on a CPU of every live thread of one process."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with suppress(FileNotFoundError):  # a thread that has just ended
            total += int((task / "schedstat").read_text().split()[0])
    return total


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
    idle_before = cpu_ns(pid)
    await asyncio.sleep(IDLE_SECONDS)  # the measured idle period
    idle = (cpu_ns(pid) - idle_before) / 1e9
    return {
        "events": paced.sent,
        "events_per_s": paced.sent / paced.elapsed,
        "cpu_us_per_event": spent / paced.sent * 1e6,
        "idle_ms_per_s": idle / IDLE_SECONDS * 1e3,
        "drain_s": lag,
    }


BARE: Final = [sys.executable, "-m", "tests.bench.bare_server"]


async def main(rate: float, seconds: float, runs: int) -> None:
    bare: list[dict[str, float]] = []
    floor: list[dict[str, float]] = []
    bridge: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        rules = write_rules(Path(tmp))
        for run in range(runs):
            async with server(BARE) as url:
                bare.append(await one_run(url, rate=rate, seconds=seconds, seed=run, db=None))
            durable = [*BARE, "--durable", str(Path(tmp) / f"floor-{run}.db")]
            async with server(durable) as url:
                floor.append(await one_run(url, rate=rate, seconds=seconds, seed=run, db=None))
            db = Path(tmp) / f"steady-{run}.db"
            store = f"sqlite:///{db.as_posix().lstrip('/')}"
            async with server(bridge_cmd(store, rules)) as url:
                bridge.append(await one_run(url, rate=rate, seconds=seconds, seed=run, db=db))
            print(
                f"run {run + 1}: bare {bare[-1]}, floor {floor[-1]}, callbridge {bridge[-1]}",
                file=sys.stderr,
            )
    print(f"\nMachine: {machine()}")
    print(
        f"Load: {rate:g} calls/s (~{rate * EVENTS_PER_CALL:.0f} events/s) for {seconds:g} s, "
        f"{runs} alternating round(s) of the three servers, fresh servers\n"
    )
    print(
        "| run | events/s | bare µs/event | durable floor µs/event | callbridge µs/event "
        "| / bare | / floor | callbridge drained after | idle CPU ms/s (callbridge · bare) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    ratios: list[float] = []
    floors: list[float] = []
    for n, (b, f, c) in enumerate(zip(bare, floor, bridge, strict=True), start=1):
        ratios.append(c["cpu_us_per_event"] / b["cpu_us_per_event"])
        floors.append(c["cpu_us_per_event"] / f["cpu_us_per_event"])
        print(
            f"| {n} | {c['events_per_s']:.0f} | {b['cpu_us_per_event']:.0f} | "
            f"{f['cpu_us_per_event']:.0f} | {c['cpu_us_per_event']:.0f} | {ratios[-1]:.2f} | "
            f"{floors[-1]:.2f} | {c['drain_s']:.1f} s | "
            f"{c['idle_ms_per_s']:.2f} · {b['idle_ms_per_s']:.2f} |"
        )
    for name, values in (("bare", ratios), ("durable floor", floors)):
        print(
            f"\nCPU per event, callbridge / {name}: median {statistics.median(values):.2f} "
            f"(min {min(values):.2f}, max {max(values):.2f})"
        )
    print("Target (issue 17): callbridge / bare <= 3")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=10.0, help="calls per second")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--runs", type=int, default=3, help="rounds of the three servers")
    args = parser.parse_args()
    started = time.monotonic()
    asyncio.run(main(args.rate, args.seconds, max(1, args.runs)))
    print(f"\n(benchmark took {time.monotonic() - started:.0f} s)")
