"""Delivery: make what is posted in Slack/Teams match what the store says is desired.

One loop reads the due slots of the outbox and, per channel, sends at most one request at a
time: the most important slot whose pacing bucket has a token. A channel's send records its
outcome and reads the channel's due work in one store operation (``Store.posted_next``), and
goes on with the next slot chosen the same way while there is one it may send now, so a
channel working through a backlog costs no round and no read of its own per message.
Priorities when the budget is short (the store ranks them: ``Outgoing.priority``, migration
0006), what is wrong in chat first, then what a person is looking at: (0) retractions (an
alert for a call answered after all, a transfer's leftover message) and corrections of
posted alerts; (1) new missed alerts and callback case steps; (2) the current state of calls
still ringing or talking (their first post and their edits), and any other first post; (3)
the end states of calls that are over (the thread already tells it) and thread replies (in
story order, once the root exists).
Only the newest desired content is ever sent: a burst of changes costs one update.

Crash safety: a slot is marked in the store before a post goes out. If the process dies (or
the request times out) before the answer is stored, the next attempt first looks the message
up by its metadata and updates it instead of posting again. The residual risk is documented
in the README (a platform that cannot look messages up may show a duplicate).

Retries: retryable errors back off exponentially with jitter (honouring ``Retry-After``, which
also pauses the bucket); permanent errors stop that slot, loudly; auth errors pause the whole
platform until its credentials work again.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final

import structlog

from bridge.core import plan
from bridge.core.slots import REPLY_PREFIXES, posted_as
from bridge.deliver.pacing import Action, Pacer
from bridge.deliver.sendable import action_of, candidates, people_of
from bridge.metrics import Metrics
from bridge.notify import (
    AuthError,
    MessageMetadata,
    MessageRef,
    Notifier,
    OutgoingMessage,
    PermanentError,
    RetryableError,
    decode_ref,
    encode_ref,
)
from bridge.store import Lane, Outgoing, Store, StoreError
from bridge.store.health import StoreBackoff

log = structlog.get_logger("bridge.deliver.delivery")

EVENT_TYPE: Final = "callbridge_message"
FIND_MARGIN: Final = timedelta(minutes=5)  # clock skew between us and the platform
MAX_LOOKUPS: Final = 20  # user lookups per message (a call group may ring hundreds)
# Failed requests in a row (not rate limits) that make a platform's next success end an
# outage; one message failing on its own is fewer, so it keeps its backoff.
OUTAGE_FAILURES: Final = 3

Render = Callable[[plan.Content, Mapping[str, str], str | None], OutgoingMessage]
"""(content, e-mail -> platform user id, link to the live message) -> message."""


@dataclass(frozen=True, slots=True)
class Platform:
    notifier: Notifier
    render: Render
    link: Callable[[MessageRef], str | None] = lambda ref: None
    # Whether ``notifier.find`` can ever find a message. The durable "maybe posted" mark
    # before a post exists only so that a post whose answer a crash lost is looked up instead
    # of posted twice: a platform that cannot look up (dry-run, Teams' Bot Connector) would
    # post again either way, so it is spared that fsync'd write per message.
    finds: bool = True


async def render_message(
    platform: Platform, content: plan.Content, root: MessageRef | None
) -> OutgoingMessage:
    """The message ``content`` is on ``platform``: the people it can mention looked up (best
    effort), and a link to ``root`` (the story's live message in the same destination, which
    an alert or a summary links to)."""
    users = await users_of(platform.notifier, content)
    return platform.render(content, users, None if root is None else platform.link(root))


async def users_of(notifier: Notifier, content: plan.Content) -> dict[str, str]:
    """E-mail -> platform user id for the people in the message (best effort)."""
    users: dict[str, str] = {}
    emails = {e for p in people_of(content) for e in p.user_emails}
    for email in sorted(emails)[:MAX_LOOKUPS]:
        try:
            found = await notifier.lookup_user(email)
        except (RetryableError, PermanentError, AuthError) as err:
            log.info("delivery.lookup_failed", code=err.code)
            break  # names instead of mentions; never hold a message back for this
        if found:
            users[email] = found
    return users


@dataclass(frozen=True, slots=True)
class DeliveryOptions:
    max_in_flight: int = 8
    batch: int = 200
    # Under load a round starts at most this often (real seconds): completions and new plans
    # that arrive meanwhile are handled together by one store query instead of one each.
    min_round_interval: float = 0.02
    base_backoff: float = 1.0
    max_backoff: float = 300.0
    auth_pause: float = 60.0
    # After a store error, look again this much later (clock seconds). Otherwise the loop
    # reads the store only when something can be sent: at the earliest due time or pacing
    # token, or when woken (a new plan, a finished send); idle, it does not read at all.
    idle_poll: float = 5.0
    depth_every: float = 5.0
    # Clock seconds per real second: 1 in production; tests and benchmarks compress time by
    # giving the delivery, the pacer and the fake platform one faster clock.
    time_scale: float = 1.0


class Delivery:
    def __init__(
        self,
        store: Store,
        platforms: Mapping[str, Platform],
        pacer: Pacer,
        metrics: Metrics,
        clock: Callable[[], datetime],
        options: DeliveryOptions = DeliveryOptions(),
        rng: random.Random | None = None,
        *,
        store_backoff: StoreBackoff | None = None,
    ) -> None:
        """``store_backoff``: how the loop waits and logs while the store fails."""
        self._store = store
        self._store_backoff = store_backoff or StoreBackoff("delivery")
        self._platforms = platforms
        self._pacer = pacer
        self._metrics = metrics
        self._clock = clock
        self._options = options
        self._rng = rng or random.Random()  # noqa: S311 (jitter, not security)
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._sends: set[asyncio.Task[None]] = set()
        self._spawned = 0  # sends started, ever
        self._busy_channels: set[tuple[str, str]] = set()
        self._busy_keys: set[tuple[str, str, str, str]] = set()
        # Slots whose send finished while a round was reading the store: that round's copy
        # of them may predate the finished send, so it must not act on it (a duplicate post).
        self._finished: set[tuple[str, str, str, str]] = set()
        self._auth_paused: dict[str, datetime] = {}
        self._failures: dict[str, int] = {}  # platform -> failed requests in a row (not 429)
        self.auth_problems: dict[str, str] = {}
        # Platforms whose last request failed (not a rate limit), with the error: cleared by
        # the platform's next success. Shown by GET /delivery and callbridge_chat_platform_up.
        self.failing: dict[str, str] = {}
        self._depth_at: datetime | None = None
        self._idle = asyncio.Event()
        # The lanes (platform, channel, lane) that had due work when last read, with the
        # actions that work needed: a lane in which pacing holds every one of them back (or
        # whose channel has a request in flight) is not read again until it can send.
        self._lanes: dict[Lane, set[Action]] = {}
        self._stopping = False

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        self._stopping = False
        self._loop_task = asyncio.create_task(self._run(), name="delivery-loop")

    async def stop(self, timeout: float = 10.0) -> None:
        """Let in-flight requests finish (up to ``timeout``), then stop the loop."""
        self._stopping = True  # a channel finishes its request in flight, starts no other
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
            self._loop_task = None
        if self._sends:
            _done, pending = await asyncio.wait(self._sends, timeout=timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def wake(self) -> None:
        self._wake.set()

    async def settled(self) -> None:
        """Wait until nothing is pending at all (due now or later) and nothing is in flight.

        For tests and benchmarks; a slot that can never be sent keeps this waiting.
        """
        self._idle.clear()
        self.wake()
        await self._idle.wait()

    # -- the loop --------------------------------------------------------------------------
    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            paused = self._store_backoff.wait()
            if paused > 0:  # the store fails: no round before the backoff ends, whatever wakes
                await asyncio.sleep(paused)
            started = loop.time()
            self._wake.clear()
            delay: float | None
            spawned = self._spawned
            try:
                delay, pending = await self._round()
            except StoreError as err:
                self._metrics.store_errors.labels("delivery").inc()
                delay, pending = self._store_backoff.failed(err), True
            else:
                if self._spawned == spawned and not self._sends:  # reads worked, no write tried
                    self._store_backoff.succeeded(wrote=False)
            if not pending and not self._sends:
                self._idle.set()
            timeout = None if delay is None else delay / self._options.time_scale
            with suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            spent = loop.time() - started
            if spent < self._options.min_round_interval:
                await asyncio.sleep(self._options.min_round_interval - spent)

    def _shut(self, now: datetime) -> tuple[set[Lane], list[float]]:
        """The lanes that nothing could be sent in now: those of a channel with a request in
        flight (its end wakes the loop), and those with due work whose platform's auth is
        paused or whose every action's pacing bucket is empty; and the seconds until pacing or
        the pause opens each."""
        shut = {(p, c, n) for p, c in self._busy_channels for n in (0, 1)}
        waits: list[float] = []
        for lane, actions in self._lanes.items():
            if lane in shut:
                continue
            platform, channel, _n = lane
            paused = self._auth_paused.get(platform)
            if paused is not None and paused > now:
                shut.add(lane)
                waits.append((paused - now).total_seconds())
            else:
                wait = min(self._pacer.wait(platform, a, channel) for a in actions)
                if wait > 0:
                    shut.add(lane)
                    waits.append(wait)
        return shut, waits

    async def _round(self) -> tuple[float | None, bool]:
        """Start what may be sent now; returns (seconds until worth looking again, or None
        for not until woken; pending)."""
        now = self._clock()
        await self._gauge_depth(now)
        self._finished.clear()
        shut, waits = self._shut(now)
        items = await self._store.due(now, self._options.batch, shut)
        self._lanes = {lane: actions for lane, actions in self._lanes.items() if lane in shut}
        for item in items:
            lane = (item.key.platform, item.channel, 0 if item.ref is None else 1)
            self._lanes.setdefault(lane, set()).add(action_of(item))
        by_channel: dict[tuple[str, str], list[tuple[int, Outgoing]]] = {}
        for rank, item in candidates(items):
            key = _slot_key(item)
            if key not in self._busy_keys and key not in self._finished:
                by_channel.setdefault((item.key.platform, item.channel), []).append((rank, item))
        for channel_key, waiting in by_channel.items():
            if len(self._sends) >= self._options.max_in_flight:
                break
            if channel_key in self._busy_channels:
                continue
            platform = channel_key[0]
            paused = self._auth_paused.get(platform)
            if paused is not None and paused > now:
                waits.append((paused - now).total_seconds())
                continue
            chosen = self._choose(platform, waiting, waits)
            if chosen is not None:
                self._spawn(chosen)
        if self._sends:  # each one's end wakes the loop, which then looks for the next
            return min(waits, default=None), True
        upcoming = await self._store.next_due()
        if upcoming is None:
            self._lanes.clear()
            if self._depth_at is not None:  # nothing pending: no need to count it
                self._metrics.queue_depth.clear()
        elif upcoming > now:
            waits.append((upcoming - now).total_seconds())
        elif not waits:  # due, none of it started, nothing to wake us:
            waits.append(self._options.idle_poll)  # not expected; look again later
        return min(waits, default=None), upcoming is not None

    def _choose(
        self, platform: str, waiting: list[tuple[int, Outgoing]], waits: list[float]
    ) -> Outgoing | None:
        """The most important of a channel's sendable work whose pacing allows it now (the
        waits of those it passes over go to ``waits``)."""
        for _rank, item in sorted(waiting, key=lambda c: (c[0], c[1].desired_at, c[1].order)):
            wait = self._pacer.wait(platform, action_of(item), item.channel)
            if wait <= 0:
                return item
            waits.append(wait)
        return None

    def _next_in_channel(self, sent: Outgoing, following: list[Outgoing]) -> Outgoing | None:
        """What the channel of ``sent`` sends next, chosen from its due work as read when the
        send was recorded, as a round would choose it; None when a round must decide (the
        loop is stopping, the platform's auth is paused, pacing holds everything back)."""
        platform = sent.key.platform
        paused = self._auth_paused.get(platform)
        if self._stopping or (paused is not None and paused > self._clock()):
            return None
        waiting = [
            (rank, item)
            for rank, item in candidates(following)
            if _slot_key(item) not in self._busy_keys
        ]
        return self._choose(platform, waiting, [])

    def _spawn(self, item: Outgoing) -> None:
        """Send ``item``, then its channel's next due work while there is some (each chosen
        from the read that recorded the one before); one request at a time per channel."""
        channel_key = (item.key.platform, item.channel)
        self._busy_channels.add(channel_key)
        self._spawned += 1
        task = asyncio.create_task(self._send_channel(item), name=f"deliver-{item.key.slot[:12]}")
        self._sends.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._sends.discard(t)
            self._busy_channels.discard(channel_key)
            self.wake()

        task.add_done_callback(done)

    async def _send_channel(self, item: Outgoing) -> None:
        following: Outgoing | None = item
        while following is not None:
            slot_key = _slot_key(following)
            self._busy_keys.add(slot_key)
            try:
                following = await self._send_guarded(following)
            finally:
                self._busy_keys.discard(slot_key)
                self._finished.add(slot_key)

    async def _gauge_depth(self, now: datetime) -> None:
        if self._depth_at is not None and now - self._depth_at < timedelta(
            seconds=self._options.depth_every
        ):
            return
        self._depth_at = now
        self._metrics.queue_depth.clear()
        for platform, channel, n in await self._store.pending_counts():
            self._metrics.queue_depth.labels(platform, channel).set(n)

    # -- one request -------------------------------------------------------------------------
    async def _send_guarded(self, item: Outgoing) -> Outgoing | None:
        """Every way out of ``_send`` writes the slot's outcome to the store: a store error
        anywhere backs the whole loop off (a full disk fails every send the same way).
        Returns the channel's next work to send at once, if any."""
        try:
            following = await self._send(item)
        except StoreError as err:
            self._metrics.store_errors.labels("delivery").inc()
            self._store_backoff.failed(err)
            return None
        self._store_backoff.succeeded()
        return following

    async def _send(self, item: Outgoing) -> Outgoing | None:
        """Send one slot's work and record the outcome; after a success, returns what its
        channel sends next (see :meth:`_next_in_channel`)."""
        platform = self._platforms[item.key.platform]
        action = action_of(item)
        log_ctx = {
            "story": item.key.story_id,
            "destination": item.key.destination,
            "slot": item.key.slot,
            "action": action,
        }
        try:
            ref = await self._deliver(item, platform)
        except RetryableError as err:
            await self._retry(item, action, err, log_ctx)
        except AuthError as err:
            await self._auth_failed(item, err, log_ctx)
        except PermanentError as err:
            self._metrics.delivery_failed.labels(item.key.platform, err.code).inc()
            log.error("delivery.gave_up", error=str(err), code=err.code, **log_ctx)
            await self._store.give_up(item.key, f"{err.code}: {err}")
        except StoreError:
            raise  # _send_guarded backs off
        except Exception:
            log.exception("delivery.failed", **log_ctx)
            await self._store.retry_later(
                item.key, due=self._backoff(item, None), error="internal error", maybe_sent=True
            )
        else:
            unlinked = item.kind == "missed" and item.content is not None and not item.root_ref
            now = self._clock()
            kept, following = await self._store.posted_next(
                item.key, item.version, ref, channel=item.channel, now=now, unlinked=unlinked
            )
            await self._platform_works(item.key.platform)
            if not kept and item.ref is None and ref is not None:
                await self._discard(item, ref, log_ctx)
                return None
            latency = (now - item.desired_at).total_seconds()
            self._metrics.delivery_latency.labels(item.key.platform, item.kind).observe(latency)
            self._metrics.delivered.labels(item.key.platform, item.kind, action).inc()
            return self._next_in_channel(item, following)
        return None

    async def _discard(self, item: Outgoing, ref: str, log_ctx: Mapping[str, str]) -> None:
        """A new message whose slot a re-plan or a merge removed while it was being posted
        (its story's thread was merged away, its step replaced): no slot wants it, delete it
        so it neither stays as a stray nor is posted twice (a moved slot is posted again)."""
        log.warning("delivery.discarded", reason="slot gone while posting", **log_ctx)
        message = decode_ref(ref)
        assert message is not None
        try:
            await self._paced(item.key.platform, "delete", message.channel)
            await self._platforms[item.key.platform].notifier.delete(message)
        except (RetryableError, PermanentError, AuthError) as err:
            log.error("delivery.discard_failed", error=str(err), code=err.code, **log_ctx)

    async def _deliver(self, item: Outgoing, platform: Platform) -> str | None:
        """Do what the slot needs; returns the encoded ref the platform now shows."""
        notifier, channel = platform.notifier, item.channel
        ref = decode_ref(item.ref)
        root = decode_ref(item.root_ref)
        thread = root if item.key.slot.startswith(REPLY_PREFIXES) else None
        if item.content is None:
            if ref is None and item.attempted:  # it may have been posted: look, then delete
                ref = await self._find(item, notifier, thread)
            if ref is not None:
                await self._paced(item.key.platform, "delete", channel)
                await notifier.delete(ref)
            return None
        content = plan.decode(item.content)
        message = replace(
            await render_message(platform, content, root if item.kind != "live" else None),
            metadata=MessageMetadata(
                EVENT_TYPE,
                {
                    "story": item.key.story_id,
                    "destination": item.key.destination,
                    "slot": item.key.slot,
                },
            ),
        )
        if ref is None and item.attempted:
            ref = await self._find(item, notifier, thread)
            if ref is not None and thread is not None:
                return encode_ref(ref)  # a reply is a log line: found is posted, never edited
        if ref is None:
            if platform.finds:
                await self._store.begin_attempt(item.key, self._clock())
            await self._paced(item.key.platform, "post", channel)
            ref = await notifier.post(channel, message, thread=thread)
        else:
            await self._paced(item.key.platform, "update", channel)
            await notifier.update(ref, message)
        return encode_ref(ref)

    async def _paced(self, platform: str, action: Action, channel: str) -> None:
        """Wait for a token of every bucket the request costs, then take it. The round only
        starts a send whose bucket has a token, but several sends started in one round (other
        channels sharing a workspace bucket) or a second request of one send (a post after a
        lookup) would overdraw it: every request is paced here, at the moment it is made."""
        # A token comes with time, not with an event: sleeping until it is due is the wait.
        while (wait := self._pacer.wait(platform, action, channel)) > 0:  # noqa: ASYNC110
            await asyncio.sleep(wait / self._options.time_scale)
        self._pacer.take(platform, action, channel)

    async def _find(
        self, item: Outgoing, notifier: Notifier, thread: MessageRef | None
    ) -> MessageRef | None:
        """The message an earlier attempt may have posted (its answer was lost), if any.

        Messages carry their slot in their metadata; a slot renamed since (an orphan of a
        merge) is found by the name it was posted under."""
        await self._paced(item.key.platform, "find", item.channel)
        story, slot = posted_as(item.key.story_id, item.key.slot)
        ref = await notifier.find(
            item.channel,
            EVENT_TYPE,
            {"story": story, "slot": slot},
            item.created_at - FIND_MARGIN,
            thread=thread,
        )
        if ref is not None:
            log.info("delivery.recovered", story=item.key.story_id, slot=item.key.slot)
            self._metrics.recovered.labels(item.key.platform).inc()
        return ref

    def problems(self) -> dict[str, str]:
        """Platform -> why delivery to it fails now (credentials, or its last request)."""
        return {**self.failing, **self.auth_problems}

    async def _platform_works(self, platform: str) -> None:
        """A request to the platform succeeded. After an outage (several failures in a row)
        what backed off during it is due now, most important first (the waiting alerts), not
        each at the end of its own backoff, which grew for as long as the outage lasted."""
        self.auth_problems.pop(platform, None)
        self.failing.pop(platform, None)
        self._metrics.chat_up.labels(platform).set(1)
        if self._failures.pop(platform, 0) >= OUTAGE_FAILURES:
            resumed = await self._store.resume(platform, self._clock())
            log.info("delivery.platform_back", platform=platform, resumed=resumed)
            self.wake()

    def _platform_fails(self, platform: str, problem: str) -> None:
        self.failing[platform] = problem
        self._failures[platform] = self._failures.get(platform, 0) + 1
        self._metrics.chat_up.labels(platform).set(0)

    def _backoff(self, item: Outgoing, retry_after: float | None) -> datetime:
        if retry_after is not None:
            seconds = retry_after
        else:
            seconds = min(
                self._options.base_backoff * 2 ** min(item.attempts, 16), self._options.max_backoff
            )
            seconds *= self._rng.uniform(0.8, 1.2)
        return self._clock() + timedelta(seconds=seconds)

    async def _retry(
        self, item: Outgoing, action: Action, err: RetryableError, log_ctx: Mapping[str, str]
    ) -> None:
        limited = err.code == "ratelimited"
        if limited:
            self._metrics.rate_limited.labels(item.key.platform, err.method).inc()
            self._pacer.pause(item.key.platform, action, item.channel, err.retry_after or 1.0)
        else:
            self._platform_fails(item.key.platform, f"{err.code}: {err}")
        self._metrics.retries.labels(item.key.platform, err.code).inc()
        log.warning(
            "delivery.retry", error=str(err), code=err.code, attempts=item.attempts + 1, **log_ctx
        )
        await self._store.retry_later(
            item.key,
            due=self._backoff(item, err.retry_after),
            error=f"{err.code}: {err}",
            maybe_sent=_maybe_sent(item, action, limited=limited),
        )

    async def _auth_failed(
        self, item: Outgoing, err: AuthError, log_ctx: Mapping[str, str]
    ) -> None:
        until = self._clock() + timedelta(seconds=self._options.auth_pause)
        self._auth_paused[item.key.platform] = until
        self.auth_problems[item.key.platform] = str(err)
        self._metrics.chat_up.labels(item.key.platform).set(0)
        self._metrics.delivery_failed.labels(item.key.platform, err.code).inc()
        log.error("delivery.auth_failed", error=str(err), code=err.code, **log_ctx)
        await self._store.retry_later(
            item.key, due=until, error=f"{err.code}: {err}", maybe_sent=item.attempted
        )


def _maybe_sent(item: Outgoing, action: Action, *, limited: bool) -> bool:
    """Whether the slot keeps its "maybe posted" mark after a failed request: a post that
    failed may have reached the platform (unless refused as rate-limited: not carried out),
    and a mark set by an earlier attempt stays until a lookup answers, whatever the lookup
    (or the delete after it) failed with; clearing it would post the message again."""
    return item.attempted or (action == "post" and not limited)


def _slot_key(item: Outgoing) -> tuple[str, str, str, str]:
    return (item.key.story_id, item.key.destination, item.key.platform, item.key.slot)
