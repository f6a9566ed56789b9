"""Ingest benchmark: the real bridge (durable store, dispatcher and dry-run delivery running)
against a bare aiohttp handler that only parses JSON, same load, same run: the bridge on
SQLite (one instance), on PostgreSQL with one instance, and with two instances on one database
(load split between them).

Run by hand: ``.venv/bin/python -m tests.bench.bench_ingest [--events N] [--no-postgres]``.
The latency load is a share (``PACED_SHARE``, 9 %) of the flat-out rate each server sustained
in the same run, not a fixed rate: the same share means the same headroom on any machine.
Prints the machine's commit (fsync) latency and a Markdown table for docs/benchmarks.md, with
how long after the flat-out burst the dispatcher had folded every event. Load
comes from the simulator (realistic provider payloads) in this process; each server runs in its
own process on 127.0.0.1. PostgreSQL: ``CALLBRIDGE_TEST_PG`` (a DSN of the maintenance
database, default ``postgresql://postgres@127.0.0.1:5432/postgres``); each configuration gets a
fresh ``callbridge_bench_<random>`` database, dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager, suppress
from pathlib import Path

import aiohttp
import asyncpg  # type: ignore[import-untyped]

from bridge.simulate import SCENARIOS, ScenarioContext, build
from bridge.simulate.client import Options, Summary, simulate
from tests.store.pg import MAINTENANCE_DSN, fresh_database
from tests.support.harness import write_rules

EVENTS_PER_CALL = statistics.mean(
    len(build(name, ScenarioContext(seed=n))) for n, name in enumerate(SCENARIOS)
)
# The latency target's load: a share of the flat-out rate the same server just sustained in
# the same run (a fixed rate measures a different thing on every machine). 0.09 is the
# 500 events/s of issue 2 on the reference machine (SQLite flat out ~5,500 events/s).
PACED_SHARE = 0.09
PACED_SECONDS = 10.0
FLAT_OUT_IN_FLIGHT = 64
COMMITS = 200  # single-row commits timed for the fsync baseline
PIDS: dict[str, int] = {}  # server URL -> its process id (for its CPU time)


@asynccontextmanager
async def server(argv: list[str]) -> AsyncIterator[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CALLBRIDGE_", "SLACK_"))}
    env.pop("NOTIFY_SOCKET", None)
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=env
    )
    assert proc.stdout is not None
    port = None
    while port is None:
        raw = await asyncio.wait_for(proc.stdout.readline(), 30)
        if not raw:
            raise RuntimeError(f"{argv} exited before listening")
        with suppress(ValueError):
            line = json.loads(raw)
            if line.get("event") == "serve.listening":
                port = line["port"]

    async def drain() -> None:
        assert proc.stdout is not None
        while await proc.stdout.read(65536):
            pass

    drainer = asyncio.create_task(drain())
    url = f"http://127.0.0.1:{port}/notifications"
    PIDS[url] = proc.pid
    try:
        yield url
    finally:
        PIDS.pop(url, None)
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            print(f"{argv[2:4]} ignored SIGTERM for 30 s: killed", file=sys.stderr)
            proc.kill()
            await proc.wait()
        await drainer


def bridge_cmd(store: str, rules: Path) -> list[str]:
    return [
        sys.executable, "-m", "bridge", "serve", "--listen", "127.0.0.1:0",
        "--store", store, "--rules", str(rules), "--log-format", "json",
    ]  # fmt: skip


def pg_database() -> AbstractAsyncContextManager[str]:
    """A fresh, empty ``callbridge_bench_<random>`` database; dropped afterwards."""
    return fresh_database("callbridge_bench")


async def pg_reachable() -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        conn = await asyncpg.connect(MAINTENANCE_DSN, timeout=3)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as err:
        return f"{type(err).__name__}: {err}"
    await conn.close()
    return None


# -- the fsync baseline -----------------------------------------------------------------------


def sqlite_commit_ms(directory: Path) -> list[float]:
    """One-row commits in WAL mode with ``synchronous=FULL`` (as the store commits): each one
    waits for an fsync of the WAL, so this is the floor of one acknowledged group commit."""
    conn = sqlite3.connect(directory / "fsync.db", isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB)")
        out = []
        for _ in range(COMMITS):
            started = time.perf_counter()
            conn.execute("INSERT INTO t (body) VALUES (?)", (os.urandom(600),))
            out.append((time.perf_counter() - started) * 1000)
        return out
    finally:
        conn.close()


async def pg_commit_ms(dsn: str) -> list[float]:
    """One-row autocommit INSERTs (``synchronous_commit`` as the server is configured)."""
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        await conn.execute("CREATE TABLE fsync_probe (id serial PRIMARY KEY, body bytea)")
        out = []
        for _ in range(COMMITS):
            started = time.perf_counter()
            await conn.execute("INSERT INTO fsync_probe (body) VALUES ($1)", os.urandom(600))
            out.append((time.perf_counter() - started) * 1000)
        await conn.execute("DROP TABLE fsync_probe")
        return out
    finally:
        await conn.close()


# -- load -------------------------------------------------------------------------------------


async def load(
    urls: Sequence[str], *, calls: int, rate: float, in_flight: int, seed: int
) -> Summary:
    """``calls`` calls at ``rate`` calls/s, split evenly over ``urls`` (one simulator each,
    each with its share of the rate and of the requests in flight, distinct call ids)."""
    n = len(urls)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=in_flight)) as session:
        parts = await asyncio.gather(
            *(
                simulate(
                    session,
                    Options(
                        url=url,
                        calls=calls // n,
                        rate=rate / n,
                        concurrency=max(1, in_flight // n),
                        seed=seed * 100 + i,
                    ),
                )
                for i, url in enumerate(urls)
            )
        )
    return Summary(
        sent=sum(p.sent for p in parts),
        accepted=sum(p.accepted for p in parts),
        duplicates=sum(p.duplicates for p in parts),
        rejected=sum(p.rejected for p in parts),
        errors=sum(p.errors for p in parts),
        elapsed=max(p.elapsed for p in parts),
        latencies=tuple(x for p in parts for x in p.latencies),
        problems=tuple(x for p in parts for x in p.problems),
        calls=tuple(x for p in parts for x in p.calls),
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


DirtyCount = Callable[[], Awaitable[int]]


def sqlite_dirty(path: Path) -> DirtyCount:
    async def count() -> int:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            return int(conn.execute("SELECT count(*) FROM stories WHERE dirty = 1").fetchone()[0])
        finally:
            conn.close()

    return count


def pg_dirty(dsn: str) -> DirtyCount:
    async def count() -> int:
        conn = await asyncpg.connect(dsn, timeout=5)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM stories WHERE dirty"))
        finally:
            await conn.close()

    return count


async def caught_up(dirty: DirtyCount) -> float:
    """Seconds until the dispatcher has folded every accepted event (no dirty story left)."""
    started = time.perf_counter()
    while await dirty():  # noqa: ASYNC110 (the state lives in another process's database)
        await asyncio.sleep(0.05)
    return time.perf_counter() - started


async def measure(
    name: str, urls: Sequence[str], events: int, dirty: DirtyCount | None = None
) -> dict[str, float]:
    calls = int(events / EVENTS_PER_CALL)
    await load(urls, calls=50, rate=1000, in_flight=32, seed=1)  # warm up
    pids = [PIDS[url] for url in urls]
    server_cpu, load_cpu = sum(map(cpu_seconds, pids)), own_cpu_seconds()
    flat_out = await load(urls, calls=calls, rate=100_000, in_flight=FLAT_OUT_IN_FLIGHT, seed=2)
    server_cpu = sum(map(cpu_seconds, pids)) - server_cpu
    load_cpu = own_cpu_seconds() - load_cpu
    lag = await caught_up(dirty) if dirty is not None else 0.0
    paced_rate = PACED_SHARE * flat_out.sent / flat_out.elapsed  # events/s
    paced_calls = int(paced_rate * PACED_SECONDS / EVENTS_PER_CALL)
    paced = await load(
        urls, calls=paced_calls, rate=paced_rate / EVENTS_PER_CALL, in_flight=64, seed=3
    )
    for summary in (flat_out, paced):  # every event stored once: no error, no duplicate
        assert summary.accepted == summary.sent, (name, summary.render())
    return {
        "throughput": flat_out.sent / flat_out.elapsed,
        "p50_flat": pct(flat_out.latencies, 0.50) * 1000,
        "p99_flat": pct(flat_out.latencies, 0.99) * 1000,
        "rate_paced": paced.sent / paced.elapsed,
        "p50_paced": pct(paced.latencies, 0.50) * 1000,
        "p99_paced": pct(paced.latencies, 0.99) * 1000,
        "caught_up": lag,
        # CPU per event during the flat-out burst (the servers' processes; the load generator)
        "server_us": server_cpu / flat_out.sent * 1e6,
        "load_us": load_cpu / flat_out.sent * 1e6,
    }


# -- the run ----------------------------------------------------------------------------------


def machine() -> str:
    cpu = "unknown CPU"
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = "?"
    with suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
        ram = f"{kib / 1024 / 1024:.0f} GiB"
    return (
        f"{os.cpu_count()} cores ({cpu}), {ram} RAM, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def spread(ms: list[float]) -> str:
    return f"p50 {pct(ms, 0.5):.2f} ms, p99 {pct(ms, 0.99):.2f} ms"


BARE = "bare aiohttp + json.loads"
SQLITE = "callbridge, SQLite (FULL sync)"


async def main(events: int, postgres: bool, runs: int) -> None:
    results: dict[str, list[dict[str, float]]] = {}
    baselines: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        rules = write_rules(Path(tmp))
        baselines.append(
            f"SQLite WAL + synchronous=FULL, one-row commit: {spread(sqlite_commit_ms(Path(tmp)))}"
        )
        # Bare and SQLite alternate, each run on a fresh server (and a fresh database), so
        # that the machine's drift during the benchmark hits both alike; the ratio is taken
        # per pair of runs.
        for run in range(runs):
            async with server([sys.executable, "-m", "tests.bench.bare_server"]) as url:
                results.setdefault(BARE, []).append(await measure("bare", [url], events))
            db = Path(tmp) / f"bench-{run}.db"
            sqlite_store = f"sqlite:///{db.as_posix().lstrip('/')}"
            async with server(bridge_cmd(sqlite_store, rules)) as url:
                results.setdefault(SQLITE, []).append(
                    await measure("sqlite", [url], events, sqlite_dirty(db))
                )
        why_not = await pg_reachable() if postgres else "--no-postgres"
        if why_not is None:
            async with pg_database() as dsn:
                baselines.append(
                    f"PostgreSQL one-row INSERT commit: {spread(await pg_commit_ms(dsn))}"
                )
                async with server(bridge_cmd(dsn, rules)) as url:
                    results["callbridge, PostgreSQL, 1 instance"] = [
                        await measure("pg1", [url], events, pg_dirty(dsn))
                    ]
            async with pg_database() as dsn, AsyncExitStack() as stack:
                urls = [
                    await stack.enter_async_context(server(bridge_cmd(dsn, rules)))
                    for _ in range(2)
                ]
                results["callbridge, PostgreSQL, 2 instances"] = [
                    await measure("pg2", urls, events, pg_dirty(dsn))
                ]
        else:
            print(f"PostgreSQL skipped: {why_not}", file=sys.stderr)
    report(results, baselines, events)


def report(results: dict[str, list[dict[str, float]]], baselines: list[str], events: int) -> None:
    bare = [r["throughput"] for r in results[BARE]]
    print(f"\nMachine: {machine()}")
    for line in baselines:
        print(f"Commit latency ({COMMITS} commits): {line}")
    print(
        f"Load: {events} events flat out ({FLAT_OUT_IN_FLIGHT} in flight), then "
        f"{PACED_SECONDS:g} s at {PACED_SHARE:.0%} of that server's flat-out rate in that run\n"
    )
    print("| server | run | events/s (flat out) | ratio | p50 / p99 ms (flat out) "
          "| CPU µs/event: server · load | dispatch caught up "
          f"| p50 / p99 ms at {PACED_SHARE:.0%} of its capacity |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for name, runs in results.items():
        for i, r in enumerate(runs):
            # a run is compared with the bare run next to it (the first for PostgreSQL)
            ratio = r["throughput"] / bare[min(i, len(bare) - 1)]
            print(
                f"| {name} | {i + 1} | {r['throughput']:.0f} | {ratio:.2f} | "
                f"{r['p50_flat']:.1f} / {r['p99_flat']:.1f} | "
                f"{r['server_us']:.0f} · {r['load_us']:.0f} | "
                f"{'-' if name == BARE else format(r['caught_up'], '.1f') + ' s'} | "
                f"{r['p50_paced']:.1f} / {r['p99_paced']:.1f} (at {r['rate_paced']:.0f}/s) |"
            )
    ratios = [s["throughput"] / b for s, b in zip(results[SQLITE], bare, strict=True)]
    p99s = [r["p99_paced"] for r in results[SQLITE]]
    print(
        f"\nSQLite over {len(ratios)} run(s): ratio to bare median {statistics.median(ratios):.2f} "
        f"(min {min(ratios):.2f}, max {max(ratios):.2f}); p99 at {PACED_SHARE:.0%} of capacity "
        f"median {statistics.median(p99s):.1f} ms (max {max(p99s):.1f})"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--no-postgres", action="store_true", help="only the bare and SQLite")
    parser.add_argument(
        "--runs", type=int, default=3, help="bare/SQLite pairs, alternating (default 3)"
    )
    args = parser.parse_args()
    started = time.monotonic()
    asyncio.run(main(args.events, postgres=not args.no_postgres, runs=max(1, args.runs)))
    print(f"\n(benchmark took {time.monotonic() - started:.0f} s)")
