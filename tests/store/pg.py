"""Throw-away PostgreSQL databases for the store tests.

Each test gets a fresh database ``callbridge_test_<random>``, created through the server's
``postgres`` maintenance database and dropped afterwards, so concurrent test runs never see
each other. The server is ``CALLBRIDGE_TEST_PG`` (a DSN of the maintenance database),
default ``postgresql://postgres@127.0.0.1:5432/postgres``. When no server can be reached at
all the PostgreSQL tests skip, loudly (see conftest.py); any other failure is an error.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

import asyncpg  # type: ignore[import-untyped]

MAINTENANCE_DSN = os.environ.get(
    "CALLBRIDGE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"
)

_unreachable: list[str] = []  # why the server cannot be reached (empty: reachable or unknown)
_checked: list[bool] = []


def dsn_for(database: str) -> str:
    parts = urlsplit(MAINTENANCE_DSN)
    return urlunsplit(parts._replace(path=f"/{database}"))


async def unreachable_reason() -> str | None:
    """Why no PostgreSQL server can be reached (None: it can); checked once per run."""
    if not _checked:
        try:
            conn = await asyncpg.connect(MAINTENANCE_DSN, timeout=3)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as err:
            _unreachable.append(f"{type(err).__name__}: {err}")
        else:
            await conn.close()
        _checked.append(True)
    return _unreachable[0] if _unreachable else None


@asynccontextmanager
async def fresh_database(prefix: str = "callbridge_test") -> AsyncIterator[str]:
    """Create an empty database; yield its DSN; drop it (and its sessions) afterwards."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(MAINTENANCE_DSN, timeout=5)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield dsn_for(name)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def terminate_sessions(dsn: str, application_name: str | None = None) -> int:
    """``pg_terminate_backend`` every other session on the database of ``dsn`` (only those
    with ``application_name`` when given); returns how many were terminated."""
    database = urlsplit(dsn).path.lstrip("/")
    conn = await asyncpg.connect(MAINTENANCE_DSN, timeout=5)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = $1 AND pid <> pg_backend_pid()"
                " AND ($2::text IS NULL OR application_name = $2)",
                database,
                application_name,
            )
        )
    finally:
        await conn.close()
