"""Replay benchmark (issue 12, "done when"): many calls against real ``callbridge serve``
processes, SIGKILLed 3 times mid-stream, the provider retrying, ``min_ring`` rules; the fake
Slack's final state judged against the scenario's oracle (tests/support/replay_slack.py).

Run by hand (results in docs/benchmarks.md)::

    .venv/bin/python -m tests.bench.bench_replay_slack --calls 1000
    .venv/bin/python -m tests.bench.bench_replay_slack --calls 1000 --postgres --instances 2

``--postgres`` uses a fresh database on ``CALLBRIDGE_TEST_PG`` (default the local server).
Exits 1 when any call is missing, any alert lost or wrong, or anything posted twice.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

from tests.support.replay_slack import Report, machine, replay


async def run(args: argparse.Namespace, tmp: Path) -> Report:
    options = {
        "calls": args.calls,
        "kills": args.kills,
        "seed": args.seed,
        "scale": args.scale,
        "quiet_timeout": args.timeout,
        "log": lambda line: print(line, file=sys.stderr, flush=True),
    }
    if not args.postgres:
        return await replay(tmp, **options)
    from tests.store import pg  # noqa: PLC0415 (only for this option)

    async with pg.fresh_database("callbridge_bench") as dsn:
        return await replay(tmp, postgres=dsn, instances=args.instances, **options)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scale", type=float, default=50.0, help="time compression")
    parser.add_argument("--timeout", type=float, default=300.0, help="quiescence deadline (s)")
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--instances", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report = asyncio.run(run(args, Path(tmp)))
    verdict = report.verdict
    result = {
        "store": "postgresql" if args.postgres else "sqlite",
        "instances": args.instances,
        "seed": args.seed,
        "scale": args.scale,
        **report.summary(),
        **machine(),
    }
    print(json.dumps(result, indent=2))
    for name in ("missing_calls", "lost_alerts", "wrong_alerts", "duplicates", "strays"):
        for item in getattr(verdict, name)[:20]:
            print(f"{name}: {item}")
    return 0 if verdict.ok else 1


if __name__ == "__main__":
    sys.exit(main())
