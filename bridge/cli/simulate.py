"""The ``callbridge simulate`` command: options, environment, progress bar, exit status.

The work itself is :func:`bridge.simulate.client.simulate`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime

import aiohttp
from yarl import URL

from bridge.cli.progress import ProgressLine
from bridge.rules.model import counted
from bridge.simulate import SCENARIOS
from bridge.simulate.case_client import CaseRun, play_case_flows
from bridge.simulate.case_flows import CASE_FLOWS
from bridge.simulate.client import (
    DEFAULT_URL,
    Options,
    Progress,
    Summary,
    Unreachable,
    display_url,
    simulate,
    wait_until_up,
)


def _positive(kind: type[int] | type[float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
        return value

    return parse


def _scenario(text: str) -> str:
    if text == "all" or text in SCENARIOS or text in CASE_FLOWS:
        return text
    raise argparse.ArgumentTypeError(
        f"unknown scenario {text!r}; choose 'all' or one of: {', '.join([*SCENARIOS, *CASE_FLOWS])}"
    )


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``simulate`` options to ``parser``."""
    parser.description = (
        "Send realistic provider call notifications to a running bridge "
        f"(scenarios: {', '.join(SCENARIOS)}; callback case flows, several calls of one "
        f"customer and button presses: {', '.join(CASE_FLOWS)})."
    )
    parser.add_argument(
        "--url",
        default=None,
        help=f"notification URL (env CALLBRIDGE_URL; default {DEFAULT_URL})",
    )
    parser.add_argument(
        "--token",
        default=None,
        help="webhook token, sent as 'Authorization: Bearer' (env CALLBRIDGE_WEBHOOK_TOKEN)",
    )
    parser.add_argument(
        "--scenario",
        type=_scenario,
        default="all",
        metavar="NAME|all",
        help="which call flow or case flow to send (default: all, both kinds)",
    )
    parser.add_argument(
        "--slack-signing-secret",
        default=None,
        metavar="SECRET",
        help="the bridge's Slack signing secret, to press the case buttons of the case flows "
        "that need it (env SLACK_SIGNING_SECRET; without it those flows are skipped)",
    )
    parser.add_argument(
        "--calls",
        type=_positive(int),
        default=None,
        metavar="N",
        help="load mode: send N calls drawn at random from the scenarios",
    )
    parser.add_argument(
        "--rate",
        type=_positive(float),
        default=50.0,
        metavar="R",
        help="calls started per second (default 50)",
    )
    parser.add_argument(
        "--concurrency",
        type=_positive(int),
        default=16,
        metavar="C",
        help="requests in flight at most (default 16)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--shuffle",
        action="store_true",
        help="send each call's events in random order plus one duplicate (robustness demo)",
    )
    parser.add_argument(
        "--speed",
        type=_positive(float),
        default=None,
        metavar="S",
        help="play each call S times faster: its events stamped and sent on the compressed "
        "timeline, so their times are the times they arrive (default 1: real time, so a "
        "person watching the preview sees each call ring, be answered and end; load "
        "mode sends without gaps unless given --speed, --shuffle always does)",
    )
    parser.add_argument(
        "--fast",
        action="store_true",
        help="send each call's events back to back, without their real gaps",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar or per-call lines")
    parser.add_argument(
        "--wait",
        type=_positive(float),
        default=None,
        metavar="SECONDS",
        help="wait up to SECONDS for the bridge to answer /healthz before sending (demo: "
        "start `callbridge serve` and this in one go)",
    )


def options_from(args: argparse.Namespace, environ: dict[str, str] | None = None) -> Options:
    env = os.environ if environ is None else environ
    scenario: str = args.scenario
    if scenario in CASE_FLOWS:
        scenarios: tuple[str, ...] = ()
    else:
        scenarios = tuple(SCENARIOS) if scenario == "all" else (scenario,)
    return Options(
        url=args.url or env.get("CALLBRIDGE_URL") or DEFAULT_URL,
        token=args.token or env.get("CALLBRIDGE_WEBHOOK_TOKEN") or None,
        scenarios=scenarios,
        calls=None if args.calls is None else int(args.calls),
        rate=float(args.rate),
        concurrency=int(args.concurrency),
        seed=int(args.seed),
        shuffle=bool(args.shuffle),
        speed=speed_of(args),
    )


def speed_of(args: argparse.Namespace) -> float:
    """How the calls are paced: ``--speed`` (in load mode too), else real time for the demo
    (0: no gaps with ``--fast``, and by default in load mode and with ``--shuffle``, which sends
    without gaps whatever the speed)."""
    if args.fast:
        return 0.0
    if args.speed is not None:
        return float(args.speed)
    return 0.0 if args.calls is not None or args.shuffle else 1.0


async def preview_url(session: aiohttp.ClientSession, url: str) -> str | None:
    """The bridge's preview page (beside ``url``) when it serves one (dry-run), else None."""
    page = URL(url).with_path("/preview").with_query(None).with_user(None)
    try:
        async with session.get(page, timeout=aiohttp.ClientTimeout(total=2)) as response:
            return str(page) if response.status == 200 else None
    except (aiohttp.ClientError, TimeoutError):
        return None


def _check_url(url: str) -> str | None:
    parsed = URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        return f"--url: expected an http(s) URL like {DEFAULT_URL}, got {display_url(url)!r}"
    return None


def case_flows_of(args: argparse.Namespace) -> tuple[str, ...]:
    """The case flows to play: all with the demo's ``all``, one when named, none in load mode."""
    if args.calls is not None:
        return ()
    if args.scenario in CASE_FLOWS:
        return (str(args.scenario),)
    return tuple(CASE_FLOWS) if args.scenario == "all" else ()


async def _main(
    options: Options,
    progress: Progress,
    wait: float | None = None,
    cases: tuple[str, ...] = (),
    signing_secret: str | None = None,
) -> tuple[Summary | None, list[CaseRun]]:
    connector = aiohttp.TCPConnector(limit=options.concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        if wait:
            await wait_until_up(session, options.url, wait)
        if options.calls is None and (page := await preview_url(session, options.url)):
            print(f"callbridge simulate: watch the calls at {page}", file=sys.stderr, flush=True)
        summary = await simulate(session, options, progress) if options.scenarios else None
        runs = await play_case_flows(
            session,
            options.url,
            cases,
            token=options.token,
            signing_secret=signing_secret,
            now=lambda: datetime.now(UTC),
            seed=options.seed,
        )
        return summary, runs


def cases_summary(runs: list[CaseRun]) -> str:
    """The case flows' line under the calls' summary: their requests (events and presses)."""
    played = [r for r in runs if not r.skipped]
    sent, ok = sum(r.sent for r in played), sum(r.ok for r in played)
    line = f"case flows  {counted(sent, 'request')} in {counted(len(played), 'flow')}, {ok} ok"
    skipped = len(runs) - len(played)
    return line + (f" ({skipped} skipped)" if skipped else "")


def run(args: argparse.Namespace) -> int:
    """Entry point of ``callbridge simulate``; returns the exit status."""
    options = options_from(args)
    if problem := _check_url(options.url):
        print(f"callbridge simulate: {problem}", file=sys.stderr)
        return 2
    total = options.calls if options.calls is not None else len(options.scenarios)
    quiet = bool(args.quiet)
    cases = case_flows_of(args)
    secret = args.slack_signing_secret or os.environ.get("SLACK_SIGNING_SECRET") or None
    with ProgressLine(total, sys.stderr, disable=quiet or not sys.stderr.isatty()) as bar:
        try:
            summary, runs = asyncio.run(_main(options, bar, args.wait, cases, secret))
        except Unreachable as err:
            bar.close()
            print(f"callbridge simulate: {err}", file=sys.stderr)
            return 1
    if summary is not None and not quiet and options.calls is None:
        for call in summary.calls:
            result = "ok" if call.failed == 0 else f"{call.failed} failed"
            ids = " + ".join(call.call_ids)
            print(f"{call.scenario:<32} {ids}  {counted(call.events, 'event')} {result}")
    for run_ in runs:
        if run_.skipped:
            print(f"{run_.flow:<32} {run_.customer}  skipped: {run_.skipped}")
        elif not quiet or run_.problems:
            result = "ok" if not run_.problems else f"{len(run_.problems)} failed"
            print(f"{run_.flow:<32} {run_.customer}  {counted(run_.sent, 'request')} {result}")
        for problem in run_.problems[:5]:
            print(f"  {problem}")
    if summary is not None:
        print(summary.render())
    if runs:
        print(cases_summary(runs))
    cases_ok = all(not r.problems for r in runs)
    return 0 if (summary is None or summary.ok) and cases_ok else 1
