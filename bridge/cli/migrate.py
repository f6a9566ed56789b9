"""``callbridge migrate``: bring the store's schema up to date, then exit.

`serve` migrates at start too; this command lets an operator do it on purpose (before
starting several instances of a new version, or from a deploy script) and see what changed.
The store is chosen exactly as `serve` chooses it (``--store``, else CALLBRIDGE_STORE, else
the default SQLite file). Exit 0: applied or already up to date; 1: the database could not
be reached or migrated; 2: invalid settings.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
from pathlib import Path

from bridge import logs
from bridge.core.urls import without_password
from bridge.service import settings, settings_values
from bridge.store import StoreError
from bridge.store.migrate import load


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Apply pending schema migrations to the store, print what was applied, and exit. "
        "Safe to run while other instances are running or starting."
    )
    parser.add_argument(
        "--store",
        dest="store",
        default=None,
        help="sqlite:///ABSOLUTE/PATH.db or postgresql://...; overrides CALLBRIDGE_STORE",
    )


def run(args: argparse.Namespace) -> int:
    try:
        config = settings.load(flags=argparse.Namespace(store=args.store))
    except settings.SettingsError as err:
        for problem in err.problems:
            print(f"callbridge migrate: {problem}", file=sys.stderr)
        return 2
    # Progress goes to stderr at warning level: stdout is the result only.
    logs.configure(fmt="console", level="warning", stream=sys.stderr, secrets=config.secrets())
    store = config.store
    where = without_password(store)
    try:
        if store.startswith("sqlite:"):
            applied = asyncio.run(_sqlite(settings_values.sqlite_path(store)))
        else:
            # Imported only here: asyncpg is the `postgres` extra (settings.load has checked
            # that it is installed), and the CLI parser should not load database drivers.
            from bridge.store.postgres import migrate_only  # noqa: PLC0415

            applied = asyncio.run(migrate_only(store))
    except StoreError as err:
        print(f"callbridge migrate: {_one_line(str(err))}", file=sys.stderr)
        return 1
    if applied:
        print(f"{where}: applied {', '.join(applied)}")
    else:
        print(f"{where}: up to date")
    return 0


async def _sqlite(path: Path) -> list[str]:
    """Open (which migrates) and close the store; the names of the migrations applied."""
    from bridge.store.sqlite import SqliteStore  # noqa: PLC0415

    before = _sqlite_version(path)
    store = SqliteStore(path)
    await store.open()
    await store.close()
    after = _sqlite_version(path)
    return [m.name for m in load("sqlite") if before < m.version <= after]


def _sqlite_version(path: Path) -> int:
    """The schema version of the SQLite file (0: no file or no schema yet)."""
    if not path.exists():
        return 0
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations")
            return int(row.fetchone()[0])
        finally:
            conn.close()
    except sqlite3.OperationalError as err:
        if "no such table" in str(err):
            return 0
        raise StoreError(f"cannot read the store {path}: {err}") from err
    except sqlite3.Error as err:
        raise StoreError(f"cannot read the store {path}: {err}") from err


def _one_line(text: str) -> str:
    return " ".join(text.split())
