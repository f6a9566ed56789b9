"""`callbridge migrate`, run as the real command line, on SQLite and PostgreSQL: applies what is
pending and says so, is idempotent, takes the store like `serve` does, and fails with one
clear line (never a password) and exit status 1 when the database cannot be reached."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest

from tests.store import pg

pytestmark = pytest.mark.slow

# The packaged migrations, named by hand (bridge/store/migrations/<dialect>/).
ALL_APPLIED = (
    "applied 0001_initial.sql, 0002_outbox.sql, 0003_due_index.sql, 0004_rules_and_received.sql,"
    " 0005_cases.sql, 0006_retractions_first.sql"
)


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


async def migrate(*args: str, env: dict[str, str] | None = None) -> Result:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CALLBRIDGE_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bridge",
        "migrate",
        *args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**clean, **(env or {})},
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path.as_posix().lstrip('/')}"


def sqlite_versions(path: Path) -> list[int]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT version FROM schema_migrations ORDER BY version")
        return [int(v) for (v,) in rows]
    finally:
        conn.close()


@pytest.fixture
async def pg_dsn() -> AsyncIterator[str]:
    reason = await pg.unreachable_reason()
    if reason is not None:
        pytest.skip(
            f"POSTGRESQL NOT TESTED: no server at {pg.MAINTENANCE_DSN} ({reason}); start it "
            "(pg_ctlcluster <version> main start) or set CALLBRIDGE_TEST_PG"
        )
    async with pg.fresh_database() as dsn:
        yield dsn


# -- SQLite ----------------------------------------------------------------------------------


async def test_sqlite_new_file_gets_every_migration_then_is_up_to_date(tmp_path: Path) -> None:
    db = tmp_path / "state" / "bridge.db"  # the directory does not exist yet either
    url = sqlite_url(db)

    first = await migrate("--store", url)
    assert first == Result(0, f"{url}: {ALL_APPLIED}\n", "")
    assert sqlite_versions(db) == [1, 2, 3, 4, 5, 6]

    again = await migrate("--store", url)
    assert again == Result(0, f"{url}: up to date\n", "")
    assert sqlite_versions(db) == [1, 2, 3, 4, 5, 6]


async def test_sqlite_applies_only_what_is_pending(tmp_path: Path) -> None:
    # A database at version 1 (as an older callbridge left it): only 0002 is applied.
    db = tmp_path / "bridge.db"
    source = Path(__file__).parent.parent / "bridge/store/migrations/sqlite/0001_initial.sql"
    conn = sqlite3.connect(db)
    conn.executescript(source.read_text(encoding="utf-8"))
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations"
        " (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    conn.execute("INSERT INTO schema_migrations VALUES (1, '2026-01-01T00:00:00+00:00')")
    conn.commit()
    conn.close()

    result = await migrate("--store", sqlite_url(db))
    applied = (
        "applied 0002_outbox.sql, 0003_due_index.sql, 0004_rules_and_received.sql, 0005_cases.sql,"
        " 0006_retractions_first.sql"
    )
    assert result == Result(0, f"{sqlite_url(db)}: {applied}\n", "")
    assert sqlite_versions(db) == [1, 2, 3, 4, 5, 6]


async def test_store_comes_from_callbridge_store_like_serve(tmp_path: Path) -> None:
    db = tmp_path / "from-env.db"
    result = await migrate(env={"CALLBRIDGE_STORE": sqlite_url(db)})
    assert result.code == 0, result
    assert result.out == f"{sqlite_url(db)}: {ALL_APPLIED}\n"
    assert sqlite_versions(db) == [1, 2, 3, 4, 5, 6]
    # --store wins over the variable, as for serve.
    other = tmp_path / "from-flag.db"
    result = await migrate("--store", sqlite_url(other), env={"CALLBRIDGE_STORE": "bogus"})
    assert result.out == f"{sqlite_url(other)}: {ALL_APPLIED}\n"


async def test_sqlite_that_cannot_be_opened_is_one_clear_line_and_exit_1(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    result = await migrate("--store", sqlite_url(blocker / "bridge.db"))
    assert result.code == 1
    assert result.out == ""
    assert result.err.count("\n") == 1
    assert result.err.startswith(f"callbridge migrate: cannot open the store {blocker}")
    assert "check that the directory exists" in result.err


@pytest.mark.parametrize(
    ("store", "problem"),
    [
        (
            "mysql://u:pw-42@db/cb",
            "--store: expected sqlite:///PATH or postgresql://..., got 'mysql://u:***@db/cb'",
        ),
        (
            "sqlite://u:pw-42@db/cb.db",
            "--store: expected sqlite:///ABSOLUTE/PATH.db, got 'sqlite://u:***@db/cb.db'",
        ),
    ],
)
async def test_invalid_store_url_is_a_settings_error(store: str, problem: str) -> None:
    result = await migrate("--store", store)
    assert result.code == 2
    assert result.err == f"callbridge migrate: {problem}\n"
    assert "pw-42" not in result.out + result.err


# -- PostgreSQL ------------------------------------------------------------------------------


async def versions(dsn: str) -> list[int]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
        return [int(r[0]) for r in rows]
    finally:
        await conn.close()


async def test_postgres_new_database_gets_every_migration_then_is_up_to_date(
    pg_dsn: str,
) -> None:
    first = await migrate("--store", pg_dsn)
    assert first == Result(0, f"{pg_dsn}: {ALL_APPLIED}\n", "")
    assert await versions(pg_dsn) == [1, 2, 3, 4, 5, 6]
    again = await migrate("--store", pg_dsn)
    assert again == Result(0, f"{pg_dsn}: up to date\n", "")


async def test_postgres_migrate_twice_at_once_applies_each_migration_once(pg_dsn: str) -> None:
    results = await asyncio.gather(migrate("--store", pg_dsn), migrate("--store", pg_dsn))
    assert [r.code for r in results] == [0, 0]
    outputs = sorted(r.out for r in results)
    # One applied everything, the other waited for it and found nothing to do; or they
    # split the work. Either way, together they applied each file exactly once.
    applied = [
        name
        for out in outputs
        if ": applied " in out
        for name in out.split(": applied ", 1)[1].strip().split(", ")
    ]
    assert sorted(applied) == [
        "0001_initial.sql",
        "0002_outbox.sql",
        "0003_due_index.sql",
        "0004_rules_and_received.sql",
        "0005_cases.sql",
        "0006_retractions_first.sql",
    ]
    assert await versions(pg_dsn) == [1, 2, 3, 4, 5, 6]


async def test_postgres_unreachable_is_one_line_without_the_password() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()  # the port is free now: nothing listens there
    result = await migrate("--store", f"postgresql://bridge:hunter2@127.0.0.1:{port}/cb")
    assert result.code == 1
    assert result.out == ""
    assert result.err.count("\n") == 1
    assert result.err.startswith(
        f"callbridge migrate: cannot connect to the PostgreSQL store "
        f"postgresql://bridge:***@127.0.0.1:{port}/cb: "
    )
    assert "check that the server is running and reachable" in result.err
    assert "hunter2" not in result.err


async def test_postgres_missing_database_is_a_clear_error(pg_dsn: str) -> None:
    missing = pg_dsn.rsplit("/", 1)[0] + "/callbridge_no_such_database"
    result = await migrate("--store", missing)
    assert result.code == 1
    assert 'database "callbridge_no_such_database" does not exist' in result.err
    assert result.err.count("\n") == 1
