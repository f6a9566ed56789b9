"""``callbridge digest``: print the daily digest each destination of the rules' ``digest:``
would get, from the store, posting nothing.

By default the period ends now (what the next digest would say so far); ``--at`` ends it at
another moment, local time in the rules' time zone (``--at 2026-12-03T08:30`` shows what
that morning's digest said, as the cases stood then). The store and the rules are chosen
exactly as `serve` chooses them (``--store``/``--rules``, else the environment, else the
defaults); opening the store applies pending migrations, as `serve` does, but a SQLite file
that does not exist is not made. Exit 0: printed; 1: the rules have no ``digest:``, or the
store or the rules could not be read; 2: invalid settings or ``--at``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

from bridge import logs
from bridge.core.digest import DigestContent
from bridge.render.digest_view import digest_view
from bridge.rules import RulesError, Ruleset, load_file
from bridge.service import settings, settings_values
from bridge.store import StoreError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Print the callback case digest each destination in the rules' `digest:` would get "
        "for the period ending now (or at --at), from the store; nothing is posted."
    )
    parser.add_argument("--rules", type=Path, default=None, help="rules file (as for `serve`)")
    parser.add_argument(
        "--store",
        default=None,
        help="sqlite:///ABSOLUTE/PATH.db or postgresql://...; as for `serve`",
    )
    parser.add_argument(
        "--at",
        default=None,
        metavar="YYYY-MM-DDTHH:MM",
        help="end the period then (local time in the rules' time zone); default: now",
    )


def run(args: argparse.Namespace) -> int:
    flags = argparse.Namespace(store=args.store, rules=args.rules)
    try:
        config = settings.load(flags=flags)
    except settings.SettingsError as err:
        for problem in err.problems:
            print(f"callbridge digest: {problem}", file=sys.stderr)
        return 2
    logs.configure(fmt="console", level="warning", stream=sys.stderr, secrets=config.secrets())
    try:
        ruleset = load_file(config.rules)
    except OSError as err:
        print(f"callbridge digest: {config.rules}: {err.strerror or err}", file=sys.stderr)
        return 1
    except RulesError as err:  # each problem names the file, line and column
        print(f"callbridge digest: {err}", file=sys.stderr)
        return 1
    if ruleset.digest is None:
        print(f"callbridge digest: {config.rules} has no `digest:` block", file=sys.stderr)
        return 1
    try:
        until = _until(args.at, ruleset.timezone)
    except OutOfRange:
        print(f"callbridge digest: --at {args.at!r} is not between {YEARS}", file=sys.stderr)
        return 2
    except ValueError:
        print(f"callbridge digest: --at {args.at!r} is not YYYY-MM-DDTHH:MM", file=sys.stderr)
        return 2
    for note in _notes(until, ruleset.digest.days, ruleset.timezone):
        print(f"callbridge digest: note: {note}", file=sys.stderr)
    if config.store.startswith("sqlite:"):
        path = settings_values.sqlite_path(config.store)
        if not path.exists():  # a read: never make an empty store where none was
            print(f"callbridge digest: no store at {path} (check --store)", file=sys.stderr)
            return 1
    try:
        digests = asyncio.run(_read(config.store, ruleset, until))
    except StoreError as err:
        print(f"callbridge digest: the store: {err}", file=sys.stderr)
        return 1
    print("\n\n".join(_text(content) for content in digests))
    return 0


# A digest looks back days; moments near the ends of Python's dates (1 to 9999) overflow.
FIRST_YEAR, LAST_YEAR = 2000, 9000
YEARS: Final = f"the years {FIRST_YEAR} and {LAST_YEAR}"


class OutOfRange(ValueError):
    pass


def _until(at: str | None, tz: ZoneInfo) -> datetime:
    if at is None:
        return datetime.now(UTC)
    local = datetime.fromisoformat(at)
    if not FIRST_YEAR <= local.year <= LAST_YEAR:
        raise OutOfRange(at)
    return (local if local.tzinfo else local.replace(tzinfo=tz)).astimezone(UTC)


def _notes(until: datetime, days: frozenset[int], tz: ZoneInfo) -> list[str]:
    """What makes the period's end one no digest would end (printed all the same)."""
    local = until.astimezone(tz)
    notes = []
    if local.isoweekday() not in days:
        notes.append(f"no digest goes out on a {local:%A} (the rules' `days`)")
    if until > datetime.now(UTC):
        notes.append("--at is still to come: the cases as they would stand then")
    return notes


async def _read(url: str, ruleset: Ruleset, until: datetime) -> list[DigestContent]:
    # Imported here: the other commands' parser need not load the service and the store.
    from bridge.deliver.digests import contents  # noqa: PLC0415
    from bridge.service.app import open_store  # noqa: PLC0415

    store = open_store(url)
    await store.open()
    try:
        return await contents(store, ruleset, until)
    finally:
        await store.close()


def _text(content: DigestContent) -> str:
    """A destination's digest as lines: where it goes, then what it says."""
    view = digest_view(content)
    lines = [f"# {view.destination}", view.title, view.headline, *view.counts]
    if view.waiting:
        lines += ["Still waiting:", *(f"  {w.line(str)}" for w in view.waiting)]
        if view.more_text:
            lines.append(f"  {view.more_text}")
    return "\n".join(lines)
