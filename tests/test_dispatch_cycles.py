"""The dispatcher's cycles: one read per cycle, events of a story folded together, one
failing story never holding up the others, a story never in two cycles at once."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest

from bridge.core.cases import CaseKey, Click
from bridge.core.events import Event, decode
from bridge.deliver.dispatcher import Dispatcher, DispatchOptions
from bridge.metrics import Metrics
from bridge.service.rulestate import RulesHolder
from bridge.simulate import SCENARIOS, ScenarioContext, build
from bridge.simulate.case_flows import CASE_FLOWS, CaseContext, Press
from bridge.store import (
    CaseHistory,
    CaseWrite,
    Dispatched,
    Emitted,
    PlanRequest,
    SlotKey,
    Store,
    StoreError,
    Story,
    sqlite_cases,
)
from bridge.store.sqlite import SqliteStore
from tests.store import T0, answered, consult_ringing, ended, ringing, warm_transfer
from tests.support.harness import FakeClock, write_rules

LIVE_ONLY = """\
version: 1
timezone: Europe/Amsterdam
destinations:
  support: {slack: {channel: C0123456789}}
routes:
  - name: everything
    live: support
"""


@dataclass
class Counting:
    """The real store, counting the dispatcher's reads and writes; ``gate`` (when set)
    holds every batch read, once it has read, until it is opened."""

    store: SqliteStore
    batch_reads: list[list[str]] = field(default_factory=list)
    writes: list[str] = field(default_factory=list)
    turn: Callable[[], int] = lambda: 0  # which turn of the event loop it is (see below)
    write_turns: list[int] = field(default_factory=list)
    gate: asyncio.Event | None = None
    down: int = 0  # batch reads that fail as if the store were unreachable
    reading: asyncio.Event = field(default_factory=asyncio.Event)
    polled: asyncio.Event = field(default_factory=asyncio.Event)
    case_reads: int = 0  # reads of callback case facts
    after_write: Callable[[], None] = lambda: None  # called after each dispatcher write

    async def case_facts(self, keys: Sequence[CaseKey]) -> dict[CaseKey, CaseHistory]:
        self.case_reads += 1
        return await self.store.case_facts(keys)

    async def dirty_stories(self, limit: int = 1000) -> list[str]:
        found = await self.store.dirty_stories(limit)
        self.polled.set()
        return found

    async def stories(self, story_ids: Sequence[str]) -> dict[str, Story]:
        self.batch_reads.append(list(story_ids))
        if self.down:
            self.down -= 1
            raise StoreError("the store is unreachable")
        found = await self.store.stories(story_ids)
        self.reading.set()
        if self.gate is not None:
            await self.gate.wait()
        return found

    async def dispatched(
        self,
        story_id: str,
        state: Emitted,
        plan: PlanRequest | None = None,
        cases: CaseWrite | None = None,
    ) -> Dispatched:
        self.writes.append(story_id)
        self.write_turns.append(self.turn())
        done = await self.store.dispatched(story_id, state, plan, cases)
        self.after_write()
        return done

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


@asynccontextmanager
async def dispatcher(
    tmp_path: Path, rules_text: str = LIVE_ONLY, **extra: Any
) -> AsyncIterator[tuple[Dispatcher, Counting, Metrics]]:
    store = SqliteStore(tmp_path / "bridge.db")
    await store.open()
    metrics = Metrics()
    # Live messages only: the calls here share one caller, and missed-call alerts would
    # stack them into one callback case (whose refolds these tests do not count).
    rules = RulesHolder(write_rules(tmp_path, rules_text), metrics)
    assert await rules.reload(), rules.problems
    counting = Counting(store)
    options = DispatchOptions(poll_interval=3600, janitor_interval=3600, **extra)
    running = Dispatcher(cast(Store, counting), rules, metrics, FakeClock(), options)
    await running.start()
    await counting.polled.wait()  # the start-up poll is over: only the tests notify now
    try:
        yield running, counting, metrics
    finally:
        await running.stop()
        await store.close()


async def test_a_cycle_reads_its_stories_once_and_folds_each_once(tmp_path: Path) -> None:
    async with dispatcher(tmp_path) as (running, store, _):
        added = [
            await store.add_event(event, T0)
            for event in (ringing("a"), answered("a"), ended("a"), ringing("b"))
        ]
        for result in added:  # four notifications for "a", one for "b", before any cycle
            running.notify(result.story_id)
        await running.drained()

        assert store.batch_reads == [["a", "b"]]
        assert sorted(store.writes) == ["a", "b"]
        assert await store.dirty_stories() == []


async def test_a_big_cycle_lets_the_event_loop_turn_between_its_stories(
    tmp_path: Path,
) -> None:
    """Folding is synchronous: a cycle starts ``yield_every`` stories per turn of the event
    loop, so webhooks arriving meanwhile are answered between them, not after all of them."""
    loop = asyncio.get_running_loop()
    turns = 0

    def tick() -> None:  # counts the loop's turns: runs once in each
        nonlocal turns, ticking
        turns += 1
        ticking = loop.call_soon(tick)

    ticking = loop.call_soon(tick)
    try:
        async with dispatcher(tmp_path, yield_every=2) as (running, store, _):
            store.turn = lambda: turns
            for n in range(7):
                running.notify((await store.add_event(ringing(f"call{n}"), T0)).story_id)
            await running.drained()
    finally:
        ticking.cancel()
    assert sorted(store.writes) == sorted(f"call{n}" for n in range(7))
    per_turn = [store.write_turns.count(turn) for turn in set(store.write_turns)]
    assert max(per_turn) == 2
    assert len(per_turn) == 4  # 7 stories, 2 per turn


async def test_a_story_that_cannot_be_read_does_not_hold_up_the_others(
    tmp_path: Path,
) -> None:
    async with dispatcher(tmp_path) as (running, store, metrics):
        for event in (ringing("broken"), ringing("fine")):
            await store.add_event(event, T0)
        with closing(sqlite3.connect(tmp_path / "bridge.db")) as conn, conn:
            conn.execute("UPDATE events SET body = x'00ff' WHERE call_id = 'broken'")
        running.notify("broken")
        running.notify("fine")
        await running.drained()

        assert store.writes == ["fine"]
        assert await store.dirty_stories() == ["broken"]  # stays dirty: retried later
        errors = metrics.registry.get_sample_value(
            "callbridge_store_errors_total", {"operation": "dispatch"}
        )
        assert errors == 1


async def test_two_ids_of_one_merged_story_are_folded_once(tmp_path: Path) -> None:
    async with dispatcher(tmp_path) as (running, store, _):
        for event in (ringing("a"), consult_ringing("b"), warm_transfer("a", "b")):
            await store.add_event(event, T0)
        running.notify("a")
        running.notify("b")
        await running.drained()

        assert store.batch_reads == [["a", "b"]]
        assert store.writes == ["a"]
        assert await store.dirty_stories() == []


async def test_an_event_landing_during_its_storys_cycle_is_folded_in_the_next(
    tmp_path: Path,
) -> None:
    async with dispatcher(tmp_path) as (running, store, _):
        store.gate = asyncio.Event()
        first = await store.add_event(ringing("a"), T0)
        running.notify(first.story_id)
        await store.reading.wait()  # the cycle has read "a" (one event) and is folding it
        second = await store.add_event(answered("a"), T0)
        running.notify(second.story_id)
        assert store.writes == []  # not processed twice at once
        store.gate.set()
        await running.drained()

        assert store.batch_reads == [["a"], ["a"]]
        assert store.writes == ["a", "a"]
        assert await store.dirty_stories() == []


WARM_TRANSFER = """\
version: 1
timezone: Europe/Amsterdam
destinations:
  support: {slack: {channel: C0123456789}}
routes:
  - name: ignore internal calls
    when: {internal: true}
    drop: true
  - name: everything
    live: support
"""


def outbox_rows(path: Path) -> list[tuple[str, str, int, bool]]:
    """(story, slot, desired version, retracted) of every outbox row."""
    with closing(sqlite3.connect(path)) as conn:
        rows = conn.execute(
            "SELECT story_id, slot, desired_version, content IS NULL FROM outbox"
            " ORDER BY story_id, slot"
        ).fetchall()
    return [(str(r[0]), str(r[1]), int(r[2]), bool(r[3])) for r in rows]


async def test_a_merge_landing_while_the_absorbed_story_is_folded_withdraws_nothing(
    tmp_path: Path,
) -> None:
    """The README demo's warm transfer: the consult leg's answer and the transfer arrive in
    the same second, the cycle that folds the consult leg (routed nowhere: internal) reads it
    before the transfer merges it into the customer's call, and wrote its empty plan to the
    customer's story: the live message and its thread were withdrawn (deleted), and posted
    again by the next cycle. Now that write is dropped and the merged story is folded whole."""
    async with dispatcher(tmp_path, WARM_TRANSFER) as (running, store, metrics):
        for event in (ringing("a"), answered("a")):
            await store.add_event(event, T0)
        running.notify("a")
        await running.drained()
        before = outbox_rows(tmp_path / "bridge.db")
        (root,) = [r for r in before if r[1] == "root"]
        posted = SlotKey("a", "support", "slack", "root")  # delivery posted the live message
        await store.posted_next(posted, root[2], "ts-root", channel="C0123456789", now=T0)

        store.gate = asyncio.Event()
        store.reading.clear()
        await store.add_event(consult_ringing("b"), T0)
        running.notify("b")
        await store.reading.wait()  # the cycle has read "b" alone and is folding it
        merged = await store.add_event(warm_transfer("a", "b"), T0)
        assert merged.story_id == "a"
        running.notify("a")
        store.gate.set()
        await running.drained()

        rows = outbox_rows(tmp_path / "bridge.db")
        # The posted root gets one new version, the edit that shows the transfer. Before, it
        # got two: withdrawn (empty: delivery deletes the message and its thread) by the
        # consult leg's plan, then restored by the next cycle (posted anew).
        assert [r for r in rows if r[3] or not r[1].startswith(("root", "reply:"))] == []
        assert ("a", "root", root[2] + 1, False) in rows
        assert await store.dirty_stories() == []
        assert metrics.dispatched.labels("stale")._value.get() == 1  # the dropped fold


async def test_the_backlog_and_cycle_times_are_exported(tmp_path: Path) -> None:
    async with dispatcher(tmp_path) as (running, store, metrics):
        store.gate = asyncio.Event()
        for call in ("a", "b", "c"):
            await store.add_event(ringing(call), T0)
        running.notify("a")
        await store.reading.wait()  # "a" is in a cycle
        running.notify("b")
        running.notify("c")

        def sample(name: str) -> float | None:
            return metrics.registry.get_sample_value(name)

        assert sample("callbridge_dispatch_backlog") == 3
        store.gate.set()
        await running.drained()
        assert sample("callbridge_dispatch_backlog") == 0
        assert sample("callbridge_dispatch_cycle_seconds_count") == 2


async def test_an_unreachable_store_fails_the_cycle_once_and_loses_nothing(
    tmp_path: Path,
) -> None:
    async with dispatcher(tmp_path) as (running, store, metrics):
        for call in ("a", "b"):
            await store.add_event(ringing(call), T0)
        store.down = 1
        running.notify("a")
        running.notify("b")
        await running.drained()

        errors = metrics.registry.get_sample_value(
            "callbridge_store_errors_total", {"operation": "dispatch"}
        )
        assert errors == 1  # one error for the cycle, not one per story
        assert store.writes == []
        assert await store.dirty_stories() == ["a", "b"]  # what the poller finds later

        assert await running.resume() == 2
        await running.drained()
        assert sorted(store.writes) == ["a", "b"]
        assert await store.dirty_stories() == []


# With missed-call alerts: one caller's missed calls stack into one callback case.
MISSED_TOO = LIVE_ONLY.replace("    live: support\n", "    live: support\n    missed: support\n")


async def thirty_missed_calls(running: Dispatcher, store: Counting) -> list[str]:
    """Thirty missed calls from one caller, 100 s apart, all stored before the first
    cycle (so one cycle refolds them all); returns once the dispatcher has drained."""
    calls = [f"m{n:02d}" for n in range(30)]
    for n, call in enumerate(calls):
        await store.add_event(ringing(call, seconds=100 * n), T0)
        await store.add_event(ended(call, seconds=100 * n + 30, reason="no-answer"), T0)
    for call in calls:
        running.notify(call)
    await running.drained()
    return calls


async def test_a_cycle_reads_a_callers_case_facts_once_for_all_their_missed_calls(
    tmp_path: Path,
) -> None:
    """Thirty missed calls from one caller, refolded in one cycle: each folds the caller's
    whole case history, read from the store once for the cycle, not once per call (thirty
    copies of every fact at once made the memory peaks of issue 13's fuzz)."""
    async with dispatcher(tmp_path, MISSED_TOO) as (running, store, _):
        calls = await thirty_missed_calls(running, store)

        assert store.batch_reads[0] == calls
        assert sorted(set(store.writes)) == calls  # every story folded, with its case
        # one read per cycle that refolded them (the first, and a refold or two of the case
        # alert their writes changed), instead of one per story and cycle (30 or more)
        assert store.case_reads <= len(store.batch_reads) <= 5, store.batch_reads


async def test_a_caller_past_the_case_facts_cap_folds_its_newest_facts_and_settles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Thirty missed calls from one caller with the cap on a number's case facts lowered to
    ten: the refolds read the newest ten, the older misses count as archived (no alert of
    their own), the one case is opened by the oldest miss still in the window, the metric
    counts the capped refolds, and the dispatcher settles (nothing left dirty)."""
    monkeypatch.setattr(sqlite_cases, "MAX_FACTS_PER_NUMBER", 10)
    async with dispatcher(tmp_path, MISSED_TOO) as (running, store, metrics):
        await thirty_missed_calls(running, store)

        assert await store.dirty_stories() == []
        with closing(sqlite3.connect(tmp_path / "bridge.db")) as db:
            cases = db.execute("SELECT case_id FROM cases").fetchall()
        assert cases == [("m20",)]  # (closed: it expired long before the test's clock)
        capped = metrics.registry.get_sample_value("callbridge_callback_case_facts_capped_total")
        assert capped is not None
        assert capped >= 30


# -- every scenario, every event landing mid-fold -------------------------------------------

EXAMPLE_RULES = (Path(__file__).resolve().parents[1] / "rules" / "example.yaml").read_text()
FAR = datetime(2100, 1, 1, tzinfo=UTC)  # delivery below sends whatever is pending
RECEIVED = FakeClock().now  # the events arrive at the dispatcher's own time


def withdrawn(path: Path) -> set[tuple[str, str, str]]:
    """The posted messages the outbox wants withdrawn now (a delete in chat, as soon as a
    delivery running alongside reads it)."""
    with closing(sqlite3.connect(path)) as conn:
        rows = conn.execute(
            "SELECT story_id, destination, slot FROM outbox WHERE content IS NULL"
            " AND ref IS NOT NULL AND posted_version < desired_version"
        ).fetchall()
    return {(str(r[0]), str(r[1]), str(r[2])) for r in rows}


async def deliver_everything(store: Counting) -> None:
    """Post every pending slot as delivery would, recording each post."""
    while pending := await store.store.due(FAR, limit=1000):
        for item in pending:
            ref = None if item.content is None else f"ref-{item.key.slot}-{item.version}"
            await store.store.posted_next(item.key, item.version, ref, channel="", now=FAR)


def subdir(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.mkdir()
    return path


@dataclass(frozen=True)
class Pressed:
    """A press on the case's alert, stored as the interactivity endpoints store it (at the
    dispatcher's time plus ``seconds``, so a flow's presses keep their order)."""

    press: Press
    key: CaseKey  # the case the alert's buttons carry: its number's
    case_id: str  # and its first missed call's story
    seconds: int


Step = Event | Pressed


def scenario_steps(name: str) -> list[Step]:
    """A scenario's events, or a callback case flow's: one customer's calls (stamped before
    the dispatcher's clock) and the presses on its case's alert between them."""
    if name not in CASE_FLOWS:
        return [decode(json.dumps(p).encode()) for p in build(name, ScenarioContext(seed=7))]
    steps: list[Step] = []
    for n, action in enumerate(CASE_FLOWS[name].build(CaseContext(RECEIVED, seed=7))):
        if isinstance(action, Press):
            first = next(s for s in steps if isinstance(s, Event))  # the missed call's
            key = CaseKey("default", first.caller.number or "")
            steps.append(Pressed(action, key, first.call_id, n))
        else:
            steps += [decode(json.dumps(p).encode()) for p in action.payloads]
    return steps


async def land(store: Counting, step: Step) -> list[str]:
    """Store one step; the stories it marks dirty."""
    if isinstance(step, Pressed):
        at = RECEIVED + timedelta(seconds=step.seconds)
        click = Click(
            click_id=f"press-{step.seconds}",
            case_id=step.case_id,
            at=at,
            action=step.press.action,
            user_id=step.press.user_id,
            user=step.press.user,
        )
        added = await store.store.add_click(step.key, click, at, f"sig-{step.seconds}")
        assert added.status == "accepted", added
        return list(added.refold)
    return [(await store.add_event(step, RECEIVED)).story_id]


async def play(
    tmp_path: Path, steps: list[Step], *, land_mid_fold: int | None
) -> tuple[set[tuple[str, str, str]], list[tuple[str, str, str, bytes]], list[str | None]]:
    """Each step (an event, a press) folded and delivered before the next; with
    ``land_mid_fold=k``, step ``k + 1`` lands while the cycle that read step ``k`` folds it.
    Returns every posted message that a dispatcher write wanted withdrawn, the messages at
    the end, and how each case ended (None: open)."""
    wanted_gone: set[tuple[str, str, str]] = set()
    db = tmp_path / "bridge.db"
    async with dispatcher(tmp_path, EXAMPLE_RULES) as (running, store, _):
        store.after_write = lambda: wanted_gone.update(withdrawn(db))
        n = 0
        while n < len(steps):
            dirty = await land(store, steps[n])
            if n == land_mid_fold and n + 1 < len(steps):
                store.gate = asyncio.Event()
                store.reading.clear()
                for story_id in dirty:
                    running.notify(story_id)
                await store.reading.wait()  # the cycle has read step n, and folds it
                for story_id in await land(store, steps[n + 1]):
                    running.notify(story_id)
                store.gate.set()
                n += 1
            for story_id in dirty:
                running.notify(story_id)
            await running.drained()
            await deliver_everything(store)
            n += 1
        with closing(sqlite3.connect(db)) as conn:
            rows = conn.execute(
                "SELECT story_id, destination, slot, content FROM outbox"
                " WHERE content IS NOT NULL ORDER BY 1, 2, 3"
            ).fetchall()
            cases = conn.execute("SELECT how FROM cases").fetchall()
    messages = [(str(r[0]), str(r[1]), str(r[2]), bytes(r[3])) for r in rows]
    return wanted_gone, messages, [c[0] for c in cases]


@pytest.mark.parametrize("name", sorted(SCENARIOS) + sorted(CASE_FLOWS))
async def test_an_event_landing_mid_fold_withdraws_nothing_one_by_one_would_not(
    tmp_path: Path, name: str
) -> None:
    """The README demo's warm transfer deleted a posted thread and posted it again: the
    consult call's answer was being folded when the transfer landed. For every scenario (and
    every callback case flow: one customer's calls, whose case facts join their stories, and
    the presses on its alert) and every pair of consecutive steps, the later landing while
    the cycle that read the earlier folds it: no posted message is withdrawn that folding the
    steps one by one does not withdraw, and the messages end the same."""
    steps = scenario_steps(name)
    serial, serial_rows, cases = await play(subdir(tmp_path, "serial"), steps, land_mid_fold=None)
    if name in CASE_FLOWS:  # the flow's case ends as the flow says (its presses counted)
        closed = CASE_FLOWS[name].expected.closed
        # (its clock does not run here: the janitor that expires cases is not started)
        assert cases == [None if closed == "expired" else closed], cases
    for k in range(len(steps) - 1):
        raced, raced_rows, raced_cases = await play(
            subdir(tmp_path, f"race-{k}"), steps, land_mid_fold=k
        )
        assert raced <= serial, (k, raced - serial)
        assert (raced_rows, raced_cases) == (serial_rows, cases), k
