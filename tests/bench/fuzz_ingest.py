"""Hostile-body fuzz of ``POST /notifications`` against a real ``callbridge serve`` process.

Run by hand (results go in docs/benchmarks.md, "Hostile input")::

    .venv/bin/python -m tests.bench.fuzz_ingest [--bodies 20000] [--seed 13] [--in-flight 8]

It starts ``callbridge serve`` on 127.0.0.1:0 with a fresh SQLite store (dry-run chat), sends
``--bodies`` seeded bodies (:func:`bodies`: random bytes and JSON, the provider's fixtures with
a node replaced, deleted or retyped, nesting up to 5,000 levels, timestamps at the ends of the
calendar, ids with control characters or 30 KB long, long dialled strings, bodies near the
64 KiB limit, and thousands of events piled onto a few call ids), and reports the answers by
status, the number of 5xx (target: 0), whether the process is still alive and answers
``/healthz``, and its RSS (target: flat, i.e. bounded once the caches have filled).

RSS is sampled after every 5 % of the bodies, with the number of bodies accepted by then (a
new call costs memory, a refused body should not). The report gives RSS at 25/50/75/100 %,
then once the dispatcher has caught up (no dirty story left), and the growth per 1,000
*accepted* bodies over the first and the last half: warm-up (caches filling) shows as growth
in the first half only; a leak as growth in the last half too. ``--trim`` then asks the
server to ``malloc_trim(0)`` (glibc; SIGUSR2, handled by a prelude the script adds) and
reports RSS again: what trimming gives back was free memory the allocator kept (its
high-water mark), not live data. RssAnon (heap) and RssFile (mapped files, e.g. SQLite's
``-shm``) are reported apart, and before the trim what SQLite's allocator, Python
(allocated blocks) and pymalloc (live blocks, arenas held) hold. The environment passes
through (e.g. ``MALLOC_ARENA_MAX=2``); with ``FUZZ_TRACEMALLOC=FILE`` (and ``--trim``) the
server traces its Python allocations and writes the 25 largest differences between the
start and the end to FILE (slow: for finding what grows, not for numbers). ``--keep-db PATH``
keeps the server's database (e.g. to count a number's case facts).

The same generator runs in CI with a fixed seed and a few hundred bodies
(tests/test_ingest_fuzz.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from tests.support.harness import FIXTURES, json_paths, write_rules

TEMPLATES: list[dict[str, Any]] = [
    json.loads(p.read_bytes()) for p in sorted(FIXTURES.glob("*.json"))
]
PILED_CALL_IDS = [f"piled-{n}" for n in range(5)]  # many events land on these few calls
PILE_START = datetime(2026, 11, 24, tzinfo=UTC)
EXTREME_TIMESTAMPS = [
    "9999-12-31T23:59:59.999999-14:00",
    "9999-12-31T23:59:59.999999+14:00",
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T00:00:00-14:00",
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00",
    "1969-12-31T23:59:59Z",
    "8999-12-31T23:59:59+00:00",
    "1970-01-01T00:00:00Z",
    "2026-02-30T12:00:00Z",
    "2026-11-24T24:00:00Z",
    "2026-11-24T12:00:00+24:00",
    "+002026-11-24T12:00:00Z",
    "2026-11-24T12:00:00.1234567890123Z",
]


def _scalar(rng: random.Random) -> Any:
    kind = rng.randrange(7)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.choice([0, -1, 2**63, -(2**63) - 1, 10**30, rng.randrange(-1000, 1000)])
    if kind == 3:
        return rng.choice([0.5, -1e308, 1e308, 1e-320])
    if kind == 4:
        return "".join(chr(rng.randrange(0x20, 0x2FFF)) for _ in range(rng.randrange(12)))
    if kind == 5:
        return rng.choice(["", "\x00", "\u202e", "💥" * 50, "a" * rng.randrange(1, 3000)])
    return rng.choice(EXTREME_TIMESTAMPS)


def _value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth > 4 or roll < 0.5:
        return _scalar(rng)
    if roll < 0.75:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {str(_scalar(rng))[:12]: _value(rng, depth + 1) for _ in range(rng.randrange(4))}


def _template(rng: random.Random) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(json.dumps(rng.choice(TEMPLATES)))
    doc["call_id"] = f"fuzz-{rng.randrange(10**9)}"
    return doc


def _mutated(rng: random.Random) -> bytes:
    doc = _template(rng)
    for _ in range(rng.randrange(1, 4)):
        paths = json_paths(doc)[1:]
        if not paths:
            break
        path = rng.choice(paths)
        parent: Any = doc
        for key in path[:-1]:
            parent = parent[key]
        if rng.random() < 0.3 and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = _value(rng)
    return json.dumps(doc).encode()


def _deep(rng: random.Random) -> bytes:
    raw = json.dumps(_template(rng)).encode()
    depth = rng.choice([31, 32, 33, 100, 1000, 1200, 5000])
    opener, closer = rng.choice([(b"[", b"]"), (b'{"k":', b"}"), (b'[{"k":', b"}]")])
    tail = closer * depth if rng.random() < 0.8 else b""
    return raw[:-1] + b', "extra": ' + opener * depth + b"0" + tail + b"}"


def _timestamp(rng: random.Random) -> bytes:
    doc = _template(rng)
    doc["timestamp"] = rng.choice(EXTREME_TIMESTAMPS)
    return json.dumps(doc).encode()


def _ids(rng: random.Random) -> bytes:
    doc = _template(rng)
    field = rng.choice(["call_id", "merged_id"])
    doc[field] = rng.choice(["\x00", "a\nb", "x" * 30_000, " ", "\u2028", doc["call_id"]])
    return json.dumps(doc).encode()


def _dialled(rng: random.Random) -> bytes:
    doc = _template(rng)
    junk = rng.choice(["+31" + str(rng.randrange(10**12)), "x" * 30_000, "☎" * 1000])
    doc["destination"] = {"number": junk, "targets": []}
    return json.dumps(doc).encode()


def _large(rng: random.Random) -> bytes:
    doc = _template(rng)
    doc["padding"] = "p" * rng.choice([60_000, 65_300, 65_536, 70_000])
    return json.dumps(doc).encode()


def _piled(rng: random.Random) -> bytes:
    """A valid event of one of a few calls, with a fresh timestamp: they pile up (the cap)."""
    doc = json.loads(json.dumps(rng.choice(TEMPLATES)))
    doc["call_id"] = rng.choice(PILED_CALL_IDS)
    doc.pop("merged_id", None)
    stamp = PILE_START + timedelta(microseconds=rng.randrange(10**12))
    doc["timestamp"] = stamp.isoformat()
    return json.dumps(doc).encode()


def _garbage(rng: random.Random) -> bytes:
    kind = rng.randrange(4)
    if kind == 0:
        return rng.randbytes(rng.randrange(600))
    if kind == 1:
        return json.dumps(_value(rng)).encode()
    if kind == 2:
        text = "".join(chr(rng.randrange(0x10FFFF)) for _ in range(rng.randrange(80)))
        return text.encode("utf-8", "surrogatepass")
    raw = json.dumps(_template(rng)).encode()
    return raw[: rng.randrange(len(raw))]  # truncated


KINDS = (
    (_garbage, 20),
    (_mutated, 30),
    (_deep, 10),
    (_timestamp, 10),
    (_ids, 5),
    (_dialled, 5),
    (_large, 3),
    (_piled, 17),
)


def bodies(
    seed: int, count: int, kinds: frozenset[str] | None = None
) -> Iterator[tuple[str, bytes]]:
    """``count`` (kind, body) pairs, the same for the same seed (``kinds``: only those)."""
    rng = random.Random(seed)
    chosen = [(m, w) for m, w in KINDS if kinds is None or m.__name__.lstrip("_") in kinds]
    makers = [make for make, _ in chosen]
    weights = [weight for _, weight in chosen]
    for _ in range(count):
        make = rng.choices(makers, weights)[0]
        yield make.__name__.lstrip("_"), make(rng)


def rss_kib(pid: int) -> dict[str, int]:
    """The process's VmRSS, RssAnon and RssFile in KiB."""
    fields = {"VmRSS:": "rss", "RssAnon:": "anon", "RssFile:": "file"}
    found: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        parts = line.split()
        if parts and parts[0] in fields:
            found[fields[parts[0]]] = int(parts[1])
    if "rss" not in found:
        raise RuntimeError("no VmRSS")
    return found


def machine() -> str:
    model = "unknown"
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (
        f"nproc {os.cpu_count()}, {model}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


# Runs before ``python -m bridge`` when --trim is given: SIGUSR2 -> one JSON line on stdout
# with what SQLite's allocator holds (sqlite3_memory_used, the same library the sqlite3 module
# uses) and Python's allocated blocks, then malloc_trim(0) (bridge itself ignores SIGUSR2).
TRIM_PRELUDE = """
import ctypes, ctypes.util, json, runpy, signal, sys
def _sqlite(op):  # sqlite3_status64(op): 0 memory used, 2 page cache (malloc'd)
    for name in ("libsqlite3.so.0", ctypes.util.find_library("sqlite3")):
        try:
            status = ctypes.CDLL(name).sqlite3_status64
        except (OSError, TypeError, AttributeError):
            continue
        now, high = ctypes.c_int64(), ctypes.c_int64()
        status(op, ctypes.byref(now), ctypes.byref(high), 0)
        return now.value // 1024
    return -1
def _pymalloc():  # sys._debugmallocstats' totals (it writes them to fd 2): KiB in use, held
    import os, tempfile
    with tempfile.TemporaryFile() as out:
        saved = os.dup(2)
        os.dup2(out.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        stats = {}
        for row in out.read().decode(errors="replace").splitlines():
            name, _, value = row.partition("=")
            if value.strip().replace(",", "").isdigit():
                stats.setdefault(name.strip(), int(value.strip().replace(",", "")))
    return stats.get("# bytes in allocated blocks", -1) // 1024, stats.get("Total", -1) // 1024
import os as _os, tracemalloc as _tm
_trace = {"path": _os.environ.get("FUZZ_TRACEMALLOC"), "last": None}
if _trace["path"]:  # where Python's own allocations grew between two trims (slow)
    _tm.start(4)
def _traced():
    if not _trace["path"]:
        return
    snap = _tm.take_snapshot().filter_traces([_tm.Filter(False, _tm.__file__)])
    if _trace["last"] is not None:
        with open(_trace["path"], "a") as out:
            for stat in snap.compare_to(_trace["last"], "traceback")[:25]:
                out.write(f"{stat.size_diff / 1024:+.0f} KiB ({stat.count_diff:+d} blocks)\\n")
                out.write("".join(f"    {line}\\n" for line in stat.traceback.format()))
    _trace["last"] = snap
def _trim(*_):
    _traced()
    used, held = _pymalloc()
    line = {"event": "fuzz.trimmed", "sqlite_kib": _sqlite(0), "sqlite_cache_kib": _sqlite(2),
            "python_blocks": sys.getallocatedblocks(), "pymalloc_used_kib": used,
            "pymalloc_held_kib": held}
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    print(json.dumps(line), flush=True)
signal.signal(signal.SIGUSR2, _trim)
sys.argv[0] = "bridge"
runpy.run_module("bridge", run_name="__main__", alter_sys=True)
"""


class Server:
    """A running ``callbridge serve``: its URL, pid, database and stdout's bookkeeping."""

    def __init__(self, url: str, pid: int, db: Path) -> None:
        self.url, self.pid, self.db = url, pid, db
        self.trimmed = asyncio.Event()
        self.inside: dict[str, int] = {}  # what it said of its memory at the last trim

    async def dirty(self) -> int:
        """Stories the dispatcher has yet to fold (read from the database file)."""
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
        try:
            return int(conn.execute("SELECT count(*) FROM stories WHERE dirty = 1").fetchone()[0])
        finally:
            conn.close()

    async def trim(self) -> dict[str, int]:
        """malloc_trim(0) the server; returns what it held before (SQLite, Python blocks)."""
        self.trimmed.clear()
        os.kill(self.pid, signal.SIGUSR2)
        await asyncio.wait_for(self.trimmed.wait(), 30)
        return self.inside


@asynccontextmanager
async def serve(directory: Path, event_loop: str, trim: bool = False) -> AsyncIterator[Server]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CALLBRIDGE_", "SLACK_"))}
    env.pop("NOTIFY_SOCKET", None)
    db = directory / "bridge.db"
    start = ("-c", TRIM_PRELUDE) if trim else ("-m", "bridge")
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, *start, "serve", "--listen", "127.0.0.1:0"),
        *("--store", f"sqlite:///{db.as_posix().lstrip('/')}"),
        *("--rules", str(write_rules(directory)), "--log-format", "json"),
        *("--event-loop", event_loop),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
    )
    assert proc.stdout is not None
    port = None
    while port is None:
        raw = await asyncio.wait_for(proc.stdout.readline(), 30)
        if not raw:
            raise RuntimeError("serve exited before listening")
        with suppress(ValueError):
            line = json.loads(raw)
            if line.get("event") == "serve.listening":
                port = int(line["port"])
    server = Server(f"http://127.0.0.1:{port}", proc.pid, db)
    errors: Counter[str] = Counter()

    async def drain() -> None:  # keep the pipe empty; count errors and tracebacks
        assert proc.stdout is not None
        async for raw in proc.stdout:
            with suppress(ValueError):
                line = json.loads(raw)
                if line.get("event") == "fuzz.trimmed":
                    server.inside = {k: v for k, v in line.items() if k != "event"}
                    server.trimmed.set()
                elif line.get("level") in ("error", "critical") or "exception" in line:
                    errors[str(line.get("event"))] += 1

    reader = asyncio.create_task(drain())
    try:
        yield server
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)
        await asyncio.wait_for(reader, 5)
        if errors:
            print(f"server logged errors: {dict(errors)}")


SAMPLES = 20  # RSS after every 5 % of the bodies


async def run(
    server: Server,
    seed: int,
    count: int,
    in_flight: int,
    kinds: frozenset[str] | None,
    trim: bool,
) -> dict[str, Any]:
    url, pid = server.url, server.pid
    inside = {"start": await server.trim()} if trim else {}
    statuses: Counter[int] = Counter()
    five_xx: list[tuple[str, bytes]] = []
    start = rss_kib(pid)
    # (bodies answered, bodies accepted, RSS) after each 5 %
    samples: list[tuple[int, int, dict[str, int]]] = []
    step = max(1, count // SAMPLES)
    answered = 0
    queue: asyncio.Queue[tuple[str, bytes] | None] = asyncio.Queue(maxsize=in_flight * 2)
    started = time.monotonic()

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal answered
        while (item := await queue.get()) is not None:
            kind, data = item
            async with session.post(
                f"{url}/notifications", data=data, headers={"Content-Type": "application/json"}
            ) as response:
                await response.read()
                statuses[response.status] += 1
                if response.status >= 500:
                    five_xx.append((kind, data[:300]))
            answered += 1
            if answered % step == 0:
                samples.append((answered, statuses[200], rss_kib(pid)))

    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        workers = [asyncio.create_task(worker(session)) for _ in range(in_flight)]
        for kind, data in bodies(seed, count, kinds):
            await queue.put((kind, data))
        for _ in workers:
            await queue.put(None)
        await asyncio.gather(*workers)
        seconds = time.monotonic() - started
        while await server.dirty():  # noqa: ASYNC110 (the state lives in the server's database)
            await asyncio.sleep(0.1)
        caught_up = time.monotonic() - started - seconds
        async with session.get(f"{url}/healthz") as health:
            alive = health.status == 200
    after: dict[str, dict[str, int]] = {"caught up": rss_kib(pid)}
    if trim:
        inside["end"] = await server.trim()
        after["malloc_trim"] = rss_kib(pid)
    return {
        "bodies": count,
        "seconds": seconds,
        "caught_up": caught_up,
        "statuses": dict(sorted(statuses.items())),
        "five_xx": five_xx,
        "alive": alive,
        "start": start,
        "samples": samples,
        "after": after,
        "inside": inside,
    }


def _mib(kib: int) -> str:
    return f"{kib / 1024:.1f}"


def _growth(a: tuple[int, int, dict[str, int]], b: tuple[int, int, dict[str, int]]) -> str:
    """KiB of RSS per 1,000 accepted bodies between two samples."""
    accepted = b[1] - a[1]
    if accepted <= 0:
        return f"{b[2]['rss'] - a[2]['rss']:+d} KiB (none accepted)"
    return f"{(b[2]['rss'] - a[2]['rss']) * 1000 / accepted:+.0f} KiB per 1,000 accepted"


def report(result: dict[str, Any]) -> None:
    samples: list[tuple[int, int, dict[str, int]]] = result["samples"]
    start: dict[str, int] = result["start"]
    print(
        f"RSS MiB (anon · file): start {_mib(start['rss'])} "
        f"({_mib(start.get('anon', 0))} · {_mib(start.get('file', 0))})"
    )
    if len(samples) < SAMPLES:
        return
    quarter = SAMPLES // 4
    for n in (quarter, 2 * quarter, 3 * quarter, SAMPLES):
        answered, accepted, rss = samples[n - 1]
        print(
            f"  at {n * 100 // SAMPLES:3d} % ({answered} bodies, {accepted} accepted): "
            f"{_mib(rss['rss'])} ({_mib(rss.get('anon', 0))} · {_mib(rss.get('file', 0))})"
        )
    for name, rss in result["after"].items():
        print(
            f"  {name}: {_mib(rss['rss'])} "
            f"({_mib(rss.get('anon', 0))} · {_mib(rss.get('file', 0))})"
        )
    for when, inside in result["inside"].items():
        print(
            f"  {when}, before a trim: SQLite's allocator held "
            f"{inside['sqlite_kib'] / 1024:.1f} MiB (page cache "
            f"{inside['sqlite_cache_kib'] / 1024:.1f}), Python {inside['python_blocks']} blocks "
            f"(pymalloc: {inside.get('pymalloc_used_kib', -1) / 1024:.1f} MiB in use, "
            f"{inside.get('pymalloc_held_kib', -1) / 1024:.1f} held)"
        )
    zero = (0, 0, start)
    half = samples[2 * quarter - 1]
    print(f"growth, first half: {_growth(zero, half)}; last half: {_growth(half, samples[-1])}")
    print("after each 5 %: " + " ".join(f"{s[2]['rss'] / 1024:.0f}" for s in samples))


async def main(
    seed: int,
    count: int,
    in_flight: int,
    kinds: frozenset[str] | None,
    event_loop: str,
    trim: bool,
    keep_db: Path | None = None,
) -> None:
    with tempfile.TemporaryDirectory(prefix="callbridge-fuzz-") as tmp:
        async with serve(Path(tmp), event_loop, trim) as server:
            result = await run(server, seed, count, in_flight, kinds, trim)
        if keep_db is not None:  # the server has stopped: its database is complete
            shutil.copyfile(server.db, keep_db)
    sent = Counter(kind for kind, _ in bodies(seed, count, kinds))
    print(f"machine: {machine()}")
    print(
        f"event loop {event_loop}; seed {seed}, {count} bodies "
        f"({dict(sorted(sent.items()))}), {in_flight} in flight"
        + "".join(f"; {k}={v}" for k, v in os.environ.items() if k.startswith("MALLOC_"))
    )
    print(
        f"took {result['seconds']:.0f} s (dispatch caught up {result['caught_up']:.1f} s "
        f"later); answers by status: {result['statuses']}"
    )
    print(f"5xx: {len(result['five_xx'])}; /healthz afterwards: {result['alive']}")
    for kind, head in result["five_xx"][:5]:
        print(f"  5xx for a {kind} body: {head!r}")
    report(result)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bodies", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--in-flight", type=int, default=8)
    parser.add_argument("--event-loop", default="auto", help="serve's: auto, uvloop, asyncio")
    parser.add_argument(
        "--kinds",
        help="only these kinds of body, comma-separated: "
        + ", ".join(m.__name__.lstrip("_") for m, _ in KINDS),
    )
    parser.add_argument(
        "--trim", action="store_true", help="at the end, malloc_trim(0) the server (glibc)"
    )
    parser.add_argument(
        "--keep-db", type=Path, help="copy the server's SQLite database here at the end"
    )
    args = parser.parse_args()
    kinds = frozenset(args.kinds.split(",")) if args.kinds else None
    asyncio.run(
        main(
            args.seed, args.bodies, args.in_flight, kinds, args.event_loop, args.trim, args.keep_db
        )
    )
