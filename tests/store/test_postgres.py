"""PostgreSQL-only behaviour: migrations racing, several instances writing at once,
leadership, connection loss and recovery. Each test has its own fresh database."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest

from bridge.core.events import Event
from bridge.store import StoreError
from bridge.store.migrate import load
from bridge.store.postgres import DERIVED_BATCH, PostgresStore, migrate_only
from bridge.store.postgres_sql import WRITE_LOCK
from bridge.store.sqlite import SqliteStore
from tests.store import (
    T0,
    answered,
    consult_ringing,
    created,
    ended,
    ringing,
    warm_transfer,
)
from tests.store.pg import terminate_sessions
from tests.support.proxy import Proxy

RECEIVED = T0 + timedelta(milliseconds=100)
DEADLINE = 10.0  # seconds to wait for another process (the PostgreSQL server, a child)


async def fetch(dsn: str, query: str) -> list[tuple[object, ...]]:
    conn = await asyncpg.connect(dsn)
    try:
        return [tuple(r) for r in await conn.fetch(query)]
    finally:
        await conn.close()


@pytest.fixture
async def opened(pg_dsn: str) -> AsyncIterator[PostgresStore]:
    store = PostgresStore(pg_dsn, pool_max=4)
    await store.open()
    yield store
    await store.close()


# -- migrations ------------------------------------------------------------------------------


async def test_two_stores_opening_a_fresh_database_at_once(pg_dsn: str) -> None:
    stores = [PostgresStore(pg_dsn), PostgresStore(pg_dsn), PostgresStore(pg_dsn)]
    await asyncio.gather(*(s.open() for s in stores))
    for s in stores:
        await s.close()
    rows = await fetch(pg_dsn, "SELECT version FROM schema_migrations ORDER BY version")
    assert rows == [(m.version,) for m in load("postgresql")]
    tables = await fetch(
        pg_dsn, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
    )
    assert tables == [
        ("case_archive",),
        ("case_facts",),
        ("cases",),
        ("events",),
        ("links",),
        ("outbox",),
        ("purged_calls",),
        ("rulesets",),
        ("schema_migrations",),
        ("stories",),
    ]


async def test_migrate_only_reports_what_it_applied(pg_dsn: str) -> None:
    assert await migrate_only(pg_dsn) == [m.name for m in load("postgresql")]
    assert await migrate_only(pg_dsn) == []
    store = PostgresStore(pg_dsn)
    await store.open()  # an up-to-date database opens without migrating again
    await store.close()
    assert len(await fetch(pg_dsn, "SELECT version FROM schema_migrations")) == len(
        load("postgresql")
    )


def test_both_backends_have_the_same_migrations() -> None:
    names = [m.name for m in load("postgresql")]
    assert names == [m.name for m in load("sqlite")]


# -- several instances -----------------------------------------------------------------------


def _calls(n: int) -> list[Event]:
    """n customer calls, every third one warm-transferred via a consult call."""
    events: list[Event] = []
    for i in range(n):
        a, b = f"cust-{i}", f"consult-{i}"
        events += [created(a, 0), ringing(a, 1), answered(a, 5)]
        if i % 3 == 0:
            survivor, merged = (a, b) if i % 2 else (b, a)  # either id may survive
            events += [consult_ringing(b, 20), answered(b, 25)]
            events += [warm_transfer(survivor, merged, 40), ended(b, 90)]
        else:
            events.append(ended(a, 60))
    return events


async def _partition(store: PostgresStore | SqliteStore, events: list[Event]) -> set[object]:
    """The stories as sets: {(call ids, events)}, independent of which id was seen first."""
    found: set[object] = set()
    for call_id in {e.call_id for e in events}:
        story = await store.story(call_id)
        assert story is not None
        assert story.max_seq == max(
            [(await store.add_event(e, RECEIVED)).seq for e in story.events]  # duplicates
        )
        found.add((frozenset(story.call_ids), frozenset(e.dedupe_key() for e in story.events)))
    return found


async def test_two_instances_ingesting_at_once_match_one_instance(
    pg_dsn: str, tmp_path: Path
) -> None:
    events = _calls(30)
    expected_stories = 30
    # One instance, in order (SQLite is the reference implementation).
    reference = SqliteStore(tmp_path / "reference.db")
    await reference.open()
    for event in events:
        await reference.add_event(event, RECEIVED)

    # Two instances, every event sent to both (the provider retried via the other node),
    # in a shuffled order, all at once.
    one, two = PostgresStore(pg_dsn, batch_max=8), PostgresStore(pg_dsn, batch_max=8)
    await asyncio.gather(one.open(), two.open())
    try:
        rng = random.Random(6)
        work = [(s, e) for e in events for s in (one, two)]
        rng.shuffle(work)
        added = await asyncio.gather(*(s.add_event(e, RECEIVED) for s, e in work))

        accepted = [a for a in added if a.status == "accepted"]
        assert len(accepted) == len(events)  # each event stored once, by one instance
        assert len({a.seq for a in accepted}) == len(events)
        assert one.commits > 1
        assert two.commits > 1
        got = await _partition(one, events)
        assert len(got) == expected_stories
        assert got == await _partition(reference, events)
        dirty = await two.dirty_stories()
        assert len(dirty) == expected_stories
        assert await two.count_open() == expected_stories
    finally:
        await asyncio.gather(one.close(), two.close())
        await reference.close()


async def test_writers_of_all_instances_take_one_lock(pg_dsn: str) -> None:
    """Another instance's write transaction holds the writers' lock: this one waits (here
    until its short lock_timeout), reads carry on, and it writes once the lock is free."""
    store = PostgresStore(pg_dsn, lock_timeout=0.2)
    await store.open()
    other = await asyncpg.connect(pg_dsn)
    try:
        async with other.transaction():
            await other.execute("SELECT pg_advisory_xact_lock($1)", WRITE_LOCK)
            with pytest.raises(StoreError, match="lock timeout"):
                await store.add_event(created("c1"), RECEIVED)
            assert await store.resolve("c1") is None
        assert (await store.add_event(created("c1"), RECEIVED)).status == "accepted"
    finally:
        await other.close()
        await store.close()


# -- leadership ------------------------------------------------------------------------------


async def _acquire_within(store: PostgresStore, seconds: float) -> float:
    """Poll acquire_leadership until it succeeds (the old holder is another process whose
    session the server ends asynchronously); return how long it took."""
    start = time.monotonic()
    while not await store.acquire_leadership():
        assert time.monotonic() - start < seconds, "leadership was not taken over in time"
        await asyncio.sleep(0.05)
    return time.monotonic() - start


async def test_only_one_leader_and_takeover_when_its_session_dies(pg_dsn: str) -> None:
    one, two = PostgresStore(pg_dsn), PostgresStore(pg_dsn)
    await one.open()
    await two.open()
    try:
        assert await one.acquire_leadership()
        assert await one.acquire_leadership()  # still the leader: idempotent
        assert not await two.acquire_leadership()
        assert not await two.acquire_leadership()
        lost = asyncio.create_task(one.leadership_lost())
        await two.leadership_lost()  # not the leader: returns at once
        await two.ping()
        assert not lost.done()

        assert await terminate_sessions(pg_dsn, "callbridge-leader") == 1
        await asyncio.wait_for(lost, DEADLINE)
        await _acquire_within(two, DEADLINE)
        assert not await one.acquire_leadership()

        await two.release_leadership()
        assert await one.acquire_leadership()
        assert not await two.acquire_leadership()
        # The lock's session asks the server to probe a silent peer soon (private hook: only
        # that session can show its own settings).
        conn = one._leadership._conn
        assert conn is not None
        assert await conn.fetchval("SHOW tcp_keepalives_idle") == "5"
        assert await conn.fetchval("SHOW tcp_keepalives_count") == "3"
    finally:
        await one.close()
        await two.close()
    # Closing released it: a third store can lead.
    three = PostgresStore(pg_dsn)
    await three.open()
    try:
        assert await three.acquire_leadership()
    finally:
        await three.close()


_LEADER_CHILD = """
import asyncio, sys
from bridge.store.postgres import PostgresStore

async def main():
    store = PostgresStore(sys.argv[1])
    await store.open()
    assert await store.acquire_leadership()
    print("leader", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


async def test_a_killed_leader_process_is_replaced_quickly(pg_dsn: str) -> None:
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _LEADER_CHILD,
        pg_dsn,
        stdout=asyncio.subprocess.PIPE,
        cwd=Path(__file__).parents[2],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    assert child.stdout is not None
    try:
        line = b""
        while line != b"leader\n":  # the child logs its migrations first
            line = await asyncio.wait_for(child.stdout.readline(), DEADLINE)
            assert line, "the child exited before it became the leader"
        other = PostgresStore(pg_dsn)
        await other.open()
        try:
            assert not await other.acquire_leadership()
            child.send_signal(signal.SIGKILL)
            await child.wait()
            took = await _acquire_within(other, DEADLINE)
            assert took < 3.0  # the kernel closed the socket: the server freed the lock
        finally:
            await other.close()
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()


# -- group commit ------------------------------------------------------------------------------


async def test_a_failing_write_fails_alone_and_leaves_nothing_behind(
    opened: PostgresStore, pg_dsn: str
) -> None:
    async def half_then_fail(conn: asyncpg.Connection) -> None:
        await conn.execute(
            "INSERT INTO stories (story_id, first_seq, first_received_us, max_seq,"
            " last_event_us, last_received_us, dirty) VALUES ('half', 1, 0, 1, 0, 0, FALSE)"
        )
        await conn.execute("SELECT 1 / 0")

    before = opened.commits
    results = await asyncio.gather(
        opened.add_event(ringing("c1"), RECEIVED),
        opened._enqueue(half_then_fail, durable=True),
        opened.add_event(ringing("c2"), RECEIVED),
        return_exceptions=True,
    )
    first, failed, last = results
    assert isinstance(failed, StoreError)
    assert "division by zero" in str(failed)
    assert [getattr(r, "status", r) for r in (first, last)] == ["accepted", "accepted"]
    assert opened.commits - before == 1  # the batch committed once, without the failed write
    rows = await fetch(pg_dsn, "SELECT story_id FROM stories ORDER BY 1")
    assert rows == [("c1",), ("c2",)]


async def test_events_are_committed_before_waiting_dispatcher_writes(
    opened: PostgresStore,
) -> None:
    ran: list[str] = []

    def job(name: str) -> Callable[[asyncpg.Connection], Awaitable[None]]:
        async def work(conn: asyncpg.Connection) -> None:
            await conn.execute("SELECT 1")
            ran.append(name)

        return work

    before = opened.commits
    derived = [opened._enqueue(job(f"d{n}"), durable=False) for n in range(DERIVED_BATCH + 8)]
    await asyncio.gather(*derived, opened._enqueue(job("event"), durable=True))

    assert ran[0] == "event"  # queued last, committed first
    assert ran[1:] == [f"d{n}" for n in range(DERIVED_BATCH + 8)]
    assert opened.commits - before == 3  # the event; then DERIVED_BATCH writes at most, twice


# -- connection loss -------------------------------------------------------------------------


async def test_connection_loss_is_a_store_error_and_recovery_is_automatic(
    pg_dsn: str,
) -> None:
    proxy = Proxy(("127.0.0.1", 5432))
    await proxy.start()
    database = pg_dsn.rsplit("/", 1)[1]
    dsn = f"postgresql://postgres:s3cret-pw@127.0.0.1:{proxy.port}/{database}"
    store = PostgresStore(dsn, connect_timeout=2)
    await store.open()
    try:
        await store.add_event(created("before"), RECEIVED)
        assert await store.acquire_leadership()
        await proxy.cut()

        await asyncio.wait_for(store.leadership_lost(), DEADLINE)
        failures = [
            store.ping(),
            store.add_event(ringing("during"), RECEIVED),
            store.story("before"),
            store.dirty_stories(),
            store.due(T0),
            store.acquire_leadership(),
        ]
        for attempt in failures:
            with pytest.raises(StoreError) as caught:
                await attempt
            message = str(caught.value)
            assert "s3cret-pw" not in message
            assert f"postgresql://postgres:***@127.0.0.1:{proxy.port}/{database}" in message
            assert "check that the server is running and reachable" in message

        await proxy.start()  # PostgreSQL is back, on the same address
        await store.ping()
        assert (await store.add_event(ringing("after"), RECEIVED)).status == "accepted"
        assert (await store.add_event(created("before"), RECEIVED)).status == "duplicate"
        assert await store.dirty_stories() == ["before", "after"]
        assert await store.acquire_leadership()
    finally:
        await store.close()
        await proxy.cut()


async def test_an_operation_cancelled_as_the_connection_drops_stays_cancelled(
    opened: PostgresStore,
) -> None:
    """A task cancelled mid-query whose connection then fails with a driver error (asyncpg
    can replace the cancellation so) ends cancelled, not with a StoreError: a cancelled
    dispatcher loop handed a StoreError took it for a store failure and tried again, and a
    leader stepping down waited for it forever (the HA test's rare hang)."""
    started = asyncio.Event()

    async def query_cut_by_cancellation(conn: asyncpg.Connection) -> None:
        started.set()
        try:
            await asyncio.Event().wait()  # a query in flight
        except asyncio.CancelledError:
            raise asyncpg.InterfaceError("cannot perform operation: connection is closed") from None

    for operation in (opened._read, opened._write):
        started.clear()
        task = asyncio.create_task(operation(query_cut_by_cancellation))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    # Without a cancellation the same driver error is a store failure, as before.
    async def failing(conn: asyncpg.Connection) -> None:
        raise asyncpg.InterfaceError("cannot perform operation: connection is closed")

    with pytest.raises(StoreError, match="connection is closed"):
        await opened._read(failing)
    assert (await opened.add_event(ringing("after"), RECEIVED)).status == "accepted"


async def test_terminated_sessions_are_replaced_by_the_pool(opened: PostgresStore) -> None:
    await opened.add_event(created("c1"), RECEIVED)
    assert await terminate_sessions(opened.dsn, "callbridge") >= 1
    # A connection the server closed may fail the call that finds it (as a StoreError,
    # never a raw driver error); the pool then connects afresh without a reopen.
    outcomes: list[str] = []
    for _ in range(3):
        try:
            await opened.ping()
        except StoreError:
            outcomes.append("error")
        else:
            outcomes.append("ok")
    assert outcomes[-1] == "ok"
    assert (await opened.add_event(ringing("c1"), RECEIVED)).status == "accepted"
    story = await opened.story("c1")
    assert story is not None
    assert len(story.events) == 2


async def test_nothing_listening_is_a_clear_store_error() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()  # the port is now free: nothing listens there
    store = PostgresStore(f"postgresql://bridge:hunter2@127.0.0.1:{port}/x", connect_timeout=2)
    with pytest.raises(StoreError) as caught:
        await store.open()
    message = str(caught.value)
    assert (
        f"cannot connect to the PostgreSQL store postgresql://bridge:***@127.0.0.1:{port}/x"
        in message
    )
    assert "hunter2" not in message
    with pytest.raises(StoreError, match="the store is not open"):
        await store.ping()
