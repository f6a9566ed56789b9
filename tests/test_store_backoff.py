"""Store failures (a full disk: writes fail, reads work): every background loop waits longer
between attempts (0.1 s doubling to 5 s), logs the failing state once per interval instead
of once per attempt, and /readyz answers 503 while events cannot be stored."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import time
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs

from bridge.deliver.dispatcher import DispatchOptions
from bridge.service.app import open_store
from bridge.store import StoreError
from bridge.store.health import StoreBackoff, StoreHealth
from bridge.store.sqlite import SqliteStore
from tests.support.fake_slack import ManualClock
from tests.support.harness import body, make_settings, running_bridge

AUTH = {"Authorization": "Bearer s3cret-webhook-token"}
FULL = "database or disk is full"


def test_backoff_doubles_to_its_cap_and_logs_once_per_interval() -> None:
    clock = ManualClock(0.0)
    health = StoreHealth(monotonic=clock)
    backoff = StoreBackoff("delivery", health, monotonic=clock)
    delays = []
    with capture_logs() as logged:
        while clock.now < 119.0:  # two minutes of a full disk, attempts as the loop makes them
            delays.append(backoff.failed(StoreError(FULL)))
            assert health.problem() == FULL
            clock.advance(delays[-1])
        backoff.succeeded()
    assert delays[:8] == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
    assert len(delays) == 6 + 23  # 6.3 s of doubling, then one attempt per 5 s
    events = [(e["event"], e["loop"]) for e in logged]
    assert events == [
        ("store.failing", "delivery"),
        ("store.still_failing", "delivery"),  # one summary per minute
        ("store.recovered", "delivery"),
    ]
    assert logged[1]["failures"] > 10
    assert health.problem() is None


def test_concurrent_failures_count_once_and_reads_do_not_clear_health() -> None:
    clock = ManualClock(0.0)
    health = StoreHealth(monotonic=clock, recent=30.0)
    backoff = StoreBackoff("dispatch", health, monotonic=clock)
    assert backoff.failed(StoreError(FULL)) == 0.1
    assert backoff.failed(StoreError(FULL)) == 0.1  # same round: no longer wait
    clock.advance(0.1)
    assert backoff.failed(StoreError(FULL)) == 0.2
    backoff.succeeded(wrote=False)  # a read worked: the loop retries at once again
    assert backoff.wait() == 0
    assert health.problem() == FULL  # but events still cannot be stored
    health.pinged(ok=True)
    assert health.problem() == FULL  # reads work, writes do not: a full disk
    clock.advance(31.0)
    assert health.problem() is None  # forgotten: the load balancer may try again


def test_a_store_back_after_an_outage_is_ready_at_once() -> None:
    clock = ManualClock(0.0)
    health = StoreHealth(monotonic=clock, recent=30.0)
    health.failed(StoreError("connection refused"))
    clock.advance(1.0)
    health.pinged(ok=False)  # the database is gone: that is why the write failed
    clock.advance(1.0)
    assert health.problem() == "connection refused"
    health.pinged(ok=True)  # it is back: nothing needs to write first
    assert health.problem() is None


class FullDisk:
    """The real store, whose delivery writes (or ``writes``) fail while ``full`` (reads work)."""

    WRITES = ("begin_attempt", "posted", "retry_later", "give_up")

    def __init__(self, inner: Any, writes: tuple[str, ...] = WRITES) -> None:
        self._inner = inner
        self._writes = writes
        self.full = False
        self.attempts: list[float] = []  # monotonic time of each failed write
        self.changed = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._inner, name)
        if name not in self._writes:
            return method

        async def write(*args: Any, **kwargs: Any) -> Any:
            if self.full:
                self.attempts.append(time.monotonic())
                self.changed.set()
                raise StoreError(FULL)
            return await method(*args, **kwargs)

        return write

    async def attempted(self, n: int, timeout: float = 30.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.attempts) < n:
                self.changed.clear()
                await self.changed.wait()


async def test_delivery_backs_off_on_a_full_disk_and_readiness_follows(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    store = FullDisk(open_store(settings.store))
    store.full = True
    with capture_logs() as logged:
        async with running_bridge(settings, store=store) as (bridge, client, chat):
            response = await client.post("/notifications", data=body(), headers=AUTH)
            assert response.status == 200  # stored; its messages cannot be marked as sent
            await store.attempted(5)
            gaps = [b - a for a, b in itertools.pairwise(store.attempts)]
            for n, gap in enumerate(gaps[:4]):  # at least 0.1, 0.2, 0.4, 0.8 s apart
                assert gap >= 0.1 * 2**n * 0.9, gaps
            assert chat.sent == []

            ready = await client.get("/readyz")
            assert (ready.status, await ready.json()) == (503, {"status": "not ready"})
            detail = await (await client.get("/readyz", headers=AUTH)).json()
            assert detail["checks"]["store"]["detail"] == f"writes are failing: {FULL}"
            delivery = await client.get("/delivery")
            assert delivery.status == 503

            store.full = False
            assert bridge.delivery is not None
            await bridge.delivery.settled()
            assert chat.sent  # delivered once the disk has room again
            assert (await client.get("/readyz")).status == 200
    states = {"store.failing", "store.still_failing", "store.recovered"}
    failing = [e for e in logged if e["event"] in states]
    assert [(e["event"], e["loop"]) for e in failing] == [
        ("store.failing", "delivery"),
        ("store.recovered", "delivery"),
    ]
    assert not [e for e in logged if e["event"] == "delivery.store_error"]


async def test_dispatch_backs_off_on_a_full_disk(tmp_path: Path) -> None:
    """The poller queues the dirty stories again every 50 ms; their writes fail: the cycles
    wait longer each time and log once, not once per story per cycle."""
    settings = make_settings(tmp_path)
    store = FullDisk(open_store(settings.store), writes=("dispatched",))
    store.full = True
    options = DispatchOptions(poll_interval=0.05, janitor_interval=3600)
    with capture_logs() as logged:
        async with running_bridge(settings, store=store, dispatch=options) as (_b, client, _c):
            for n in range(3):
                response = await client.post(
                    "/notifications", data=body(call_id=f"full-{n}"), headers=AUTH
                )
                assert response.status == 200
            await store.attempted(15)
            cycles = [store.attempts[0]]  # a cycle's stories fail together: one attempt
            for at in store.attempts[1:]:
                if at - cycles[-1] > 0.05:
                    cycles.append(at)
            gaps = [b - a for a, b in itertools.pairwise(cycles)]
            assert len(gaps) >= 3, store.attempts
            for n, gap in enumerate(gaps[:3]):  # at least 0.1, 0.2, 0.4 s apart
                assert gap >= 0.1 * 2**n * 0.9, gaps
            assert (await client.get("/readyz")).status == 503
            store.full = False
            await _b.dispatcher.drained()
    lines = [(e["event"], e.get("loop")) for e in logged if e["event"].startswith("dispatch.")]
    assert ("dispatch.store_error", None) not in lines
    assert [(e["event"], e["loop"]) for e in logged if e["event"] == "store.failing"] == [
        ("store.failing", "dispatch")
    ]


async def test_sqlite_checkpoint_backs_off_and_logs_once(tmp_path: Path) -> None:
    """The WAL checkpoint runs at most every 0.5 s; on a full disk it fails: it waits longer
    each time (past 0.5 s, with no new commit: the WAL still needs it) and logs
    ``store.failing`` once, not a warning per attempt."""
    loop = asyncio.get_running_loop()
    store = SqliteStore(tmp_path / "bridge.db")
    calls: list[tuple[float, bool]] = []  # (monotonic time, worked)
    changed = asyncio.Event()
    full = True

    def checkpoint() -> bool:  # on the store's reader thread
        works = not full  # read once: the test flips it on the loop's thread meanwhile
        calls.append((time.monotonic(), works))
        loop.call_soon_threadsafe(changed.set)
        if not works:
            raise sqlite3.OperationalError(FULL)
        return True

    async def until(predicate: Any) -> None:
        async with asyncio.timeout(30):
            while not predicate():
                changed.clear()
                await changed.wait()

    with capture_logs() as logged:
        await store.open()
        try:
            store._checkpoint = checkpoint  # type: ignore[method-assign]
            await until(lambda: len(calls) >= 5)
            gaps = [b[0] - a[0] for a, b in itertools.pairwise(calls)]
            assert gaps[3] >= 0.8 * 0.9, gaps  # 0.5, 0.5, 0.5, then 0.8: backing off
            full = False
            await until(lambda: calls[-1][1])
            worked = len(calls)
            await store._write(lambda conn: None)  # a commit: the WAL has something new
            await until(lambda: len(calls) > worked)  # the loop went on: the success is logged
        finally:
            await store.close()
    states = {"store.failing", "store.still_failing", "store.recovered", "store.checkpoint_failed"}
    lines = [(e["event"], e.get("loop")) for e in logged if e["event"] in states]
    assert lines == [("store.failing", "checkpoint"), ("store.recovered", "checkpoint")]
