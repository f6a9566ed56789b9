"""PostgreSQL implementation of :class:`bridge.store.Store` (several instances, one database).

Connections: an asyncpg pool (``pool_min``..``pool_max``). When PostgreSQL goes away every
method raises :class:`StoreError` (the webhook answers 503, ``/readyz`` fails); the pool
replaces broken connections on the next use, so recovery needs nothing but the server.

Group commit: as in the SQLite store, :meth:`PostgresStore.add_event` (and the dispatcher's
:meth:`PostgresStore.dispatched`) queue their write and one writer task stores everything
queued (up to ``batch_max``) in one transaction on one connection, committed synchronously
when it holds an event and with ``synchronous_commit = off`` otherwise (dispatch state is
derived from stored events: a lost tail of it leaves stories dirty, and they are folded
again). One failing write fails alone; a failing transaction fails every waiter of the batch
with :class:`StoreError`.

Several instances: every transaction that writes stories or links (an ingest batch,
``save_state``, ``plan``, a purge chunk) first takes one transaction-level advisory lock
(:data:`bridge.store.postgres_sql.WRITE_LOCK`). Writers are therefore serial, exactly like
SQLite's single writer: seq order is commit order, merges and story creation never race,
and a duplicate stored by another instance is found by ``ON CONFLICT (dedupe_key)``.
Batches are short (one round trip per statement on a local network), so the lock costs far
less than row-level locking with deadlock retries would in complexity.

Leadership: the instance that dispatches and delivers holds a session-level advisory lock on
a dedicated connection outside the pool (bridge/store/leader.py).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

import asyncpg  # type: ignore[import-untyped]
import msgspec
import structlog

from bridge.core.urls import without_password
from bridge.store import CorruptData, StoreError
from bridge.store import postgres_cases as cases
from bridge.store import postgres_outbox as outbox
from bridge.store import postgres_sql as sql
from bridge.store.front import Op, StoreFront
from bridge.store.leader import PgLeadership
from bridge.store.migrate import apply_postgres, load
from bridge.store.postgres_sql import DB_ERRORS, failure

if TYPE_CHECKING:
    from asyncpg import Connection, Pool
else:
    Connection = Pool = Any

T = TypeVar("T")
log = structlog.get_logger("bridge.store.postgres")


@dataclass(frozen=True, slots=True)
class _Job:
    """One write waiting for the writer task: run in the next batch's transaction."""

    work: Callable[[Connection], Awaitable[Any]]
    future: asyncio.Future[Any]
    durable: bool


DERIVED_BATCH: Final = 8  # dispatcher writes per transaction (see _write_loop)


class _JobFailed(Exception):
    """A write of a batch run without savepoints failed: run the batch again, isolated."""


_State = Literal["new", "open", "closing", "closed"]


class PostgresStore(StoreFront):
    """The store in one PostgreSQL database, shared by any number of instances.

    ``lock_timeout``: how long a statement waits for a row or table lock before it fails.
    ``leader_ping``: how often the leader checks its lock connection; together with the
    server-side TCP keepalives (``keepalive_idle`` s idle, then 3 probes ``leader_ping`` s
    apart) it bounds the takeover time when a leader's host or network dies. A leader
    process that exits (even SIGKILL) closes its socket: the lock is free at once.
    """

    _sql = sql
    _outbox = outbox
    _cases = cases

    def __init__(
        self,
        dsn: str,
        *,
        pool_min: int = 1,
        pool_max: int = 10,
        batch_max: int = 512,
        purge_chunk: int = 200,
        connect_timeout: float = 5.0,
        command_timeout: float = 30.0,
        lock_timeout: float = 10.0,
        leader_ping: float = 2.0,
        keepalive_idle: int = 5,
    ) -> None:
        if batch_max < 1 or purge_chunk < 1 or pool_min < 1 or pool_max < pool_min:
            raise ValueError("batch_max, purge_chunk, pool_min >= 1 and pool_max >= pool_min")
        self.dsn = dsn
        self.where = without_password(dsn)
        self.commits = 0  # write transactions committed (group commit makes this < events)
        self._pool_min, self._pool_max = pool_min, pool_max
        self._batch_max = batch_max
        self._purge_chunk = purge_chunk
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        self._lock_ms = int(lock_timeout * 1000)
        self._state: _State = "new"
        self._pool: Pool | None = None
        self._queue: asyncio.Queue[_Job | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._leadership = PgLeadership(
            dsn,
            connect_timeout=connect_timeout,
            ping_every=leader_ping,
            keepalive_idle=keepalive_idle,
        )

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        if self._state in ("open", "closing"):
            return
        try:
            pool = await asyncpg.create_pool(
                self.dsn,
                min_size=self._pool_min,
                max_size=self._pool_max,
                timeout=self._connect_timeout,
                command_timeout=self._command_timeout,
                server_settings={
                    "application_name": "callbridge",
                    "lock_timeout": f"{self._lock_ms}ms",
                },
            )
        except DB_ERRORS as err:
            raise self._error("cannot connect to", err) from err
        try:
            async with pool.acquire(timeout=self._connect_timeout) as conn:
                await apply_postgres(conn, load("postgresql"), where=self.where)
        except BaseException as err:
            await self._close_pool(pool)
            if isinstance(err, DB_ERRORS):
                raise self._error("cannot prepare", err) from err
            raise
        self._pool = pool
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._write_loop(), name="postgres-store-writer")
        self._state = "open"

    async def close(self) -> None:
        """Store everything already queued, give up leadership, close the pool."""
        if self._state != "open":
            return
        self._state = "closing"
        assert self._task is not None
        self._queue.put_nowait(None)
        await self._task
        await self._leadership.close()
        if self._pool is not None:
            await self._close_pool(self._pool)
            self._pool = None
        self._state = "closed"

    async def ping(self) -> None:
        await self._read(lambda c: c.fetchval("SELECT max(version) FROM schema_migrations"))

    # -- leadership (bridge/store/leader.py) ------------------------------------------------

    async def acquire_leadership(self) -> bool:
        """Try (without waiting) to become the leader; True when this store is the leader."""
        if self._state != "open":
            raise StoreError(f"{self.where}: the store is not open")
        return await self._leadership.acquire()

    async def leadership_lost(self) -> None:
        await self._leadership.lost()

    async def release_leadership(self) -> None:
        await self._leadership.release()

    # -- how operations run (bridge/store/front.py) ----------------------------------------

    async def _write_event(self, op: Op) -> Any:
        return await self._enqueue(op, durable=True)

    async def _write_derived(self, op: Op) -> Any:
        return await self._enqueue(op, durable=False)

    async def _write_story(self, op: Op) -> Any:
        return await self._write(op)

    async def _write_outbox(self, op: Op, *, durable: bool) -> Any:
        """Outbox rows are the delivery's own (no story or link): no write lock. Every
        PostgreSQL commit here is synchronous, so ``durable`` changes nothing."""
        return await self._write(op, lock=False)

    # -- group commit ----------------------------------------------------------------------

    async def _write_loop(self) -> None:
        """Events first: a batch holds either events (up to ``batch_max``) or, when no event
        waits, dispatcher writes (up to ``DERIVED_BATCH``: each costs several round trips
        under the write lock, and an event must not wait long behind them)."""
        events: deque[_Job] = deque()
        derived: deque[_Job] = deque()
        stopping = False
        while events or derived or not stopping:
            if not events and not derived:
                item = await self._queue.get()
                if item is None:
                    stopping = True
                    continue
                (events if item.durable else derived).append(item)
            while not stopping:
                try:
                    item = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
                if item is None:
                    stopping = True
                else:
                    (events if item.durable else derived).append(item)
            source, most = (events, self._batch_max) if events else (derived, DERIVED_BATCH)
            await self._commit_batch([source.popleft() for _ in range(min(most, len(source)))])

    async def _enqueue(self, work: Callable[[Connection], Awaitable[T]], *, durable: bool) -> T:
        """Queue ``work`` for the writer task, which runs everything queued in one
        transaction under the write lock (group commit). ``durable``: wait for a synchronous
        commit; other writes (the dispatcher's, derived from stored events and redone from
        the dirty marks if lost) commit with ``synchronous_commit = off`` when alone."""
        if self._state != "open":  # while closing, the writer is past the queue's end
            raise StoreError(f"{self.where}: the store is not open")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Job(work, future, durable))
        return await future

    async def _commit_batch(self, batch: list[_Job]) -> None:
        """One transaction for the batch. It first runs without savepoints (one round trip
        less per write); if a write fails, it runs again with a savepoint per write, so that
        write fails alone."""
        durable = any(job.durable for job in batch)

        async def run(conn: Connection, isolated: bool) -> list[tuple[bool, Any]]:
            if not durable:
                await conn.execute("SET LOCAL synchronous_commit = off")
            outcomes: list[tuple[bool, Any]] = []
            for job in batch:
                if not isolated:
                    try:
                        outcomes.append((True, await job.work(conn)))
                    except (asyncpg.PostgresError, ValueError) as err:
                        raise _JobFailed from err
                    continue
                try:
                    async with conn.transaction():  # a savepoint
                        outcomes.append((True, await job.work(conn)))
                except (asyncpg.PostgresError, ValueError) as err:
                    outcomes.append((False, self._error("could not write to", err)))
            return outcomes

        try:
            try:
                results = await self._write(partial(run, isolated=False))
            except _JobFailed:
                results = await self._write(partial(run, isolated=True))
        except asyncio.CancelledError:
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(StoreError(f"{self.where}: store is shutting down"))
            raise
        except Exception as err:  # never let one bad batch stop the writer
            log.warning("store.batch_failed", store=self.where, jobs=len(batch), error=str(err))
            message = str(err) if isinstance(err, StoreError) else f"{self.where}: {err!r}"
            results = [(False, StoreError(message))] * len(batch)
        for job, (ok, value) in zip(batch, results, strict=True):
            if job.future.done():
                continue
            if ok:
                job.future.set_result(value)
            else:
                job.future.set_exception(value)

    # -- connection plumbing ---------------------------------------------------------------

    def _live(self) -> Pool:
        """The pool; usable while closing too (close drains the queued events)."""
        if self._state not in ("open", "closing") or self._pool is None:
            raise StoreError(f"{self.where}: the store is not open")
        return self._pool

    async def _write(self, work: Callable[[Connection], Awaitable[T]], *, lock: bool = True) -> T:
        """Run ``work`` in one read-committed transaction; ``lock``: serialise with the
        other writers of stories and links (all instances)."""
        pool = self._live()
        try:
            async with (
                pool.acquire(timeout=self._connect_timeout) as conn,
                conn.transaction(),
            ):
                if lock:
                    await sql.lock_writers(conn)
                result = await work(conn)
        except DB_ERRORS as err:
            raise self._error("could not write to", err) from err
        self.commits += 1
        return result

    async def _read(self, work: Callable[[Connection], Awaitable[T]]) -> T:
        """Run ``work`` in one read-only snapshot, so several queries see one state."""
        pool = self._live()
        try:
            async with (
                pool.acquire(timeout=self._connect_timeout) as conn,
                conn.transaction(isolation="repeatable_read", readonly=True),
            ):
                return await work(conn)
        except DB_ERRORS as err:
            raise self._error("could not read", err) from err
        except (msgspec.DecodeError, msgspec.ValidationError) as err:
            raise CorruptData(f"{self.where}: a stored event cannot be decoded: {err}") from err

    def _error(self, doing: str, err: BaseException) -> StoreError:
        return failure(doing, self.dsn, err)

    async def _close_pool(self, pool: Pool) -> None:
        try:
            await asyncio.wait_for(pool.close(), self._connect_timeout)
        except (*DB_ERRORS, TimeoutError):
            pool.terminate()

    async def _close_quietly(self, conn: Connection) -> None:
        try:
            await asyncio.wait_for(conn.close(), self._connect_timeout)
        except DB_ERRORS:
            conn.terminate()


async def migrate_only(dsn: str, *, connect_timeout: float = 10.0) -> list[str]:
    """Apply pending migrations to the database at ``dsn`` (``callbridge migrate``); return
    the names of the migration files applied (empty when it was up to date)."""
    try:
        conn = await asyncpg.connect(dsn, timeout=connect_timeout)
    except DB_ERRORS as err:
        raise failure("cannot connect to", dsn, err) from err
    try:
        return await apply_postgres(conn, load("postgresql"), where=without_password(dsn))
    except DB_ERRORS as err:
        raise failure("cannot migrate", dsn, err) from err
    finally:
        try:
            await conn.close(timeout=connect_timeout)
        except DB_ERRORS:
            conn.terminate()
