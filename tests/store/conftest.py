"""The ``store`` fixture, parametrised over backends.

Every test in test_contract.py runs once per backend. A backend is described by a
:class:`Backend`: how to make a (not yet opened) store on its database, how to hold the
database's write lock from outside (to make a write transaction fail honestly), and how to
stamp a schema version onto the database. Adding PostgreSQL means adding one param here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pytest

from bridge.store import Store
from bridge.store.sqlite import SqliteStore

# How long a blocked write waits before giving up (kept short so failure tests are fast).
LOCK_WAIT_SECONDS = 0.2


class CountingStore(Store, Protocol):
    commits: int  # write transactions committed


@dataclass(frozen=True)
class Backend:
    name: str
    new_store: Callable[[], CountingStore]  # a fresh instance on the same database
    hold_write_lock: Callable[[], AbstractContextManager[None]]
    stamp_schema_version: Callable[[int], None]


def _sqlite_backend(path: Path) -> Backend:
    def new_store() -> CountingStore:
        return SqliteStore(path, busy_timeout=LOCK_WAIT_SECONDS)

    @contextmanager
    def hold_write_lock() -> Iterator[None]:
        conn = sqlite3.connect(path, isolation_level=None, timeout=10)
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield
            conn.execute("ROLLBACK")
        finally:
            conn.close()

    def stamp_schema_version(version: int) -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                (version, "2030-01-01T00:00:00+00:00"),
            )
        finally:
            conn.close()

    return Backend("sqlite", new_store, hold_write_lock, stamp_schema_version)


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        return _sqlite_backend(tmp_path / "state" / "bridge.db")
    raise AssertionError(f"unknown backend {request.param}")  # pragma: no cover


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[CountingStore]:
    opened = backend.new_store()
    await opened.open()
    yield opened
    await opened.close()
