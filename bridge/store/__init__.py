"""Durable storage of provider events and of each call story's bookkeeping.

The store is the single source of truth: the dispatcher keeps no state that a restart (or,
with PostgreSQL, another instance) could not rebuild from here.

Vocabulary:

* **event**: one accepted notification, stored before it is acknowledged, with a
  monotonically increasing ``seq`` (arrival order) and a ``dedupe_key``.
* **story**: the set of provider call ids that make one call for the user. A transfer that
  names ``merged_id`` joins the two ids' stories. A story's id is the first call id the store
  saw of it; when two stories merge, the one first seen survives and the other's ids now
  resolve to it (:meth:`Store.resolve`).
* **dirty**: a story has events the dispatcher has not yet folded and emitted. Stories are
  marked dirty in the same transaction that stores their event, and cleaned by
  :meth:`Store.save_state` only when no newer event arrived in between.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal, Protocol

from bridge.core.cases import CaseKey, Click, Fact
from bridge.core.events import Event
from bridge.core.slots import Decided, Planned
from bridge.store.outbox import DigestMessage, Lane, Outgoing, ShownAlert, SlotKey

__all__ = [
    "MAX_EVENTS_PER_STORY",
    "Added",
    "CaseHistory",
    "CaseRow",
    "CaseWrite",
    "ClickAdded",
    "CorruptData",
    "Decided",
    "Dispatched",
    "Emitted",
    "Lane",
    "Outgoing",
    "PlanRequest",
    "Planned",
    "ShownAlert",
    "SlotKey",
    "Store",
    "StoreError",
    "Story",
]

AddStatus = Literal["accepted", "duplicate", "refused"]

# Events one story (a call, with the calls merged into it) may hold. A real call has tens;
# more is a misbehaving or hostile client, and every event is folded again on each change.
MAX_EVENTS_PER_STORY: Final = 200

# Callback case facts of one caller number that a refold folds: the newest ones. A real
# customer has a handful (missed calls, callbacks, clicks) within the retention window; a
# number with more is a robot or a hostile client, and every refold of its stories reads and
# folds them all. Older ones count as archived (as retention's), the same for every story.
MAX_FACTS_PER_NUMBER: Final = 200


class StoreError(Exception):
    """The store cannot be reached or failed; the caller should answer 503 and retry later."""


class CorruptData(StoreError):
    """Something stored cannot be read back (e.g. an event that no longer decodes): retrying
    will not help, but other reads are fine."""


@dataclass(frozen=True, slots=True)
class Added:
    status: AddStatus
    story_id: str
    seq: int  # the stored event's seq (the original one for a duplicate)
    merged_from: str | None = None  # a story id that this event merged into ``story_id``


@dataclass(frozen=True, slots=True)
class Story:
    story_id: str
    call_ids: tuple[str, ...]
    events: tuple[Event, ...]  # in arrival (seq) order
    max_seq: int
    first_stored_at: datetime  # when the first event of the story was received
    digest: str | None  # what save_state recorded last (None: never emitted)
    ended_at: datetime | None  # as recorded by save_state
    rules_version: str | None = None  # the rules the story is routed by (pinned at first)
    last_received_at: datetime | None = None  # when an event of it was last received


@dataclass(frozen=True, slots=True)
class Emitted:
    """What :meth:`Store.save_state` records after a story was folded (and planned)."""

    upto_seq: int
    digest: str
    ended_at: datetime | None
    last_event_at: datetime
    rules_version: str | None = None  # pinned unless the story already has a version
    # How many call ids the folded story held (None: not checked). A story holding more when
    # the fold is written (a transfer merged another into it) or gone (merged into another)
    # is not what was folded: :meth:`Store.dispatched` then writes nothing.
    calls: int | None = None


@dataclass(frozen=True, slots=True)
class CaseRow:
    """What the dispatcher records of a case it folded (the fold itself is the truth)."""

    case_id: str  # the story of its first missed call
    key: CaseKey
    opened_at: datetime
    closed_at: datetime | None
    how: str | None  # how it closed (bridge.core.cases.Closed)
    check_at: datetime | None  # when the clock alone changes it next


@dataclass(frozen=True, slots=True)
class CaseWrite:
    """A refold's case facts (all of its story's: they replace what it had) and the case it
    is the first missed call of, if any."""

    facts: Sequence[tuple[CaseKey, Fact]]
    cases: Sequence[CaseRow] = ()
    # The facts the refold folded, per number (bridge.core.cases.fingerprint): when the
    # store holds others by the time this is written, the story stays dirty (folded again).
    folded: Mapping[CaseKey, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Dispatched:
    """What :meth:`Store.dispatched` did."""

    work: int  # slots that need delivery work
    clean: bool  # the story is clean afterwards
    refold: tuple[str, ...] = ()  # other stories whose cases changed (marked dirty)
    closed: tuple[CaseRow, ...] = ()  # cases that closed with this write (for metrics)
    stale: bool = False  # nothing written: a merge changed the story since it was read


@dataclass(frozen=True, slots=True)
class CaseHistory:
    """Everything stored of one number's cases."""

    facts: list[Fact]  # those after archived_until
    # facts up to this belong to cases retention purged, or are older than the newest
    # MAX_FACTS_PER_NUMBER (capped)
    archived_until: datetime | None
    capped: bool = False  # the number has more facts than MAX_FACTS_PER_NUMBER


@dataclass(frozen=True, slots=True)
class ClickAdded:
    status: Literal["accepted", "duplicate", "replayed"]
    refold: tuple[str, ...] = ()  # stories whose case alerts must show it (marked dirty)


@dataclass(frozen=True, slots=True)
class PlanRequest:
    """The arguments of :meth:`Store.plan`."""

    planned: Sequence[Planned]
    now: datetime
    missed_due: datetime
    allow_new: bool


class Store(Protocol):
    async def open(self) -> None:
        """Connect and apply pending migrations."""

    async def close(self) -> None:
        """Flush pending writes and release resources."""

    async def ping(self) -> None:
        """Raise :class:`StoreError` when the store is not usable."""

    async def acquire_leadership(self) -> bool:
        """Try, without waiting, to become the one instance that dispatches and delivers.

        True when this store holds leadership now. SQLite (one instance): always True.
        PostgreSQL: a session advisory lock on a dedicated connection; raises
        :class:`StoreError` when the database cannot be reached.
        """

    async def leadership_lost(self) -> None:
        """Return once leadership is lost (the lock's connection broke, or leadership was
        released or the store closed); at once when this store is not the leader."""

    async def release_leadership(self) -> None:
        """Give up leadership (no-op when not the leader); another instance may take it."""

    async def add_event(self, event: Event, received_at: datetime) -> Added:
        """Store one event durably (committed when this returns) and mark its story dirty.

        Concurrent calls share one commit (group commit). An event whose
        ``event.dedupe_key()`` is already stored changes nothing and returns
        ``status="duplicate"``; so does an event of a call purged by retention whose id is
        still remembered (:meth:`purge`, :meth:`forget`): it is not stored. A new event of a
        story that already holds :data:`MAX_EVENTS_PER_STORY` events (counting the story it
        would merge with) is not stored either: ``status="refused"``.
        """

    async def resolve(self, call_id: str) -> str | None:
        """The story id a provider call id belongs to, or None when unknown."""

    async def story(self, story_id: str) -> Story | None:
        """All events of the story ``story_id`` resolves to (any id of the story works)."""

    async def stories(self, story_ids: Sequence[str]) -> dict[str, Story]:
        """:meth:`story` for several ids in one read snapshot: requested id -> story (ids
        that resolve to no story are left out)."""

    async def dirty_stories(self, limit: int = 1000) -> list[str]:
        """Story ids with events not yet emitted (oldest first)."""

    async def save_state(
        self,
        story_id: str,
        *,
        upto_seq: int,
        digest: str,
        ended_at: datetime | None,
        last_event_at: datetime,
        rules_version: str | None = None,
    ) -> bool:
        """Record what was emitted for the story after folding events up to ``upto_seq``.

        Clears the dirty mark unless an event with a higher seq arrived meanwhile; returns
        True when the story is clean afterwards.
        ``rules_version`` pins the rules the story is routed by, unless one is pinned already.
        """

    async def dispatched(
        self,
        story_id: str,
        state: Emitted,
        plan: PlanRequest | None = None,
        cases: CaseWrite | None = None,
    ) -> Dispatched:
        """:meth:`plan` (when given), :meth:`save_state` and the story's case facts and case
        (when given) in one transaction: the dispatcher's one write per refold. When the
        story's facts change, the stories whose cases they belong to are marked dirty.

        Nothing is written (work 0, not clean) when the story is no longer what was folded
        (``state.calls``): a transfer merged it into another story, or another into it, since
        it was read. Its plan would withdraw what the other story brought (a posted thread,
        deleted and posted again by the next cycle); the survivor is dirty, and the next
        cycle folds it whole. A story purged meanwhile writes nothing and is clean."""

    # -- callback cases ----------------------------------------------------------------------

    async def case_facts(self, keys: Sequence[CaseKey]) -> dict[CaseKey, CaseHistory]:
        """Every fact of these numbers that retention has not archived."""

    async def add_click(
        self, key: CaseKey, click: Click, received_at: datetime, signature: str
    ) -> ClickAdded:
        """Store a person's click durably (committed when this returns) and mark the
        stories of its number's cases dirty. ``duplicate``: this click is stored already
        (a retry); ``replayed``: this very signed request was seen before. Neither changes
        anything."""

    async def due_cases(self, now: datetime, limit: int = 1000) -> list[str]:
        """Cases (their first missed call's story ids) whose clock has a change due."""

    async def count_open_cases(self) -> int:
        """Cases not closed (the ``callbridge_callback_cases_open`` gauge)."""

    async def digest_case_keys(self, since: datetime, until: datetime) -> list[CaseKey]:
        """The numbers of the cases a digest of ``(since, until]`` may tell: opened by
        ``until`` and not closed by ``since``."""

    async def add_digests(self, messages: Sequence[DigestMessage], now: datetime) -> int:
        """Plan each digest message for delivery unless it is planned already (its story
        id names its time); returns how many are new. Retention removes them as it removes
        ended calls."""

    async def open_stories(self, received_before: datetime, limit: int = 1000) -> list[str]:
        """Stories not ended of which no event was received since the cutoff (stale
        candidates; this bridge's clock, not the provider's timestamps)."""

    async def count_open(self) -> int:
        """Stories not yet ended (the "active calls" gauge)."""

    async def purge(self, received_before: datetime, *, now: datetime) -> int:
        """Delete stories that ended and of which no event was received since the cutoff,
        with their events; remember their call ids (at ``now``) so that a redelivery is
        answered as a duplicate. Returns how many stories."""

    async def forget(self, before: datetime) -> None:
        """Forget call ids purged before ``before``, and rules versions stored before it
        that no story is routed by."""

    async def save_ruleset(self, version: str, source: str, text: str, now: datetime) -> None:
        """Keep a rules file's text under its version (refreshing ``now`` if it is kept)."""

    async def ruleset(self, version: str) -> tuple[str, str] | None:
        """(source, text) of a kept rules version, or None."""

    # -- delivery outbox (bridge/core/slots.py) ----------------------------------------------

    async def plan(
        self,
        story_id: str,
        planned: Sequence[Planned],
        *,
        now: datetime,
        missed_due: datetime,
        allow_new: bool,
    ) -> int:
        """Record the messages the story should have; returns how many slots need work.

        Content changes bump the slot's desired version; new (destination, kind) decisions
        only when ``allow_new``; missed alerts no longer planned are retracted.
        """

    async def decided(self, story_id: str) -> list[Decided]:
        """The story's stored decisions: one per (destination, platform, kind), from its root,
        missed and summary slots (orphans excluded)."""

    async def shown_alerts(self, story_id: str, platform: str) -> list[ShownAlert]:
        """The missed-call alerts of the story ``story_id`` resolves to, on ``platform``, as
        delivery will show them (one per destination)."""

    async def due(
        self, now: datetime, limit: int = 500, closed: Collection[Lane] = ()
    ) -> list[Outgoing]:
        """Slots whose posted state lags desired and whose due time has come, and that can be
        sent (a thread reply once its parent is posted); at most a few per channel and lane
        (``PER_CHANNEL``), none of the ``closed`` lanes (delivery cannot send there now)."""

    async def next_due(self) -> datetime | None:
        """The earliest due time of any pending slot that can be sent (None when there is
        none; a thread reply waits for its parent's post, not for a time)."""

    async def begin_attempt(self, key: SlotKey, now: datetime) -> None:
        """Mark that a post is about to be sent (committed before the platform is called)."""

    async def posted_next(
        self,
        key: SlotKey,
        version: int,
        ref: str | None,
        *,
        channel: str,
        now: datetime,
        unlinked: bool = False,
    ) -> tuple[bool, list[Outgoing]]:
        """The platform now shows ``version`` of the slot (``ref=None``: retracted); and in
        the same transaction the due work of the slot's ``channel`` at ``now`` as :meth:`due`
        would hand it out (its lanes' heads, the roots its alerts wait for): a channel sends
        its next message without another read of the store.

        ``unlinked``: a missed alert shown without the link to its live thread (none was
        posted when delivery read it): it is edited again if one has been posted since.
        The pair's first item is False when the slot no longer exists: a re-plan or a merge
        dropped or moved it while the request was in flight, so no slot wants what was just
        posted."""

    async def retry_later(
        self, key: SlotKey, *, due: datetime, error: str, maybe_sent: bool
    ) -> None:
        """A retryable failure: try again at ``due``; ``maybe_sent`` keeps the attempt mark."""

    async def resume(self, platform: str, now: datetime) -> int:
        """The platform answers again after failing: its slots backing off after errors are
        due ``now``; returns how many."""

    async def give_up(self, key: SlotKey, error: str) -> None:
        """A permanent failure: stop trying this slot (until its content changes)."""

    async def pending_counts(self) -> list[tuple[str, str, int]]:
        """(platform, channel, pending slots) for the queue-depth gauge."""
