"""The ``store`` fixture, parametrised over backends (SQLite and PostgreSQL).

Every test in test_contract.py and test_outbox_contract.py runs once per backend. A backend
is described by a :class:`Backend`: how to make a (not yet opened) store on its database,
how to hold the database's write lock from outside (to make a write transaction fail
honestly), and how to stamp a schema version onto the database.

PostgreSQL: each test gets its own fresh database (tests/store/pg.py). The PostgreSQL
params skip only when no server can be reached at all, and the run then ends with a loud
banner saying so.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import asyncpg  # type: ignore[import-untyped]
import pytest

from bridge.store import Store
from bridge.store.postgres import PostgresStore
from bridge.store.sqlite import SqliteStore
from tests.store import pg

# How long a blocked write waits before giving up (kept short so failure tests are fast).
LOCK_WAIT_SECONDS = 0.2

_skipped_pg: list[str] = []


class CountingStore(Store, Protocol):
    commits: int  # write transactions committed


@dataclass(frozen=True)
class Backend:
    name: str
    new_store: Callable[[], CountingStore]  # a fresh instance on the same database
    hold_write_lock: Callable[[], AbstractAsyncContextManager[None]]
    stamp_schema_version: Callable[[int], Awaitable[None]]


def _sqlite_backend(path: Path) -> Backend:
    def new_store() -> CountingStore:
        return SqliteStore(path, busy_timeout=LOCK_WAIT_SECONDS)

    @asynccontextmanager
    async def hold_write_lock() -> AsyncIterator[None]:
        conn = sqlite3.connect(path, isolation_level=None, timeout=10)
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield
            conn.execute("ROLLBACK")
        finally:
            conn.close()

    async def stamp_schema_version(version: int) -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                (version, "2030-01-01T00:00:00+00:00"),
            )
        finally:
            conn.close()

    return Backend("sqlite", new_store, hold_write_lock, stamp_schema_version)


def _postgres_backend(dsn: str) -> Backend:
    def new_store() -> CountingStore:
        return PostgresStore(dsn, pool_max=4, lock_timeout=LOCK_WAIT_SECONDS)

    @asynccontextmanager
    async def hold_write_lock() -> AsyncIterator[None]:
        conn = await asyncpg.connect(dsn)
        try:
            async with conn.transaction():
                await conn.execute("LOCK TABLE events IN EXCLUSIVE MODE")  # readers may pass
                yield
        finally:
            await conn.close()

    async def stamp_schema_version(version: int) -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(
                "INSERT INTO schema_migrations (version, applied_at)"
                " VALUES ($1, '2030-01-01T00:00:00+00:00')",
                version,
            )
        finally:
            await conn.close()

    return Backend("postgresql", new_store, hold_write_lock, stamp_schema_version)


async def require_postgres() -> None:
    """Skip (loudly) when no PostgreSQL server can be reached at all."""
    reason = await pg.unreachable_reason()
    if reason is not None:
        message = (
            f"PostgreSQL NOT TESTED: no server at {pg.MAINTENANCE_DSN} ({reason}); start it "
            "(pg_ctlcluster <version> main start) or set CALLBRIDGE_TEST_PG"
        )
        _skipped_pg.append(message)
        pytest.skip(message)


@pytest.fixture
async def pg_dsn() -> AsyncIterator[str]:
    """The DSN of a fresh, empty PostgreSQL database (dropped after the test)."""
    await require_postgres()
    async with pg.fresh_database() as dsn:
        yield dsn


@pytest.fixture(params=["sqlite", "postgresql"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "sqlite":
        yield _sqlite_backend(tmp_path / "state" / "bridge.db")
        return
    await require_postgres()
    async with pg.fresh_database() as dsn:
        yield _postgres_backend(dsn)


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[CountingStore]:
    opened = backend.new_store()
    await opened.open()
    yield opened
    await opened.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _skipped_pg:
        terminalreporter.section("POSTGRESQL STORE NOT TESTED", sep="!", red=True, bold=True)
        terminalreporter.line(
            f"{len(_skipped_pg)} PostgreSQL store tests skipped: {_skipped_pg[0]}", red=True
        )
