"""The SQLite group commit's scheduling: durable writes first, bounded background batches,
nothing submitted before close() left behind."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from bridge.store import StoreError
from bridge.store.sqlite import SqliteStore
from bridge.store.sqlite_writer import GroupCommit


async def test_durable_writes_go_first_and_background_batches_are_bounded(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "bridge.db")
    store._group.background_max = 4
    await store.open()
    ran: list[tuple[str, int]] = []  # (write, the transaction it ran in)

    def write(name: str) -> Callable[[sqlite3.Connection], str]:
        def work(conn: sqlite3.Connection) -> str:
            ran.append((name, store.commits))
            return name

        return work

    try:
        # Submitted in one turn of the event loop: the writer gets them all at once, the
        # ten background writes first.
        results = await asyncio.gather(
            *(store._write(write(f"bg{n}")) for n in range(10)),
            store._write(write("durable-a"), durable=True),
            store._write(write("durable-b"), durable=True),
        )
    finally:
        await store.close()

    assert sorted(results) == sorted([*(f"bg{n}" for n in range(10)), "durable-a", "durable-b"])
    first = min(commit for _name, commit in ran)
    assert [name for name, commit in ran if commit == first][:2] == ["durable-a", "durable-b"]
    background = [(name, commit) for name, commit in ran if name.startswith("bg")]
    assert [name for name, _commit in background] == [f"bg{n}" for n in range(10)]  # in order
    per_commit = [sum(1 for _n, c in background if c == commit) for commit in {c for _, c in ran}]
    assert max(per_commit) == 4
    assert len(per_commit) == 3  # 10 background writes, at most 4 per transaction


async def test_a_flood_of_events_never_starves_background_writes(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "bridge.db", batch_max=2)
    await store.open()
    ran: list[tuple[str, int]] = []

    def write(name: str) -> Callable[[sqlite3.Connection], None]:
        def work(conn: sqlite3.Connection) -> None:
            ran.append((name, store.commits))

        return work

    try:
        await asyncio.gather(
            store._write(write("background")),
            *(store._write(write(f"durable{n}"), durable=True) for n in range(6)),
        )
    finally:
        await store.close()
    first = min(commit for _name, commit in ran)
    assert [name for name, commit in ran if commit == first] == [
        "durable0",
        "durable1",
        "background",
    ]


async def test_stop_first_hands_over_what_was_submitted(tmp_path: Path) -> None:
    """A write submitted in the same turn of the loop as stop() (not yet handed to the
    writer thread) is still stored before the writer returns."""
    loop = asyncio.get_running_loop()
    conn = sqlite3.connect(tmp_path / "x.db", isolation_level=None, check_same_thread=False)
    conn.execute("CREATE TABLE t (x INTEGER)")
    group = GroupCommit("x.db", batch_max=8)

    def insert(c: sqlite3.Connection) -> int:
        return c.execute("INSERT INTO t VALUES (1) RETURNING x").fetchone()[0]

    try:
        late = asyncio.create_task(group.submit(insert, durable=True))
        await asyncio.sleep(0)  # one turn of the loop (not a wait): the write is submitted,
        assert not late.done()  # its hand-over to the writer thread is scheduled, not run
        group.stop()
        await loop.run_in_executor(None, group.run, conn, loop)
        assert await asyncio.wait_for(late, 10) == 1
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (1,)
    finally:
        conn.close()


@pytest.mark.parametrize(("batch_max", "background_max"), [(0, 1), (1, 0)])
def test_group_commit_refuses_empty_batches(batch_max: int, background_max: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        GroupCommit("x.db", batch_max, background_max)


async def test_delivery_reads_run_on_the_write_connection_between_batches(
    tmp_path: Path,
) -> None:
    """``GroupCommit.read``: a read submitted after a write has committed sees it, runs on the
    writer's own connection (whose page cache its commits keep valid) outside any write
    transaction, and a failing read fails only its reader: the next writes go on."""
    store = SqliteStore(tmp_path / "bridge.db")
    await store.open()
    make = "CREATE TABLE t (n INTEGER)"

    def seen(conn: sqlite3.Connection) -> tuple[int, bool, bool]:
        (count,) = conn.execute("SELECT count(*) FROM t").fetchone()
        return count, conn is store._wconn, conn.in_transaction

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("SELECT * FROM no_such_table")

    try:
        await store._write(lambda conn: conn.execute(make))
        await store._write(lambda conn: conn.execute("INSERT INTO t VALUES (1)"), durable=True)
        assert await store._group.read(seen) == (1, True, True)  # its own read transaction
        with pytest.raises(sqlite3.OperationalError, match="no_such_table"):
            await store._group.read(broken)
        await store._write(lambda conn: conn.execute("INSERT INTO t VALUES (2)"))
        assert await store._group.read(seen) == (2, True, True)
        with pytest.raises(StoreError, match="could not read the store"):
            await store._read_outbox(broken)  # as the store's reads say it
    finally:
        await store.close()
