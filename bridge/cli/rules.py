"""`callbridge check [RULES]` and `callbridge route [--rules RULES] EVENTS...`.

``bridge/cli/__init__.py`` owns argv and exit; these functions only configure a sub-parser and run
with the parsed arguments, printing to stdout (results) and stderr (problems).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import msgspec

from bridge.cli.route_text import case_summary, describe, fold_all
from bridge.core.calls import fold
from bridge.core.duration import format_duration
from bridge.core.events import Event, InvalidEvent, NotJSON, decode
from bridge.rules.callbacks import case_facts
from bridge.rules.load import load_file
from bridge.rules.match import route
from bridge.rules.model import RulesError, Ruleset, counted
from bridge.rules.outlive import outliving
from bridge.rules.selftest import run_tests
from bridge.service.settings import DEFAULT_RETENTION, positive_duration

INSTALLED_RULES: Final = Path("/etc/callbridge/rules.yaml")


def default_rules_path() -> Path:
    """``$CALLBRIDGE_RULES``, else ``rules/example.yaml`` of a checkout, else /etc/callbridge."""
    if env := os.environ.get("CALLBRIDGE_RULES"):
        return Path(env)
    checkout = Path(__file__).resolve().parents[2] / "rules" / "example.yaml"
    return checkout if checkout.is_file() else INSTALLED_RULES


def configure_check(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Validate rules files and run their tests: `callbridge check rules/*.yaml`. Every "
        "file is checked and every problem shown; exit 1 if any file fails. Also warns of "
        "callback cases that could still be open when retention ($CALLBRIDGE_RETENTION, "
        f"default {format_duration(DEFAULT_RETENTION)}) deletes their calls."
    )
    parser.add_argument(
        "rules",
        nargs="*",
        type=Path,
        metavar="RULES",
        help="rules files (default: $CALLBRIDGE_RULES, else rules/example.yaml of the "
        "checkout, else /etc/callbridge/rules.yaml)",
    )


def configure_route(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Dry run: fold recorded provider events into calls and show which routes match, "
        "what would be posted where and what each call does to callback cases; then the "
        "cases all the calls make."
    )
    parser.add_argument("--rules", type=Path, default=None, help="rules file (as for `check`)")
    parser.add_argument(
        "events",
        nargs="+",
        help="event files: .json (one event or a list) or .jsonl (one per line); - for stdin",
    )


def _load(path: Path | None, *, own_tests: bool = True) -> Ruleset | None:
    path = path or default_rules_path()
    try:
        return load_file(path, own_tests=own_tests)
    except RulesError as err:
        for problem in err.problems:
            print(problem, file=sys.stderr)
        print(
            f"{path}: {counted(len(err.problems), 'problem')}; the rules were not loaded",
            file=sys.stderr,
        )
    except OSError as err:
        print(
            f"{path}: cannot read the rules file: {err.strerror} (pass a path, or set "
            "CALLBRIDGE_RULES)",
            file=sys.stderr,
        )
    return None


def _retention() -> timedelta | None:
    """``$CALLBRIDGE_RETENTION`` as `serve` reads it (None, said on stderr: not readable)."""
    text = os.environ.get("CALLBRIDGE_RETENTION")
    if not text:
        return DEFAULT_RETENTION
    try:
        return positive_duration(text)
    except ValueError as err:
        print(f"CALLBRIDGE_RETENTION: {err}", file=sys.stderr)
        return None


def run_check(args: argparse.Namespace) -> int:
    paths: list[Path] = list(args.rules) or [default_rules_path()]
    retention = _retention()
    if retention is None:
        return 1
    failed = []
    for path in paths:
        ruleset = _load(path)
        if ruleset is None:
            failed.append(path)
            continue
        print(
            f"OK: {ruleset.source} ({ruleset.shape}, {counted(len(ruleset.tests), 'test')} passed)"
        )
        for found in outliving(ruleset, retention, datetime.now(UTC)):
            print(f"{ruleset.source}: warning: {found.message(retention)}", file=sys.stderr)
    if len(paths) > 1:
        names = ", ".join(str(p) for p in failed)
        verdict = f"{len(failed)} failed: {names}" if failed else "all OK"
        print(f"{len(paths)} rules files checked; {verdict}", file=sys.stderr if failed else None)
    return 1 if failed else 0


@dataclass
class _Input:
    events: list[Event]
    bad: int = 0


def _documents(name: str, text: str) -> Iterator[tuple[str, bytes]]:
    """(location, JSON bytes) of each event: a whole-file object or list, else JSON lines."""
    try:
        doc = msgspec.json.decode(text)
    except msgspec.DecodeError:
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                yield f"{name}:{number}", line.encode()
        return
    for index, item in enumerate(doc if isinstance(doc, list) else [doc]):
        where = f"{name}[{index}]" if isinstance(doc, list) else name
        yield where, msgspec.json.encode(item)


def _read(sources: list[str]) -> _Input:
    found = _Input(events=[])
    for source in sources:
        try:
            text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
        except OSError as err:
            print(f"{source}: cannot read the events: {err.strerror or err}", file=sys.stderr)
            found.bad += 1
            continue
        except UnicodeDecodeError as err:
            print(
                f"{source}: cannot read the events: not UTF-8 text ({err.reason})", file=sys.stderr
            )
            found.bad += 1
            continue
        for where, body in _documents("<stdin>" if source == "-" else source, text):
            try:
                found.events.append(decode(body))
            except NotJSON:
                print(f"{where}: skipped: not a JSON document", file=sys.stderr)
                found.bad += 1
            except InvalidEvent as err:
                print(f"{where}: skipped: {err}", file=sys.stderr)
                found.bad += 1
    return found


def group(events: list[Event]) -> list[list[Event]]:
    """Events per call story: ids joined by a transfer's ``merged_id`` belong together."""
    parent: dict[str, str] = {}

    def root(key: str) -> str:
        while parent.setdefault(key, key) != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for event in events:
        if event.merged_id:
            parent[root(event.merged_id)] = root(event.call_id)
    stories: dict[str, list[Event]] = {}
    for event in events:
        stories.setdefault(root(event.call_id), []).append(event)
    return list(stories.values())


def run_route(args: argparse.Namespace) -> int:
    # Routing is how to find out why a test of the file fails: its failures are warnings here.
    ruleset = _load(args.rules, own_tests=False)
    if ruleset is None:
        return 1
    if failing := run_tests(ruleset):
        for problem in failing:
            print(f"warning: {problem}", file=sys.stderr)
        print(
            f"warning: {ruleset.source}: its own tests fail ({counted(len(failing), 'problem')}"
            "): `serve` and `check` refuse it; routed all the same",
            file=sys.stderr,
        )
    found = _read(list(args.events))
    calls = sorted((fold(story) for story in group(found.events)), key=lambda c: c.started_at)
    routed = [(call, route(ruleset, call)) for call in calls]
    facts = [f for call, result in routed for f in case_facts(ruleset, call, result)]
    # The clock of the cases stops at the input's last event: what a reader sees then.
    now = max((e.timestamp for e in found.events), default=None)
    cases = fold_all(facts, now) if now is not None else []
    for n, (call, result) in enumerate(routed):
        if n:
            print()
        print("\n".join(describe(ruleset, call, result, cases)))
    if now is not None:
        print("\n" + "\n".join(case_summary(ruleset, cases, now)))
    print(
        f"\n{counted(len(calls), 'call')} from {counted(len(found.events), 'event')} routed "
        f"with {ruleset.source}"
        + (f"; {counted(found.bad, 'input problem')}, see above" if found.bad else "")
    )
    return 1 if found.bad else 0
