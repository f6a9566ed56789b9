"""Hostile-body fuzz of ``POST /notifications`` against a real ``callbridge serve`` process.

Run by hand (results go in docs/benchmarks.md, "Hostile input")::

    .venv/bin/python -m tests.bench.fuzz_ingest [--bodies 20000] [--seed 13] [--in-flight 8]

It starts ``callbridge serve`` on 127.0.0.1:0 with a fresh SQLite store (dry-run chat), sends
``--bodies`` seeded bodies (:func:`bodies`: random bytes and JSON, the provider's fixtures with
a node replaced, deleted or retyped, nesting up to 5,000 levels, timestamps at the ends of the
calendar, ids with control characters or 30 KB long, long dialled strings, bodies near the
64 KiB limit, and thousands of events piled onto a few call ids), and reports the answers by
status, the number of 5xx (target: 0), whether the process is still alive and answers
``/healthz``, and its RSS after a warm-up (the first 10 %) and at the end (target: flat).

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


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


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


@asynccontextmanager
async def serve(directory: Path, event_loop: str) -> AsyncIterator[tuple[str, int]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CALLBRIDGE_", "SLACK_"))}
    env.pop("NOTIFY_SOCKET", None)
    db = directory / "bridge.db"
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "bridge", "serve", "--listen", "127.0.0.1:0"),
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
    errors: Counter[str] = Counter()

    async def drain() -> None:  # keep the pipe empty; count errors and tracebacks
        assert proc.stdout is not None
        async for raw in proc.stdout:
            with suppress(ValueError):
                line = json.loads(raw)
                if line.get("level") in ("error", "critical") or "exception" in line:
                    errors[str(line.get("event"))] += 1

    reader = asyncio.create_task(drain())
    try:
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)
        await asyncio.wait_for(reader, 5)
        if errors:
            print(f"server logged errors: {dict(errors)}")


async def run(
    url: str, pid: int, seed: int, count: int, in_flight: int, kinds: frozenset[str] | None
) -> dict[str, Any]:
    statuses: Counter[int] = Counter()
    five_xx: list[tuple[str, bytes]] = []
    rss: dict[str, int] = {"start": rss_kib(pid)}
    samples: list[int] = []  # after each tenth of the bodies
    warm_up = max(1, count // 10)
    queue: asyncio.Queue[tuple[int, str, bytes] | None] = asyncio.Queue(maxsize=in_flight * 2)
    started = time.monotonic()

    async def worker(session: aiohttp.ClientSession) -> None:
        while (item := await queue.get()) is not None:
            n, kind, data = item
            async with session.post(
                f"{url}/notifications", data=data, headers={"Content-Type": "application/json"}
            ) as response:
                await response.read()
                statuses[response.status] += 1
                if response.status >= 500:
                    five_xx.append((kind, data[:300]))
            if (n + 1) % warm_up == 0:
                samples.append(rss_kib(pid))

    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        workers = [asyncio.create_task(worker(session)) for _ in range(in_flight)]
        for n, (kind, data) in enumerate(bodies(seed, count, kinds)):
            await queue.put((n, kind, data))
        for _ in workers:
            await queue.put(None)
        await asyncio.gather(*workers)
        async with session.get(f"{url}/healthz") as health:
            alive = health.status == 200
    rss["end"] = rss_kib(pid)
    rss["after_warm_up"] = samples[0] if samples else rss["start"]
    return {
        "bodies": count,
        "seconds": time.monotonic() - started,
        "statuses": dict(sorted(statuses.items())),
        "five_xx": five_xx,
        "alive": alive,
        "rss_kib": rss,
        "rss_samples": samples,
    }


async def main(
    seed: int, count: int, in_flight: int, kinds: frozenset[str] | None, event_loop: str
) -> None:
    with tempfile.TemporaryDirectory(prefix="callbridge-fuzz-") as tmp:
        async with serve(Path(tmp), event_loop) as (url, pid):
            result = await run(url, pid, seed, count, in_flight, kinds)
    sent = Counter(kind for kind, _ in bodies(seed, count, kinds))
    print(f"machine: {machine()}")
    print(
        f"event loop {event_loop}; seed {seed}, {count} bodies "
        f"({dict(sorted(sent.items()))}), {in_flight} in flight"
    )
    print(f"took {result['seconds']:.0f} s; answers by status: {result['statuses']}")
    print(f"5xx: {len(result['five_xx'])}; /healthz afterwards: {result['alive']}")
    for kind, head in result["five_xx"][:5]:
        print(f"  5xx for a {kind} body: {head!r}")
    rss = result["rss_kib"]
    print(
        f"RSS MiB: start {rss['start'] / 1024:.1f}, after warm-up "
        f"{rss['after_warm_up'] / 1024:.1f}, end {rss['end'] / 1024:.1f}; after each tenth: "
        + " ".join(f"{kib / 1024:.0f}" for kib in result["rss_samples"])
    )


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
    args = parser.parse_args()
    kinds = frozenset(args.kinds.split(",")) if args.kinds else None
    asyncio.run(main(args.seed, args.bodies, args.in_flight, kinds, args.event_loop))
