"""SQLite implementation of :class:`bridge.store.Store` (one instance, one file).

Threads: the stdlib ``sqlite3`` driver blocks, so every statement runs on one of two
single-thread executors: a *writer* that owns the only write connection, and a *reader*
with its own connection (WAL lets it read beside the writer). The event loop never blocks.
Delivery's small reads of its due work run on the writer, between its batches: they follow
delivery's own writes closely, and only the writer's page cache survives a commit.

Group commit (bridge/store/sqlite_writer.py): :meth:`SqliteStore.add_event` queues the event
and waits; the writer thread takes everything queued (up to ``batch_max``) and stores the
whole batch in one transaction, so concurrent webhooks share one fsync, then takes the next
batch at once (it hands results to the event loop and never waits for it).
``synchronous=FULL``: once ``add_event`` returns, the event survives a power loss. If the
transaction fails every waiter of that batch gets :class:`StoreError` (the webhook answers
503, the provider retries) and the next batch is tried afresh.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

import msgspec
import structlog

from bridge.store import CorruptData, StoreError
from bridge.store import sqlite_cases as cases
from bridge.store import sqlite_outbox as outbox
from bridge.store import sqlite_sql as sql
from bridge.store.front import Op, StoreFront
from bridge.store.health import StoreBackoff
from bridge.store.migrate import apply_sqlite, load
from bridge.store.sqlite_writer import GroupCommit, snapshot

T = TypeVar("T")
log = structlog.get_logger("bridge.store.sqlite")


MIN_SQLITE: Final = (3, 35, 0)
# What the WAL file is cut back to once a checkpoint has copied it all and writing starts
# again at its beginning. SQLite never shrinks it otherwise: a burst that outpaces the
# checkpoints (a 20,000-body flood made 158 MiB) would keep its peak size on disk for good.
WAL_SIZE_LIMIT: Final = 64 * 1024 * 1024


_State = Literal["new", "open", "closing", "closed"]


class SqliteStore(StoreFront):
    """The store in one SQLite file (created with its parent directory if missing)."""

    _sql = sql
    _outbox = outbox
    _cases = cases

    def __init__(
        self,
        path: Path,
        *,
        batch_max: int = 512,
        busy_timeout: float = 5.0,
        purge_chunk: int = 200,
        checkpoint_every: float = 0.5,
    ) -> None:
        if batch_max < 1 or purge_chunk < 1:
            raise ValueError("batch_max and purge_chunk must be at least 1")
        self.path = path
        self._group = GroupCommit(str(path), batch_max)
        self._checkpoint_every = checkpoint_every
        # Set: something was committed since the last checkpoint that copied the whole WAL.
        self._uncheckpointed = asyncio.Event()
        self._group.on_commit = self._uncheckpointed.set
        self._busy_ms = int(busy_timeout * 1000)
        self._purge_chunk = purge_chunk
        self._state: _State = "new"
        self._writer: ThreadPoolExecutor | None = None
        self._reader: ThreadPoolExecutor | None = None
        self._wconn: sqlite3.Connection | None = None  # used only on the writer thread
        self._rconn: sqlite3.Connection | None = None  # used only on the reader thread
        self._writer_done: asyncio.Future[None] | None = None
        self._checkpointer: asyncio.Task[None] | None = None
        self._leader = False
        self._not_leader = asyncio.Event()  # set: leadership_lost returns
        self._not_leader.set()

    @property
    def commits(self) -> int:
        """Write transactions committed (group commit makes this fewer than the writes)."""
        return self._group.commits

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
        self._writer_done = loop.run_in_executor(writer, self._group.run, self._wconn, loop)
        self._uncheckpointed.set()  # the WAL may hold an earlier run's writes
        self._checkpointer = asyncio.create_task(
            self._checkpoint_loop(), name="sqlite-store-checkpoint"
        )
        self._state = "open"

    async def close(self) -> None:
        """Store everything already queued, then release connections and threads."""
        if self._state != "open":
            return
        self._state = "closing"
        if self._checkpointer is not None:
            self._checkpointer.cancel()
            await asyncio.gather(self._checkpointer, return_exceptions=True)
            self._checkpointer = None
        assert self._writer_done is not None
        assert self._writer is not None
        assert self._reader is not None
        self._group.stop()
        await self._writer_done
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._writer, self._close_writer_conn)
        await loop.run_in_executor(self._reader, self._close_reader_conn)
        self._writer.shutdown()
        self._reader.shutdown()
        await self.release_leadership()
        self._state = "closed"

    async def ping(self) -> None:
        query = "SELECT max(version) FROM schema_migrations"
        await self._read(lambda c: c.execute(query).fetchone())

    # -- leadership (one SQLite file has one instance: it always leads) -------------------------

    async def acquire_leadership(self) -> bool:
        self._executor(self._writer)  # raises when closed
        if not self._leader:
            self._leader = True
            self._not_leader = asyncio.Event()
        return True

    async def leadership_lost(self) -> None:
        """Returns only once leadership is released or the store closed."""
        await self._not_leader.wait()

    async def release_leadership(self) -> None:
        self._leader = False
        self._not_leader.set()

    # -- how operations run (bridge/store/front.py) ----------------------------------------

    async def _write_event(self, op: Op) -> Any:
        return await self._write(op, durable=True)

    async def _write_derived(self, op: Op) -> Any:
        return await self._write(op)

    async def _write_story(self, op: Op) -> Any:
        return await self._write(op)

    async def _write_outbox(self, op: Op, *, durable: bool) -> Any:
        return await self._write(op, durable=durable)

    async def _checkpoint_loop(self) -> None:
        """Copy the WAL into the database off the commit path: at most every
        ``checkpoint_every`` seconds, and only once something was committed since the last
        checkpoint (an idle store is not woken twice a second for nothing).

        The writer runs with ``wal_autocheckpoint = 0``: an automatic checkpoint would run
        inside some webhook's commit and fsync the whole database file there. A PASSIVE
        checkpoint from the reader thread never blocks the writer.
        """
        loop = asyncio.get_running_loop()
        backoff = StoreBackoff("checkpoint")  # logs the failing state once per interval
        while True:
            await asyncio.sleep(max(self._checkpoint_every, backoff.wait()))
            await self._uncheckpointed.wait()
            self._uncheckpointed.clear()
            try:
                assert self._reader is not None
                whole = await loop.run_in_executor(self._reader, self._checkpoint)
            except (sqlite3.Error, StoreError) as err:
                self._uncheckpointed.set()  # still to do, after the backoff
                backoff.failed(err)
            else:
                if not whole:
                    self._uncheckpointed.set()
                backoff.succeeded()

    def _checkpoint(self) -> bool:
        """Whether the checkpoint copied the whole WAL (a reader's snapshot may hold some
        of it back: then the loop tries again, even if nothing else is committed)."""
        conn = self._rconn
        assert conn is not None
        _busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return bool(copied == frames)

    # -- thread plumbing -------------------------------------------------------------------

    def _executor(self, executor: ThreadPoolExecutor | None) -> ThreadPoolExecutor:
        if self._state != "open" or executor is None:
            raise StoreError(f"{self.path}: the store is not open")
        return executor

    async def _write(self, work: Callable[[sqlite3.Connection], T], *, durable: bool = False) -> T:
        """Queue ``work`` for the writer, which runs everything queued in one transaction
        (group commit: concurrent webhooks and background writes share one fsync).

        ``durable``: fsync before returning (accepted events, the mark before a chat post).
        Other writes (dispatch state, the outbox) commit without their own fsync: in WAL mode
        they survive a process crash, and the next durable commit persists them with it; a
        power loss can only lose a tail of them, which the dirty marks let the dispatcher redo.
        """
        self._executor(self._writer)  # raises when closed
        return await self._group.submit(work, durable=durable)

    async def _read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        executor = self._executor(self._reader)
        loop = asyncio.get_running_loop()
        return await self._reading(loop.run_in_executor(executor, self._snapshot, work))

    async def _read_outbox(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """On the write connection, between the writer's batches (``GroupCommit.read``):
        delivery reads a few rows right after each of its writes, and the reader's
        connection would have to read every page of them again after each commit."""
        self._executor(self._writer)  # raises when closed
        return await self._reading(self._group.read(work))

    async def _reading(self, read: Awaitable[T]) -> T:
        """The result of a read, its errors as the store's."""
        try:
            return await read
        except sqlite3.Error as err:
            raise StoreError(f"could not read the store {self.path}: {err}") from err
        except (msgspec.DecodeError, msgspec.ValidationError) as err:
            raise CorruptData(f"{self.path}: a stored event cannot be decoded: {err}") from err

    def _snapshot(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work`` on the reader's connection, in one read transaction."""
        conn = self._rconn
        assert conn is not None
        return snapshot(conn, work)

    def _connect(self, reader: bool) -> sqlite3.Connection:
        if sqlite3.sqlite_version_info < MIN_SQLITE:
            raise StoreError(
                f"the SQLite library of this Python is {sqlite3.sqlite_version}; callbridge "
                f"needs {'.'.join(map(str, MIN_SQLITE))} or newer (RETURNING, generated "
                "columns): use a newer Python or OS, or a postgresql:// store"
            )
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
            conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
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
            conn.execute("PRAGMA wal_autocheckpoint = 0")  # see _checkpoint_loop
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
