"""Issue 12's replay at scale, by hand: N calls of every flow against real `callbridge serve`
processes on SQLite, killed with SIGKILL K times mid-stream, the provider retrying what failed;
then the oracle of tests/support/replay.py (missing calls, lost and wrong alerts, duplicates).

Run: ``.venv/bin/python -m tests.bench.bench_replay [--calls 1000] [--kills 3] [--seeds 1 2]``
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from tests.bench.bench_ingest import machine
from tests.support.replay import replay


async def main(calls: int, kills: int, seeds: list[int]) -> int:
    print(f"Machine: {machine()}")
    failed = 0
    for seed in seeds:
        with tempfile.TemporaryDirectory() as tmp:
            outcome = await replay(Path(tmp), calls=calls, kills=kills, seed=seed)
        print(f"seed {seed}: {outcome.summary()}")
        for kind in ("missing", "lost", "wrong", "duplicates"):
            for item in getattr(outcome, kind)[:10]:
                print(f"  {kind}: {item}")
        failed += bool(outcome.missing or outcome.lost or outcome.wrong or outcome.duplicates)
    return failed


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    raise SystemExit(asyncio.run(main(args.calls, args.kills, args.seeds)))
