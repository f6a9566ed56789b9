"""SQLite-only behaviour: file setup, pragmas, threads, chunked purge, migrations."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import pytest

from bridge.store import StoreError
from bridge.store import sqlite as sqlite_module
from bridge.store.migrate import Migration, apply_sqlite, load, load_dir, pending, split_script
from bridge.store.sqlite import SqliteStore
from tests.store import T0, answered, at, created, ended, ringing

RECEIVED = T0 + timedelta(milliseconds=250)


def query(path: Path, sql: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql).fetchall()


async def test_creates_parent_directories_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "var" / "lib" / "callbridge" / "bridge.db"
    store = SqliteStore(path)
    await store.open()
    try:
        assert path.is_file()

        # Private hook, on purpose: synchronous is a per-connection setting that only the
        # writer connection itself can report. Durable writes (accepted events) run FULL.
        def sync(c: sqlite3.Connection) -> int:
            return int(c.execute("PRAGMA synchronous").fetchone()[0])

        assert await store._write(sync, durable=True) == 2  # FULL: survives power loss
        assert await store._write(sync) == 1  # NORMAL: outbox and dispatch bookkeeping
    finally:
        await store.close()
    assert query(path, "PRAGMA journal_mode") == [("wal",)]


async def test_the_wal_is_cut_back_after_a_burst_once_checkpointed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A burst of writes grows the WAL past the limit (lowered here to 128 KiB); once a
    checkpoint has copied it all, the next write starts it again and cuts the file back to
    the limit (or to that write's own frames, if more: one event writes ~45 KiB) instead of
    keeping the burst's size on disk."""
    limit = 128 * 1024
    monkeypatch.setattr(sqlite_module, "WAL_SIZE_LIMIT", limit)
    path = tmp_path / "bridge.db"
    wal = tmp_path / "bridge.db-wal"
    store = SqliteStore(path)
    await store.open()
    try:
        for n in range(100):
            await store.add_event(ringing(f"burst-{n}"), RECEIVED)
        assert wal.stat().st_size > 8 * limit  # the burst: far past the limit
        # Private hook, on purpose: the checkpoint loop runs this after commits.
        await asyncio.get_running_loop().run_in_executor(store._reader, store._checkpoint)
        await store.add_event(ringing("after"), RECEIVED)
        assert wal.stat().st_size <= limit
    finally:
        await store.close()


async def test_checkpoints_follow_commits_and_an_idle_store_is_left_alone(
    tmp_path: Path,
) -> None:
    """The WAL checkpoint runs once after opening (the WAL may hold an earlier run's
    writes), then only after something was committed: an idle store is not woken for
    nothing. A checkpoint a reader's snapshot kept from copying the whole WAL is tried
    again without waiting for a commit."""
    loop = asyncio.get_running_loop()
    every = 0.01
    store = SqliteStore(tmp_path / "bridge.db", checkpoint_every=every)
    calls: list[bool] = []  # what each checkpoint reported: the whole WAL copied
    called = asyncio.Event()
    whole = [True]

    def checkpoint() -> bool:  # on the store's reader thread
        copied = whole[0]
        calls.append(copied)
        loop.call_soon_threadsafe(called.set)
        return copied

    async def next_call(count: int) -> None:
        async with asyncio.timeout(10):
            while len(calls) < count:
                called.clear()
                await called.wait()

    store._checkpoint = checkpoint  # type: ignore[method-assign]  # before the loop's first
    await store.open()
    try:
        await next_call(1)  # after opening
        # Idle: 30 intervals without a commit, and no checkpoint. (The sleep is the idle
        # period under test, not a wait for something to happen.)
        await asyncio.sleep(30 * every)
        assert calls == [True]
        await store.add_event(ringing("c1"), RECEIVED)
        await next_call(2)
        whole[0] = False  # the next one leaves part of the WAL behind ...
        await store.add_event(ringing("c2"), RECEIVED)
        await next_call(3)
        whole[0] = True
        await next_call(4)  # ... so it is tried again with nothing new committed
        assert calls == [True, True, False, True]
    finally:
        await store.close()


async def test_unusable_location_is_a_clear_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the state directory should be")
    store = SqliteStore(blocker / "bridge.db")
    with pytest.raises(StoreError, match=r"cannot open the store .*not-a-directory"):
        await store.open()


async def test_migrations_are_recorded_once(tmp_path: Path) -> None:
    path = tmp_path / "bridge.db"
    for _ in range(2):
        store = SqliteStore(path)
        await store.open()
        await store.close()
    rows = query(path, "SELECT version FROM schema_migrations ORDER BY version")
    assert rows == [(m.version,) for m in load("sqlite")]
    assert rows[0] == (1,)
    tables = {r[0] for r in query(path, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"events", "stories", "links", "schema_migrations"} <= tables


async def test_two_stores_opening_a_fresh_file_at_once(tmp_path: Path) -> None:
    path = tmp_path / "bridge.db"
    stores = [SqliteStore(path), SqliteStore(path)]
    await asyncio.gather(*(s.open() for s in stores))
    for s in stores:
        await s.close()
    assert query(path, "SELECT count(*) FROM schema_migrations") == [(len(load("sqlite")),)]


async def test_reads_and_the_event_loop_run_beside_a_blocked_writer(tmp_path: Path) -> None:
    path = tmp_path / "bridge.db"
    store = SqliteStore(path, busy_timeout=30)
    await store.open()
    try:
        await store.add_event(created("c1"), RECEIVED)
        with closing(sqlite3.connect(path, isolation_level=None)) as other:
            other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
            pending_add = asyncio.create_task(store.add_event(ringing("c1"), RECEIVED))
            await store.ping()
            assert await store.resolve("c1") == "c1"
            assert not pending_add.done()  # the writer waits in its thread, not on the loop
            other.execute("ROLLBACK")
        added = await pending_add
        assert added.status == "accepted"
    finally:
        await store.close()


async def test_locked_database_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bridge.db"
    store = SqliteStore(path, busy_timeout=0.05)
    await store.open()
    try:
        with closing(sqlite3.connect(path, isolation_level=None)) as other:
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(StoreError) as caught:
                await store.add_event(created("c1"), RECEIVED)
            other.execute("ROLLBACK")
        assert str(path) in str(caught.value)
        assert "locked" in str(caught.value)
    finally:
        await store.close()


async def test_batches_are_bounded_by_batch_max(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "bridge.db", batch_max=10)
    await store.open()
    try:
        before = store.commits
        events = [maker(f"c{n}", 1) for n in range(25) for maker in (ringing, answered)]
        await asyncio.gather(*(store.add_event(e, RECEIVED) for e in events))
        assert store.commits - before >= 5  # 50 events, at most 10 per transaction
    finally:
        await store.close()


async def test_a_failing_write_fails_alone_and_leaves_nothing_behind(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "bridge.db")
    await store.open()

    def half_then_fail(conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT INTO stories (story_id, first_seq, first_received_us, max_seq,"
            " last_event_us, dirty) VALUES ('half', 1, 0, 1, 0, 0)"
        )
        conn.execute("INSERT INTO no_such_table VALUES (1)")

    try:
        before = store.commits
        results = await asyncio.gather(
            store.add_event(ringing("c1"), RECEIVED),
            store._write(half_then_fail),
            store.add_event(ringing("c2"), RECEIVED),
            return_exceptions=True,
        )
        assert store.commits - before == 1  # one batch, committed once
    finally:
        await store.close()
    first, failed, last = results
    assert isinstance(failed, StoreError)
    assert "no_such_table" in str(failed)
    assert [getattr(r, "status", r) for r in (first, last)] == ["accepted", "accepted"]
    assert query(tmp_path / "bridge.db", "SELECT story_id FROM stories ORDER BY 1") == [
        ("c1",),
        ("c2",),
    ]


async def test_purge_runs_in_chunks(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "bridge.db", purge_chunk=2)
    await store.open()
    try:
        for n in range(5):
            added = await store.add_event(ended(f"c{n}"), RECEIVED)
            await store.save_state(
                f"c{n}", upto_seq=added.seq, digest="d", ended_at=at(60), last_event_at=at(60)
            )
        before = store.commits
        assert await store.purge(at(3600), now=at(3600)) == 5
        assert store.commits - before == 3  # chunks of 2, 2 and 1
    finally:
        await store.close()
    assert query(tmp_path / "bridge.db", "SELECT count(*) FROM events") == [(0,)]
    assert query(tmp_path / "bridge.db", "SELECT count(*) FROM links") == [(0,)]


# -- migration files and runner ----------------------------------------------------------


def test_load_dir_orders_by_version_and_ignores_other_files(tmp_path: Path) -> None:
    (tmp_path / "0002_more.sql").write_text("CREATE TABLE b (x);\n")
    (tmp_path / "0001_initial.sql").write_text("CREATE TABLE a (x);\n")
    (tmp_path / "README.md").write_text("not a migration")
    found = load_dir(tmp_path)
    assert [(m.version, m.name) for m in found] == [
        (1, "0001_initial.sql"),
        (2, "0002_more.sql"),
    ]


@pytest.mark.parametrize(
    ("names", "problem"),
    [
        (["0001_a.sql", "1_b.sql"], "not named NNNN_name.sql"),
        (["0001_a.sql", "0001_b.sql"], "share version 1"),
        (["0001_a.sql", "0003_c.sql"], "skip version 2"),
    ],
)
def test_load_dir_rejects_broken_numbering(tmp_path: Path, names: list[str], problem: str) -> None:
    for name in names:
        (tmp_path / name).write_text("SELECT 1;\n")
    with pytest.raises(StoreError, match=problem):
        load_dir(tmp_path)


def test_load_dir_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="missing: reinstall callbridge"):
        load_dir(tmp_path / "nope")


def test_pending_message_for_a_newer_database() -> None:
    known = (Migration(1, "0001_a.sql", ""), Migration(2, "0002_b.sql", ""))
    assert pending(known, 1, where="x.db") == (known[1],)
    with pytest.raises(StoreError) as caught:
        pending(known, 5, where="/var/lib/callbridge/bridge.db")
    assert str(caught.value) == (
        "/var/lib/callbridge/bridge.db: database schema version 5 is newer than this "
        "callbridge understands (2); upgrade callbridge or point CALLBRIDGE_STORE at "
        "another database"
    )


def test_split_script_respects_strings_comments_and_triggers() -> None:
    script = (
        "-- leading comment; with a semicolon\n"
        "CREATE TABLE t (x TEXT DEFAULT ';');\n"
        "CREATE TRIGGER t_ins AFTER INSERT ON t BEGIN\n"
        "  UPDATE t SET x = 'a;b' WHERE rowid = new.rowid;\n"
        "END;\n"
        "-- trailing comment\n"
    )
    statements = split_script(script, "0001_t.sql")
    assert len(statements) == 2
    assert statements[1].startswith("CREATE TRIGGER")
    assert statements[1].endswith("END;")
    with pytest.raises(StoreError, match="unterminated statement"):
        split_script("CREATE TABLE t (x);\nCREATE TABLE u (y)\n", "0002_u.sql")


def test_failed_migration_leaves_nothing_behind(tmp_path: Path) -> None:
    good = Migration(1, "0001_good.sql", "CREATE TABLE kept (x);\n")
    bad = Migration(
        2, "0002_bad.sql", "CREATE TABLE partial (x);\nINSERT INTO missing VALUES (1);\n"
    )
    with closing(sqlite3.connect(tmp_path / "m.db", isolation_level=None)) as conn:
        with pytest.raises(sqlite3.OperationalError, match="no such table: missing"):
            apply_sqlite(conn, (good, bad), where="m.db")
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert "kept" in tables
        assert "partial" not in tables
        assert conn.execute("SELECT max(version) FROM schema_migrations").fetchone() == (1,)
        assert not conn.in_transaction


def test_a_store_never_closed_does_not_keep_the_process_alive(tmp_path: Path) -> None:
    # The writer thread waits for work; a program that forgets close() must still exit.
    script = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from bridge.store.sqlite import SqliteStore\n"
        "from tests.store import ringing, T0\n"
        "async def main():\n"
        f"    store = SqliteStore(Path({str(tmp_path / 'b.db')!r}))\n"
        "    await store.open()\n"
        "    await store.add_event(ringing('c1'), T0)\n"
        "asyncio.run(main())\n"
        "print('exited')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parent.parent.parent,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("exited")


async def test_an_old_sqlite_library_is_refused_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 31, 1))
    monkeypatch.setattr(sqlite3, "sqlite_version", "3.31.1")
    store = SqliteStore(tmp_path / "bridge.db")
    with pytest.raises(StoreError) as caught:
        await store.open()
    assert "3.31.1" in str(caught.value)
    assert "3.35.0 or newer" in str(caught.value)
    assert "postgresql://" in str(caught.value)
    assert not (tmp_path / "bridge.db").exists()
