"""Group commit for the SQLite store: one writer thread, one transaction per batch.

Writes are queued from the event loop (:meth:`GroupCommit.submit`; everything submitted in one
turn of the loop is handed over at once); the writer thread (:meth:`GroupCommit.run`, on the
store's single-thread writer executor, which owns the write connection) takes what is queued,
stores it in one transaction, hands the outcomes back to the event loop and takes the next
batch at once: it never waits for the loop. Durable writes (an accepted event, the mark
before a chat post) go first, up to ``batch_max`` per batch, with 1 to ``background_max``
other writes (the dispatcher's), so a webhook never waits behind a dispatcher cycle's
hundreds of writes and those are never starved. A batch holding a durable write commits with
``synchronous = FULL`` (one fsync shared by the batch), other batches with ``NORMAL``.

One failing write fails only itself: a batch first runs without savepoints (writes almost
never fail, and two statements less per write matter under load); if one fails, the
transaction is rolled back and the batch runs again with a savepoint per write. A failing
transaction fails every waiter of its batch with :class:`StoreError`; the next batch is tried
afresh.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog

from bridge.store import StoreError

T = TypeVar("T")
Work = Callable[[sqlite3.Connection], Any]
Outcome = tuple[bool, Any]  # (succeeded, result or error)

log = structlog.get_logger("bridge.store.sqlite")


@dataclass(frozen=True, slots=True)
class _Job:
    """One write waiting for the writer: run in the next batch's transaction (or, ``read``,
    a read run on the write connection before it, in a read transaction of its own)."""

    work: Work
    future: asyncio.Future[Any]
    durable: bool
    read: bool = False


class _JobFailed(Exception):
    """A write of a batch run without savepoints failed: run the batch again, isolated."""


class GroupCommit:
    def __init__(self, where: str, batch_max: int, background_max: int = 32) -> None:
        if batch_max < 1 or background_max < 1:
            raise ValueError("batch_max and background_max must be at least 1")
        self.where = where  # the store, for messages
        self.batch_max = batch_max
        self.background_max = background_max
        self.commits = 0  # transactions committed
        # The event loop hands jobs over in bunches: everything submitted during one turn
        # of the loop goes to the writer as one list (one queue operation and at most one
        # wake-up of the writer thread per turn, instead of one per webhook).
        self._jobs: queue.SimpleQueue[list[_Job] | None] = queue.SimpleQueue()
        self._gathering: list[_Job] = []
        self._synchronous: str | None = None  # the write connection's setting (writer thread)
        # Called on the event loop after each batch that committed (the WAL has grown).
        self.on_commit: Callable[[], None] = lambda: None

    async def submit(self, work: Callable[[sqlite3.Connection], T], *, durable: bool) -> T:
        """Queue ``work`` and wait for its batch to commit (on the event loop)."""
        return await self._queue(work, durable=durable, read=False)

    async def read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` on the write connection, in a read transaction of its own, before the
        next batch (on the event loop). For small reads that follow writes closely: the
        writer's page cache is never made stale by its own commits, while another
        connection's cache is dropped after every commit (WAL), so the reader thread would
        read every page again. Its errors are raised as they are (not as StoreError)."""
        return await self._queue(work, durable=False, read=True)

    async def _queue(
        self, work: Callable[[sqlite3.Connection], T], *, durable: bool, read: bool
    ) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        if not self._gathering:
            loop.call_soon(self._hand_over)
        self._gathering.append(_Job(work, future, durable, read))
        return await future

    def _hand_over(self) -> None:
        if self._gathering:
            jobs, self._gathering = self._gathering, []
            self._jobs.put(jobs)

    def stop(self) -> None:
        """Let :meth:`run` return once everything submitted so far is stored."""
        self._hand_over()
        self._jobs.put(None)

    def run(self, conn: sqlite3.Connection, loop: asyncio.AbstractEventLoop) -> None:
        """The writer thread's loop (returns after :meth:`stop`)."""
        # Durable writes (events, the mark before a post) first: a webhook waits for its
        # batch, the dispatcher's writes can wait a little. A batch takes every durable
        # write waiting (up to ``batch_max``) and 1 to ``background_max`` others, so
        # that a dispatcher cycle's hundreds of writes never make one long batch that the
        # next webhooks wait behind.
        urgent: deque[_Job] = deque()
        background: deque[_Job] = deque()
        reads: list[_Job] = []
        stopping = False
        self._synchronous = None  # a new connection: set it on the first batch
        while urgent or background or reads or not stopping:
            if not urgent and not background and not reads:
                try:
                    jobs = self._jobs.get(timeout=1.0)
                except queue.Empty:
                    if loop.is_closed():  # abandoned without close(): let the process exit
                        return
                    continue
                if jobs is None:
                    return
                self._sort(jobs, urgent, background, reads)
            while not stopping:
                try:
                    jobs = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if jobs is None:
                    stopping = True
                else:
                    self._sort(jobs, urgent, background, reads)
            if reads:
                done, reads = reads, []
                try:
                    loop.call_soon_threadsafe(self._settle, done, self._run_reads(conn, done))
                except RuntimeError:  # the event loop is gone: nobody waits for these any more
                    return
                if not urgent and not background:
                    continue
            batch = [urgent.popleft() for _ in range(min(self.batch_max, len(urgent)))]
            # At least one background write per batch: a flood of events never starves them.
            room = min(self.background_max, max(self.batch_max - len(batch), 1))
            batch.extend(background.popleft() for _ in range(min(room, len(background))))
            outcome: list[Outcome] | Exception
            try:
                outcome = self._run_batch(conn, batch)
            except Exception as err:  # never let one bad batch stop the writer
                outcome = err
            try:
                loop.call_soon_threadsafe(self._settle, batch, outcome)
            except RuntimeError:  # the event loop is gone: nobody waits for these any more
                return

    @staticmethod
    def _sort(
        jobs: list[_Job], urgent: deque[_Job], background: deque[_Job], reads: list[_Job]
    ) -> None:
        for job in jobs:
            if job.read:
                reads.append(job)
            else:
                (urgent if job.durable else background).append(job)

    @staticmethod
    def _run_reads(conn: sqlite3.Connection, reads: list[_Job]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for job in reads:
            try:
                outcomes.append((True, snapshot(conn, job.work)))
            except Exception as err:  # given to the reader as it is
                outcomes.append((False, err))
        return outcomes

    def _settle(self, batch: list[_Job], outcome: list[Outcome] | Exception) -> None:
        """On the event loop: wake the writers of one batch (or the readers of the reads run
        before it) with their results."""
        if isinstance(outcome, Exception):
            log.warning("store.batch_failed", path=self.where, jobs=len(batch), error=str(outcome))
            outcome = [(False, outcome)] * len(batch)
        elif not batch[0].read:  # a batch of writes is never mixed with reads
            self.on_commit()
        for job, (ok, value) in zip(batch, outcome, strict=True):
            if job.future.done():  # its writer was cancelled
                continue
            if ok:
                job.future.set_result(value)
            elif job.read:  # the reader's own error, as it is (the store words it)
                job.future.set_exception(value)
            else:
                job.future.set_exception(
                    StoreError(f"could not write to the store {self.where}: {value}")
                )

    def _run_batch(self, conn: sqlite3.Connection, batch: list[_Job]) -> list[Outcome]:
        synchronous = "FULL" if any(job.durable for job in batch) else "NORMAL"
        if synchronous != self._synchronous:  # set only when it changes: a statement less
            conn.execute(f"PRAGMA synchronous = {synchronous}")
            self._synchronous = synchronous
        works = [job.work for job in batch]
        try:
            outcomes = self._run_jobs(conn, works, isolated=False)
        except _JobFailed:
            outcomes = self._run_jobs(conn, works, isolated=True)
        self.commits += 1
        return outcomes

    def _run_jobs(
        self, conn: sqlite3.Connection, works: list[Work], *, isolated: bool
    ) -> list[Outcome]:
        conn.execute("BEGIN IMMEDIATE")
        outcomes: list[Outcome] = []
        try:
            for work in works:
                if not isolated:
                    try:
                        outcomes.append((True, work(conn)))
                    except (sqlite3.Error, ValueError) as err:
                        raise _JobFailed from err
                    continue
                conn.execute("SAVEPOINT job")
                try:
                    outcomes.append((True, work(conn)))
                except (sqlite3.Error, ValueError) as err:
                    conn.execute("ROLLBACK TO job")
                    outcomes.append((False, err))
                conn.execute("RELEASE job")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error as err:  # the original error matters more
                    log.warning("store.rollback_failed", path=self.where, error=str(err))
            raise
        return outcomes


def snapshot(conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """Run ``work`` in one read transaction, so several queries see one state."""
    conn.execute("BEGIN")
    try:
        return work(conn)
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
