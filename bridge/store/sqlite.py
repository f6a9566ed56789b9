"""SQLite implementation of :class:`bridge.store.Store` (one instance, one file).

Threads: the stdlib ``sqlite3`` driver blocks, so every statement runs on one of two
single-thread executors: a *writer* that owns the only write connection, and a *reader*
with its own connection (WAL lets it read beside the writer). The event loop never blocks.

Group commit: :meth:`SqliteStore.add_event` queues the event and waits; one writer task
takes everything queued (up to ``batch_max``) and stores the whole batch in one transaction
on the writer thread, so concurrent webhooks share one fsync. ``synchronous=FULL``: once
``add_event`` returns, the event survives a power loss. If the transaction fails every
waiter of that batch gets :class:`StoreError` (the webhook answers 503, the provider
retries) and the next batch is tried afresh.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Final, Literal, TypeVar

import msgspec
import structlog

from bridge.events import Event, decode_stored, encode_event
from bridge.store import Added, StoreError, Story
from bridge.store.migrate import apply_sqlite, load

T = TypeVar("T")
log = structlog.get_logger("bridge.store.sqlite")

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)


def to_us(value: datetime) -> int:
    """Microseconds since the epoch (UTC); naive datetimes are a programming error."""
    if value.utcoffset() is None:
        raise ValueError(f"expected a timezone-aware datetime, got {value.isoformat()}")
    return (value - _EPOCH) // _MICROSECOND


def from_us(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


@dataclass(frozen=True, slots=True)
class _Row:
    """What the writer thread needs of one event (encoded on the loop, not in the thread)."""

    call_id: str
    merged_id: str | None
    status: str
    timestamp_us: int
    received_us: int
    dedupe_key: str
    body: bytes


@dataclass(frozen=True, slots=True)
class _Pending:
    row: _Row
    future: asyncio.Future[Added]


_State = Literal["new", "open", "closing", "closed"]


class SqliteStore:
    """The store in one SQLite file (created with its parent directory if missing)."""

    def __init__(
        self,
        path: Path,
        *,
        batch_max: int = 512,
        busy_timeout: float = 5.0,
        purge_chunk: int = 200,
    ) -> None:
        if batch_max < 1 or purge_chunk < 1:
            raise ValueError("batch_max and purge_chunk must be at least 1")
        self.path = path
        self.commits = 0  # write transactions committed (group commit makes this < events)
        self._batch_max = batch_max
        self._busy_ms = int(busy_timeout * 1000)
        self._purge_chunk = purge_chunk
        self._state: _State = "new"
        self._writer: ThreadPoolExecutor | None = None
        self._reader: ThreadPoolExecutor | None = None
        self._wconn: sqlite3.Connection | None = None  # used only on the writer thread
        self._rconn: sqlite3.Connection | None = None  # used only on the reader thread
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        if self._state in ("open", "closing"):
            return
        loop = asyncio.get_running_loop()
        writer = ThreadPoolExecutor(1, thread_name_prefix="callbridge-sqlite-writer")
        reader = ThreadPoolExecutor(1, thread_name_prefix="callbridge-sqlite-reader")
        try:
            self._wconn = await loop.run_in_executor(writer, self._connect_writer)
            self._rconn = await loop.run_in_executor(reader, self._connect, True)
        except BaseException:
            await loop.run_in_executor(writer, self._close_writer_conn)
            await loop.run_in_executor(reader, self._close_reader_conn)
            writer.shutdown()
            reader.shutdown()
            raise
        self._writer, self._reader = writer, reader
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._write_loop(), name="sqlite-store-writer")
        self._state = "open"

    async def close(self) -> None:
        """Store everything already queued, then release connections and threads."""
        if self._state != "open":
            return
        self._state = "closing"
        assert self._task is not None
        assert self._writer is not None
        assert self._reader is not None
        self._queue.put_nowait(None)
        await self._task
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._writer, self._close_writer_conn)
        await loop.run_in_executor(self._reader, self._close_reader_conn)
        self._writer.shutdown()
        self._reader.shutdown()
        self._state = "closed"

    async def ping(self) -> None:
        sql = "SELECT max(version) FROM schema_migrations"
        await self._read(lambda c: c.execute(sql).fetchone())

    # -- writes ----------------------------------------------------------------------------

    async def add_event(self, event: Event, received_at: datetime) -> Added:
        row = _Row(
            call_id=event.call_id,
            merged_id=event.merged_id,
            status=event.status,
            timestamp_us=to_us(event.timestamp),
            received_us=to_us(received_at),
            dedupe_key=event.dedupe_key(),
            body=encode_event(event),
        )
        self._executor(self._writer)  # raises when closed
        future: asyncio.Future[Added] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(row, future))
        return await future

    async def save_state(
        self,
        story_id: str,
        *,
        upto_seq: int,
        digest: str,
        ended_at: datetime | None,
        last_event_at: datetime,
    ) -> bool:
        work = partial(
            _save_state,
            story_id=story_id,
            upto_seq=upto_seq,
            digest=digest,
            ended_us=None if ended_at is None else to_us(ended_at),
            last_event_us=to_us(last_event_at),
        )
        return await self._write(work)

    async def purge(self, ended_before: datetime) -> int:
        """Delete ended stories in chunks (one short transaction each); return how many."""
        cutoff, total = to_us(ended_before), 0
        while True:
            done = await self._write(partial(_purge_chunk, cutoff=cutoff, n=self._purge_chunk))
            total += done
            if done < self._purge_chunk:
                return total

    # -- reads -----------------------------------------------------------------------------

    async def resolve(self, call_id: str) -> str | None:
        return await self._read(lambda c: _story_of(c, call_id))

    async def story(self, story_id: str) -> Story | None:
        return await self._read(lambda c: _read_story(c, story_id))

    async def dirty_stories(self, limit: int = 1000) -> list[str]:
        sql = "SELECT story_id FROM stories WHERE dirty = 1 ORDER BY dirty_seq LIMIT ?"
        return await self._read(lambda c: [r[0] for r in c.execute(sql, (limit,))])

    async def open_stories(self, last_event_before: datetime, limit: int = 1000) -> list[str]:
        sql = (
            "SELECT story_id FROM stories WHERE ended_us IS NULL AND last_event_us < ?"
            " ORDER BY last_event_us LIMIT ?"
        )
        args = (to_us(last_event_before), limit)
        return await self._read(lambda c: [r[0] for r in c.execute(sql, args)])

    async def count_open(self) -> int:
        sql = "SELECT count(*) FROM stories WHERE ended_us IS NULL"
        return await self._read(lambda c: int(c.execute(sql).fetchone()[0]))

    # -- group commit ----------------------------------------------------------------------

    async def _write_loop(self) -> None:
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self._batch_max:
                try:
                    item = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            await self._commit_batch(batch)

    async def _commit_batch(self, batch: list[_Pending]) -> None:
        rows = [p.row for p in batch]
        try:
            results = await self._write(lambda c: [_add(c, row) for row in rows])
        except asyncio.CancelledError:
            for p in batch:
                if not p.future.done():
                    p.future.set_exception(StoreError(f"{self.path}: store is shutting down"))
            raise
        except Exception as err:  # never let one bad batch stop the writer
            log.warning(
                "store.batch_failed", path=str(self.path), events=len(batch), error=str(err)
            )
            message = str(err) if isinstance(err, StoreError) else f"{self.path}: {err!r}"
            for p in batch:
                if not p.future.done():
                    p.future.set_exception(StoreError(message))
            return
        for p, added in zip(batch, results, strict=True):
            if not p.future.done():
                p.future.set_result(added)

    # -- thread plumbing -------------------------------------------------------------------

    def _executor(self, executor: ThreadPoolExecutor | None) -> ThreadPoolExecutor:
        if self._state != "open" or executor is None:
            raise StoreError(f"{self.path}: the store is not open")
        return executor

    async def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` in one write transaction on the writer thread."""
        executor = self._executor(self._writer)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(executor, self._transaction, work)
        except sqlite3.Error as err:
            raise StoreError(f"could not write to the store {self.path}: {err}") from err

    def _transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._wconn
        assert conn is not None
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = work(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error as err:  # the original error matters more
                    log.warning("store.rollback_failed", path=str(self.path), error=str(err))
            raise
        self.commits += 1
        return result

    async def _read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        executor = self._executor(self._reader)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(executor, self._snapshot, work)
        except sqlite3.Error as err:
            raise StoreError(f"could not read the store {self.path}: {err}") from err
        except (msgspec.DecodeError, msgspec.ValidationError) as err:
            raise StoreError(f"{self.path}: a stored event cannot be decoded: {err}") from err

    def _snapshot(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` in one read transaction, so several queries see one state."""
        conn = self._rconn
        assert conn is not None
        conn.execute("BEGIN")
        try:
            return work(conn)
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")

    def _connect(self, reader: bool) -> sqlite3.Connection:
        try:
            if not reader:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=self._busy_ms / 1000, isolation_level=None)
        except (OSError, sqlite3.Error) as err:
            raise StoreError(
                f"cannot open the store {self.path}: {err}; check that the directory "
                "exists and the service user may write to it"
            ) from err
        try:
            conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            if reader:
                conn.execute("PRAGMA query_only = ON")
        except sqlite3.Error as err:
            conn.close()
            raise StoreError(f"cannot use the store {self.path}: {err}") from err
        return conn

    def _connect_writer(self) -> sqlite3.Connection:
        conn = self._connect(False)
        try:
            self._enable_wal(conn)
            apply_sqlite(conn, load("sqlite"), where=str(self.path))
        except sqlite3.Error as err:
            conn.close()
            raise StoreError(f"cannot prepare the store {self.path}: {err}") from err
        except BaseException:
            conn.close()
            raise
        return conn

    def _enable_wal(self, conn: sqlite3.Connection) -> None:
        """Switch to WAL (persistent). SQLite does not call the busy handler for this
        switch, so when another process is opening the same new file at this moment,
        retry until the busy timeout (on the writer thread, never on the event loop)."""
        deadline = time.monotonic() + self._busy_ms / 1000
        while True:
            try:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                break
            except sqlite3.OperationalError as err:
                if err.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        if mode != "wal":
            raise StoreError(
                f"{self.path}: SQLite refused WAL mode (journal_mode={mode}); "
                "put the store on a local filesystem"
            )

    def _close_writer_conn(self) -> None:
        if self._wconn is not None:
            self._wconn.close()
            self._wconn = None

    def _close_reader_conn(self) -> None:
        if self._rconn is not None:
            self._rconn.close()
            self._rconn = None


# -- statements (run on the writer or reader thread) -----------------------------------------


def _story_of(conn: sqlite3.Connection, call_id: str) -> str | None:
    row = conn.execute("SELECT story_id FROM links WHERE call_id = ?", (call_id,)).fetchone()
    return None if row is None else str(row[0])


def _link(conn: sqlite3.Connection, call_id: str, story_id: str, seq: int) -> None:
    conn.execute(
        "INSERT INTO links (call_id, story_id, linked_seq) VALUES (?, ?, ?)",
        (call_id, story_id, seq),
    )


def _add(conn: sqlite3.Connection, row: _Row) -> Added:
    hit = conn.execute(
        "SELECT seq, call_id FROM events WHERE dedupe_key = ?", (row.dedupe_key,)
    ).fetchone()
    if hit is not None:
        return Added("duplicate", _story_of(conn, hit[1]) or hit[1], int(hit[0]))
    seq = int(
        conn.execute(
            "INSERT INTO events (dedupe_key, call_id, status, timestamp_us, received_us, body)"
            " VALUES (?, ?, ?, ?, ?, ?) RETURNING seq",
            (row.dedupe_key, row.call_id, row.status, row.timestamp_us, row.received_us, row.body),
        ).fetchone()[0]
    )
    story_id = _story_of(conn, row.call_id)
    if story_id is None:
        story_id = _story_of(conn, row.merged_id) if row.merged_id else None
        if story_id is None:
            story_id = row.call_id
            conn.execute(
                "INSERT INTO stories (story_id, first_seq, first_received_us, max_seq,"
                " last_event_us, dirty, dirty_seq) VALUES (?, ?, ?, ?, ?, 1, ?)",
                (story_id, seq, row.received_us, seq, row.timestamp_us, seq),
            )
        _link(conn, row.call_id, story_id, seq)
    merged_from = None
    if row.merged_id is not None:
        other = _story_of(conn, row.merged_id)
        if other is None:
            _link(conn, row.merged_id, story_id, seq)
        elif other != story_id:
            story_id, merged_from = _merge(conn, story_id, other, seq)
    conn.execute(
        "UPDATE stories SET max_seq = max(max_seq, ?), last_event_us = max(last_event_us, ?),"
        " first_received_us = min(first_received_us, ?),"
        " dirty_seq = CASE WHEN dirty = 1 THEN dirty_seq ELSE ? END, dirty = 1"
        " WHERE story_id = ?",
        (seq, row.timestamp_us, row.received_us, seq, story_id),
    )
    return Added("accepted", story_id, seq, merged_from)


def _merge(conn: sqlite3.Connection, a: str, b: str, seq: int) -> tuple[str, str]:
    """Join stories ``a`` and ``b``: the one first seen survives. Returns (survivor, absorbed)."""
    cols = "story_id, first_seq, first_received_us, max_seq, last_event_us, dirty, dirty_seq"
    rows = conn.execute(
        f"SELECT {cols} FROM stories WHERE story_id IN (?, ?) ORDER BY first_seq",  # noqa: S608
        (a, b),
    ).fetchall()
    keep, gone = rows
    dirty_since = [r[6] for r in rows if r[5] == 1 and r[6] is not None] + [seq]
    conn.execute("UPDATE links SET story_id = ? WHERE story_id = ?", (keep[0], gone[0]))
    conn.execute(
        "UPDATE stories SET first_received_us = ?, max_seq = ?, last_event_us = ?,"
        " dirty = 1, dirty_seq = ? WHERE story_id = ?",
        (
            min(keep[2], gone[2]),
            max(keep[3], gone[3]),
            max(keep[4], gone[4]),
            min(dirty_since),
            keep[0],
        ),
    )
    conn.execute("DELETE FROM stories WHERE story_id = ?", (gone[0],))
    return str(keep[0]), str(gone[0])


def _save_state(
    conn: sqlite3.Connection,
    *,
    story_id: str,
    upto_seq: int,
    digest: str,
    ended_us: int | None,
    last_event_us: int,
) -> bool:
    resolved = _story_of(conn, story_id)
    if resolved is None:  # purged meanwhile: nothing is left to emit
        return True
    row = conn.execute(
        "UPDATE stories SET digest = ?, ended_us = ?, last_event_us = max(last_event_us, ?),"
        " dirty = CASE WHEN max_seq <= ? THEN 0 ELSE dirty END,"
        " dirty_seq = CASE WHEN max_seq <= ? THEN NULL ELSE dirty_seq END"
        " WHERE story_id = ? RETURNING dirty",
        (digest, ended_us, last_event_us, upto_seq, upto_seq, resolved),
    ).fetchone()
    return row is None or row[0] == 0


def _purge_chunk(conn: sqlite3.Connection, *, cutoff: int, n: int) -> int:
    ids = [
        r[0]
        for r in conn.execute(
            "SELECT story_id FROM stories WHERE ended_us < ? ORDER BY ended_us LIMIT ?",
            (cutoff, n),
        )
    ]
    if ids:
        marks = ", ".join("?" * len(ids))
        conn.execute(
            "DELETE FROM events WHERE call_id IN"  # noqa: S608 (only placeholders)
            f" (SELECT call_id FROM links WHERE story_id IN ({marks}))",
            ids,
        )
        conn.execute(f"DELETE FROM links WHERE story_id IN ({marks})", ids)  # noqa: S608
        conn.execute(f"DELETE FROM stories WHERE story_id IN ({marks})", ids)  # noqa: S608
    return len(ids)


def _read_story(conn: sqlite3.Connection, call_id: str) -> Story | None:
    story_id = _story_of(conn, call_id)
    if story_id is None:
        return None
    row = conn.execute(
        "SELECT max_seq, first_received_us, digest, ended_us FROM stories WHERE story_id = ?",
        (story_id,),
    ).fetchone()
    if row is None:
        return None
    call_ids = conn.execute(
        "SELECT call_id FROM links WHERE story_id = ? ORDER BY linked_seq, call_id", (story_id,)
    ).fetchall()
    bodies = conn.execute(
        "SELECT e.body FROM events AS e JOIN links AS l ON l.call_id = e.call_id"
        " WHERE l.story_id = ? ORDER BY e.seq",
        (story_id,),
    ).fetchall()
    return Story(
        story_id=story_id,
        call_ids=tuple(str(r[0]) for r in call_ids),
        events=tuple(decode_stored(r[0]) for r in bodies),
        max_seq=int(row[0]),
        first_stored_at=from_us(row[1]),
        digest=row[2],
        ended_at=None if row[3] is None else from_us(row[3]),
    )
