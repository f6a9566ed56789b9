"""Dispatcher: after an event is stored, refold its call story, route it, and record the
chat messages it should have in the store's outbox (the delivery layer sends them).

Work runs in cycles: a cycle takes the stories notified since the last one (up to
``batch``), reads them in one store read, refolds and plans each, and writes each story's
plan and state (the writes of one cycle share the store's group commit). Cycles start at
most every ``cycle_interval``, and take at most ``max_share`` of the time when they run back
to back: under overload, acknowledging webhooks comes first, the dispatcher falls behind and
folds more events per story at once, so its cost follows the number of busy calls rather
than the event rate (after a burst of 20 000 events at ~3 400 events/s on the benchmark
machine, chat messages lag by ~5 s). A story is in at most one cycle at a time (one notified
during its cycle is processed again in the next). The store's dirty marks are the truth: on
start, and every ``poll_interval`` as a safety net, every dirty story is queued again, so a
crash or a missed notification delays an emission but never loses it. A janitor closes stale
calls and applies retention.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import msgspec
import structlog

from bridge import logs
from bridge.core.calls import Call, fold
from bridge.core.plan import DECIDED, plan, plan_decided, visible
from bridge.deliver.casework import CaseHistories, case_plan
from bridge.deliver.digests import Digests
from bridge.deliver.rulebook import Rulebook, Rules
from bridge.metrics import Metrics
from bridge.rules import route, targets
from bridge.store import CaseRow, CorruptData, Emitted, PlanRequest, Store, StoreError, Story
from bridge.store.health import StoreBackoff, StoreHealth

log = structlog.get_logger("bridge.deliver.dispatcher")

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class DispatchOptions:
    batch: int = 256  # stories refolded per cycle
    yield_every: int = 8  # stories started per turn of the event loop within a cycle
    # Seconds: a cycle starts at most this often. The first event after a quiet moment is
    # folded at once; under steady load a cycle gathers a quarter second of events (one fold
    # and one plan per call for all of them, one read, writes that share a commit). A live
    # message thus lags at most that, well under a chat channel's own pace (~1 message/s);
    # at 10 calls/s it costs 30 % less CPU per event than 50 ms (docs/benchmarks.md).
    cycle_interval: float = 0.25
    max_share: float = 0.25  # of the time, at most, spent in cycles when they run back to back
    max_pause: float = 1.0  # seconds: the longest rest after a cycle (one slowed by the store)
    poll_interval: float = 5.0
    janitor_interval: float = 60.0
    stale_after: timedelta = timedelta(hours=4)
    retention: timedelta = timedelta(days=14)
    # How long a purged call's ids are remembered, so that a provider's redelivery after
    # retention is answered as a duplicate instead of being posted again.
    redelivery_window: timedelta = timedelta(days=7)
    missed_settle: timedelta = timedelta(seconds=8)  # a late `in-progress` may still come

    def __post_init__(self) -> None:
        if (
            self.batch < 1
            or self.yield_every < 1
            or not 0 < self.max_share <= 1
            or self.max_pause < 0
        ):
            raise ValueError(
                "DispatchOptions: batch and yield_every must be >= 1, "
                "0 < max_share <= 1 and max_pause >= 0"
            )


def digest(call: Call, case: bytes = b"") -> str:
    """Identifies what a person would see: bookkeeping-only changes (another event that adds
    nothing visible, a later ``last_event_at``) do not count as a change; ``case``: what the
    story's messages show of its callback case."""
    seen = hashlib.sha256(msgspec.json.encode(visible(call)))
    if case:
        seen.update(b"\0case\0" + case)
    return seen.hexdigest()[:32]


class Dispatcher:
    def __init__(
        self,
        store: Store,
        rules: Rules,
        metrics: Metrics,
        clock: Clock,
        options: DispatchOptions = DispatchOptions(),
        on_planned: Callable[[], None] = lambda: None,
        *,
        store_health: StoreHealth | None = None,
    ) -> None:
        """``store_health``: told how the store's writes go (for /readyz)."""
        self._store = store
        # While the store fails, each loop waits longer between attempts and logs its
        # failing state once per interval (bridge/store/health.py), not once per story.
        self._backoff = StoreBackoff("dispatch", store_health)
        self._poll_backoff = StoreBackoff("dispatch-poll", store_health)
        self._janitor_backoff = StoreBackoff("janitor", store_health)
        self._rulebook = Rulebook(store, rules, clock)
        self._digests = Digests(store)
        self._on_planned = on_planned
        self._metrics = metrics
        self._clock = clock
        self._options = options
        self._queued: dict[str, None] = {}  # insertion-ordered: oldest notification first
        self._wake = asyncio.Event()
        self._running: set[str] = set()
        metrics.dispatch_backlog.set_function(lambda: len(self._queued) + len(self._running))
        self._again: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._idle = asyncio.Event()
        self._idle.set()
        self._started = False

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        self._started = True
        self._tasks.append(asyncio.create_task(self._cycles(), name="dispatch-cycles"))
        self._tasks.append(asyncio.create_task(self._poller(), name="dispatch-poller"))
        self._tasks.append(asyncio.create_task(self._janitor(), name="dispatch-janitor"))

    async def stop(self, timeout: float = 10.0) -> None:
        """Finish what is queued (up to ``timeout``), then cancel and await every task."""
        try:
            await asyncio.wait_for(self.drained(), timeout)
        except TimeoutError:
            log.warning("dispatcher.stop_timeout", pending=len(self._queued) + len(self._running))
        self._started = False
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        # What was still queued stays dirty in the store: the next leader resumes it.
        self._queued.clear()
        self._running.clear()
        self._again.clear()
        self._idle.set()
        self._tasks.clear()

    async def drained(self) -> None:
        """Wait until nothing is queued or being processed (used by shutdown and tests)."""
        while self._queued or self._running:
            self._idle.clear()
            await self._idle.wait()

    # -- scheduling ----------------------------------------------------------------------
    def notify(self, story_id: str) -> None:
        """Schedule a refold of ``story_id`` (cheap; repeated notifications coalesce).

        Ignored unless this instance leads: the leader finds the story dirty in the store."""
        if not self._started:
            return
        if story_id in self._running:
            self._again.add(story_id)
        elif story_id not in self._queued:
            self._queued[story_id] = None
            self._idle.clear()
            self._wake.set()

    async def resume(self) -> int:
        """Queue every story the store says is dirty; returns how many."""
        dirty = await self._store.dirty_stories()
        for story_id in dirty:
            self.notify(story_id)
        return len(dirty)

    # -- work ------------------------------------------------------------------------------
    async def _cycles(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            started = loop.time()
            batch = list(itertools.islice(self._queued, self._options.batch))
            for story_id in batch:
                del self._queued[story_id]
            self._running.update(batch)
            try:
                await self._cycle(batch)
            finally:
                self._running.clear()
                for story_id in batch:
                    if story_id in self._again:
                        self._again.discard(story_id)
                        self.notify(story_id)
                if self._queued:
                    self._wake.set()
                elif not self._running:
                    self._idle.set()
            # Under overload the webhooks come first: cycles take at most ``max_share`` of
            # the time, and the dispatcher, behind, folds more events per story at once.
            spent = loop.time() - started
            self._metrics.dispatch_cycle.observe(spent)
            rest = min(spent * (1 / self._options.max_share - 1), self._options.max_pause)
            rest = max(rest, self._backoff.wait())  # the store fails: wait longer each time
            await asyncio.sleep(max(self._options.cycle_interval - spent, rest))

    async def _cycle(self, batch: list[str]) -> None:
        """Refold the stories of one cycle; one failing story never holds up the others."""
        try:
            found: dict[str, Story] | None = await self._store.stories(batch)
        except CorruptData as err:  # one story cannot be read: read them one by one
            log.warning("dispatch.batch_read_failed", stories=len(batch), error=str(err))
            found = None
        except StoreError as err:  # the store is unavailable: they stay dirty, polled later
            self._metrics.store_errors.labels("dispatch").inc()
            self._backoff.failed(err)
            return
        histories = CaseHistories(self._store)  # a number's case facts, read once per cycle
        if found is None:
            await self._fold_all([(story_id, None) for story_id in batch], histories)
            return
        # Two ids of one merged story fold once; ids purged meanwhile are simply left out.
        stories = {story.story_id: story for story in found.values()}
        await self._fold_all([(s.story_id, s) for s in stories.values()], histories)

    async def _fold_all(
        self, stories: list[tuple[str, Story | None]], histories: CaseHistories
    ) -> None:
        """Fold a cycle's stories concurrently, starting ``yield_every`` of them per turn of
        the event loop: each start folds and plans synchronously, and a cycle of hundreds
        started at once would hold every webhook waiting behind it."""
        tasks: list[asyncio.Task[None]] = []
        try:
            for i, (story_id, story) in enumerate(stories):
                if i and i % self._options.yield_every == 0:
                    await asyncio.sleep(0)  # webhooks that arrived meanwhile go first
                tasks.append(asyncio.create_task(self._guarded(story_id, story, histories)))
            await asyncio.gather(*tasks)
        finally:  # cancelled (stop): no fold is left behind unowned
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _guarded(self, story_id: str, story: Story | None, histories: CaseHistories) -> None:
        try:
            if story is None:
                story = await self._store.story(story_id)
                if story is None:
                    return
            await self.process(story, histories=histories)
        except StoreError as err:  # it stays dirty: the poller queues it again
            self._metrics.store_errors.labels("dispatch").inc()
            self._metrics.dispatched.labels("error").inc()
            self._backoff.failed(err)
        except Exception:
            self._metrics.dispatched.labels("error").inc()
            log.exception("dispatch.failed", story_id=story_id)
        else:
            self._backoff.succeeded()

    async def process(
        self,
        story: Story,
        *,
        now: datetime | None = None,
        histories: CaseHistories | None = None,
    ) -> bool:
        """Refold one story and plan its messages if it changed. Returns True if it did.

        A story is routed, from all its events, by the rules it was first routed by
        (:mod:`bridge.deliver.rulebook`): late events and merges re-decide it, a reload
        does not."""
        if not story.events:
            return False
        current = self._rulebook.current()
        when = now or self._clock()
        heard = story.last_received_at
        call = fold(
            story.events,
            now=when,
            stale_after=self._options.stale_after,
            silence=None if heard is None else when - heard,
        )
        ruleset = await self._rulebook.for_story(story)
        result = None if ruleset is None else route(ruleset, call)
        cases = None
        if ruleset is not None and result is not None:
            cases = await case_plan(
                histories or CaseHistories(self._store),
                ruleset,
                call,
                result,
                story.story_id,
                when,
            )
        new_digest = digest(call, b"" if cases is None else cases.digest())
        changed = new_digest != story.digest
        with structlog.contextvars.bound_contextvars(call_id=call.call_id):
            request, pinned, routes = None, None, []
            if cases is not None and cases.capped:
                self._metrics.case_facts_capped.inc()
            if changed:
                if ruleset is not None and result is not None and cases is not None:
                    if story.digest is None and result.unmatched:
                        direction = "inbound" if call.direction == "inbound" else "outbound"
                        self._metrics.unmatched.labels(direction).inc()
                        log.info("dispatch.unmatched", dialled=call.dialled)
                    where = cases.targets(ruleset, targets(ruleset, result))
                    planned = plan(call, str(ruleset.timezone), where, case=cases.case)
                    routes, pinned = list(result.matched_routes), ruleset.version
                else:  # ended before its rules were kept: its decisions stand
                    decided = await self._store.decided(story.story_id)
                    planned = plan_decided(call, str(current.timezone), decided)
                    routes = [DECIDED]
                request = PlanRequest(
                    planned,
                    now=when,
                    missed_due=when + self._options.missed_settle,
                    allow_new=ruleset is not None,
                )
            state = Emitted(
                story.max_seq,
                new_digest,
                call.ended_at,
                call.last_event_at,
                pinned,
                calls=len(story.call_ids),
            )
            # One transaction: the messages the story should have, its case facts and what
            # was emitted.
            write = None if cases is None or not changed else cases.write()
            done = await self._store.dispatched(story.story_id, state, request, write)
            work, clean = done.work, done.clean
            if work:
                self._on_planned()
            for other in done.refold:
                self.notify(other)
            for closed in done.closed:
                self._count_closed(closed)
            if changed and call.stale and story.ended_at is None:
                self._metrics.stale_closed.inc()
            if request is not None and logs.debug_enabled():
                log.debug(
                    "dispatch.planned",
                    phase=call.phase,
                    routes=routes,
                    slots=len(request.planned),
                    work=work,
                )
            outcome = "stale" if done.stale else "changed" if changed else "unchanged"
            self._metrics.dispatched.labels(outcome).inc()
        if not clean:
            self.notify(story.story_id)
        return changed

    def _count_closed(self, case: CaseRow) -> None:
        how = case.how or "done"
        self._metrics.cases_closed.labels(how).inc()
        if how != "expired" and case.closed_at is not None:
            waited = (case.closed_at - case.opened_at).total_seconds()
            self._metrics.case_wait.labels(how).observe(max(waited, 0.0))
        log.info("case.closed", case=case.case_id, how=how)

    async def _poller(self) -> None:
        while True:
            try:
                await self.resume()
            except StoreError as err:
                self._metrics.store_errors.labels("poll").inc()
                self._poll_backoff.failed(err)
            else:
                self._poll_backoff.succeeded(wrote=False)
            await asyncio.sleep(max(self._options.poll_interval, self._poll_backoff.wait()))

    async def _janitor(self) -> None:
        while True:
            try:
                await self.sweep()
            except StoreError as err:
                self._metrics.store_errors.labels("janitor").inc()
                self._janitor_backoff.failed(err)
            else:
                self._janitor_backoff.succeeded()
            await asyncio.sleep(max(self._options.janitor_interval, self._janitor_backoff.wait()))

    async def sweep(self) -> None:
        """Close stale calls, plan the daily digest when its time has come, purge ended calls
        past retention (both counted from when the bridge last received an event of the
        call), forget what retention purged once a provider can no longer redeliver it,
        refresh the active gauge."""
        now = self._clock()
        for story_id in await self._store.open_stories(now - self._options.stale_after):
            self.notify(story_id)  # the worker's fold closes it as stale
        for story_id in await self._store.due_cases(now):
            self.notify(story_id)  # a case's escalation or expiry is due
        if digests := await self._digests.plan(self._rulebook.current(), now):
            self._metrics.digests.inc(digests)
            self._on_planned()
        purged = await self._store.purge(now - self._options.retention, now=now)
        if purged:
            self._metrics.purged.inc(purged)
            log.info("retention.purged", calls=purged, older_than=str(self._options.retention))
        await self._rulebook.keep(self._rulebook.current(), refresh=True)
        await self._store.forget(now - self._options.redelivery_window)
        self._metrics.active_calls.set(await self._store.count_open())
        self._metrics.cases_open.set(await self._store.count_open_cases())
