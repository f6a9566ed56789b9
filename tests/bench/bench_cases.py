"""Callback cases' cost at ingest (issue 16): the bridge on SQLite with cases on (every route's
default) against the same bridge and rules with ``callback: off`` on every route, paired runs
alternating on fresh servers, under the ingest benchmark's load (bench_ingest.measure).

With cases on, every routed inbound or outbound call with a readable number stores a case
fact in its refold's transaction, and a missed call reads its number's facts to fold its
case. The target: throughput within 5 % of cases off (median of the pairs' ratios).

Run by hand: ``.venv/bin/python -m tests.bench.bench_cases [--events N] [--runs R]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from pathlib import Path

from tests.bench.bench_ingest import bridge_cmd, machine, measure, server, sqlite_dirty
from tests.support.harness import write_rules

RULES = """\
version: 1
timezone: Europe/Amsterdam
destinations:
  support: {slack: {channel: C0123456789}}
  oncall: {slack: {channel: C0999999999}}
routes:
  - name: internal
    when: {internal: true}
    drop: true
  - name: customers
    when: {direction: inbound}
    live: support
    missed: [support, oncall]
  - name: outbound
    live: support
"""
OFF = (
    RULES.replace(
        "    missed: [support, oncall]\n", "    missed: [support, oncall]\n    callback: off\n"
    )
    .replace("  - name: outbound\n", "  - name: outbound\n    callback: off\n")
    .replace("    drop: true\n", "    drop: true\n    callback: off\n")
)


async def main(events: int, runs: int) -> None:
    rows: dict[str, list[dict[str, float]]] = {"cases on": [], "cases off": []}
    with tempfile.TemporaryDirectory() as tmp:
        rules = {
            "cases on": write_rules(Path(tmp), RULES, name="on.yaml"),
            "cases off": write_rules(Path(tmp), OFF, name="off.yaml"),
        }
        for run in range(runs):
            for name in ("cases off", "cases on"):  # alternate: drift hits both alike
                db = Path(tmp) / f"{name.replace(' ', '-')}-{run}.db"
                store = f"sqlite:///{db.as_posix().lstrip('/')}"
                async with server(bridge_cmd(store, rules[name])) as url:
                    rows[name].append(await measure(name, [url], events, sqlite_dirty(db)))
    ratios = [
        on["throughput"] / off["throughput"]
        for on, off in zip(rows["cases on"], rows["cases off"], strict=True)
    ]
    print(f"\nMachine: {machine()}")
    print(f"{events} events flat out per run, {runs} paired runs\n")
    print("| rules | events/s flat out | CPU µs/event (server) | caught up after | p99 ms paced |")
    print("|---|---|---|---|---|")
    for name, measured in rows.items():

        def span(key: str, fmt: str = "{:.0f}", values: list[dict[str, float]] = measured) -> str:
            low, high = min(m[key] for m in values), max(m[key] for m in values)
            return f"{fmt.format(low)}-{fmt.format(high)}"

        print(
            f"| {name} | {span('throughput')} | {span('server_us')} "
            f"| {span('caught_up', '{:.1f}')} s | {span('p99_paced', '{:.1f}')} |"
        )
    print(
        f"\ncases on / cases off, per pair: {', '.join(f'{r:.3f}' for r in ratios)}; "
        f"median {statistics.median(ratios):.3f} (target >= 0.95)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.events, args.runs))
