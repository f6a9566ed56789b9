"""Versioned schema migrations, shared by the store backends.

Each backend keeps numbered SQL files in ``bridge/store/migrations/<dialect>/``, named
``NNNN_what.sql`` (``0001_initial.sql``, ``0002_...``), numbered from 1 without gaps. A
database records what it has applied in ``schema_migrations(version, applied_at)``; at start
the backend applies, in order and each in its own transaction, every file newer than the
database's version. This module only finds the files and decides what is pending; running
them is the backend's business (its driver and transaction handling differ).
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from importlib.resources.abc import Traversable
from typing import TYPE_CHECKING, Any, Final

import structlog

from bridge.store import StoreError

if TYPE_CHECKING:
    from asyncpg import Connection as PgConnection  # type: ignore[import-untyped]
else:
    PgConnection = Any

log = structlog.get_logger("bridge.store.migrate")

_NAME: Final = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str  # the file name, for messages
    sql: str


def load(dialect: str) -> tuple[Migration, ...]:
    """The packaged migrations of one backend (``sqlite``, ``postgresql``), in order."""
    return load_dir(resources.files("bridge.store").joinpath("migrations", dialect))


def load_dir(folder: Traversable) -> tuple[Migration, ...]:
    """Read ``NNNN_name.sql`` files from ``folder``; other files are ignored.

    Raises :class:`StoreError` when the folder is missing or the numbering is broken (a
    packaging mistake: the installed callbridge is incomplete).
    """
    if not folder.is_dir():
        raise StoreError(f"migrations folder {folder} is missing: reinstall callbridge")
    found: dict[int, Migration] = {}
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _NAME.match(entry.name)
        if match is None:
            raise StoreError(
                f"migration file {entry.name!r} in {folder} is not named NNNN_name.sql "
                "(four digits, underscore, lower-case name)"
            )
        version = int(match.group("version"))
        if version in found:
            raise StoreError(
                f"migrations {found[version].name!r} and {entry.name!r} in {folder} "
                f"share version {version}"
            )
        found[version] = Migration(version, entry.name, entry.read_text(encoding="utf-8"))
    ordered = tuple(found[v] for v in sorted(found))
    for expected, migration in enumerate(ordered, start=1):
        if migration.version != expected:
            raise StoreError(
                f"migrations in {folder} skip version {expected} "
                f"(next file is {migration.name!r}); versions must be 1, 2, 3, ..."
            )
    return ordered


def latest(migrations: tuple[Migration, ...]) -> int:
    return migrations[-1].version if migrations else 0


def pending(
    migrations: tuple[Migration, ...], current: int, *, where: str
) -> tuple[Migration, ...]:
    """The migrations to apply to a database at schema version ``current``.

    Raises :class:`StoreError` when the database is newer than this code (it was migrated
    by a later callbridge); ``where`` names the database in the message (never a secret).
    """
    known = latest(migrations)
    if current > known:
        raise StoreError(
            f"{where}: database schema version {current} is newer than this callbridge "
            f"understands ({known}); upgrade callbridge or point CALLBRIDGE_STORE at "
            "another database"
        )
    return tuple(m for m in migrations if m.version > current)


def apply_sqlite(
    conn: sqlite3.Connection, migrations: tuple[Migration, ...], *, where: str
) -> None:
    """Apply pending migrations to an SQLite connection in autocommit mode.

    Each migration runs in its own ``BEGIN IMMEDIATE`` transaction that re-reads the version
    first, so two processes starting at once apply each migration exactly once.
    """
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations"
        " (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    version_sql = "SELECT coalesce(max(version), 0) FROM schema_migrations"
    current = int(conn.execute(version_sql).fetchone()[0])
    for migration in pending(migrations, current, where=where):
        conn.execute("BEGIN IMMEDIATE")
        try:
            if int(conn.execute(version_sql).fetchone()[0]) < migration.version:
                for statement in split_script(migration.sql, migration.name):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                    (migration.version, datetime.now(UTC).isoformat()),
                )
                log.info("store.migrated", store=where, migration=migration.name)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


def split_script(script: str, name: str) -> list[str]:
    """Split a migration into statements (``sqlite3.execute`` runs one at a time).

    ``executescript`` cannot be used: it commits any open transaction first, and the
    migration, its version check and its ``schema_migrations`` row must share one.
    """
    statements: list[str] = []
    start = 0
    for end, char in enumerate(script):
        if char == ";" and sqlite3.complete_statement(script[start : end + 1]):
            statements.append(script[start : end + 1].strip())
            start = end + 1
    rest = [
        ln for ln in script[start:].splitlines() if ln.strip() and not ln.strip().startswith("--")
    ]
    if rest:
        raise StoreError(f"migration {name} ends with an unterminated statement: {rest[0]!r}")
    return statements


# Transaction-level advisory lock that serialises migrations of one PostgreSQL database
# (two instances starting at once): b"cbmigrat" as a signed 64-bit integer.
PG_MIGRATE_LOCK: Final = int.from_bytes(b"cbmigrat", "big", signed=True)


async def apply_postgres(
    conn: PgConnection, migrations: tuple[Migration, ...], *, where: str
) -> list[str]:
    """Apply pending migrations on an asyncpg connection; return the applied file names.

    Each migration runs in its own transaction that first takes a transaction-level
    advisory lock and re-reads the version, so instances starting at once wait for each
    other and apply each migration exactly once. PostgreSQL DDL is transactional: a
    failing migration leaves nothing half-applied.
    """
    applied: list[str] = []
    while True:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", PG_MIGRATE_LOCK)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations"
                " (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)"
            )
            current = await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations")
            todo = pending(migrations, int(current), where=where)
            if not todo:
                return applied
            migration = todo[0]
            await conn.execute(migration.sql)  # no arguments: a multi-statement script is fine
            await conn.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, now())",
                migration.version,
            )
            log.info("store.migrated", store=where, migration=migration.name)
            applied.append(migration.name)
