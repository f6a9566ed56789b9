"""Types of the delivery outbox: per (story, destination, platform, slot) the message a call
story should have (*desired*, versioned) and what was *posted* (the platform's reference and
the version it shows). Delivery is reconciliation: make posted match desired.

Slots: ``root`` (the live message), ``reply:<id>`` (one thread reply per story step, the id
derived from the step so that out-of-order steps never collide), ``missed`` (the alert) and
``summary``. A slot whose desired content is ``None`` must be retracted: its posted message
is deleted (a missed alert for a call that turned out answered, an orphaned consult call).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

Kind = Literal["live", "missed", "summary"]


@dataclass(frozen=True, slots=True)
class SlotKey:
    story_id: str
    destination: str
    platform: str
    slot: str


@dataclass(frozen=True, slots=True)
class Planned:
    """One message a story should have, as the dispatcher decided it."""

    destination: str
    platform: str
    channel: str
    slot: str
    kind: Kind
    order: int  # posting order among the story's replies in one destination
    content: bytes  # encoded render input (bridge.plan)
    final: bool  # the call has ended: this is the root's last version


@dataclass(frozen=True, slots=True)
class Decided:
    """A (destination, kind) decision stored with a story, as its root/alert/summary slot."""

    destination: str
    platform: str
    channel: str
    kind: Kind
    content: bytes | None


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A slot whose posted state lags its desired state (work for the delivery layer)."""

    key: SlotKey
    channel: str
    kind: Kind
    order: int
    content: bytes | None  # None: retract the posted message
    version: int  # the desired version this content is
    ref: str | None  # the posted message (encoded MessageRef), if any
    root_ref: str | None  # the posted root of the same story and destination, if any
    attempted: bool  # an earlier attempt may have reached the platform: look before posting
    attempts: int
    final: bool
    created_at: datetime
    desired_at: datetime  # when this desired version was set (for delivery latency)


# The delivery priority (bridge.delivery.priority) as SQL over an outbox row aliased ``o``, so
# the store can hand out each channel's most important work first instead of its oldest: a
# backlog of thread replies must never hide a missed alert or a new root.
# A live root that a pending missed alert waits for (to link to it) ranks with the alert.
PRIORITY_SQL: Final = (
    "CASE WHEN o.content IS NULL THEN 5 WHEN o.kind = 'missed' THEN 0"
    " WHEN o.slot = 'root' AND o.ref IS NULL AND EXISTS (SELECT 1 FROM outbox AS m"
    "   WHERE m.story_id = o.story_id AND m.destination = o.destination"
    "   AND m.platform = o.platform AND m.slot = 'missed' AND m.content IS NOT NULL"
    "   AND m.posted_version < m.desired_version) THEN 0"
    " WHEN o.slot LIKE 'reply:%' THEN 2 WHEN o.ref IS NULL THEN 1"
    " WHEN o.final THEN 3 ELSE 4 END"
)
# Within a priority, roots before alerts: an alert in a channel's window has its root in it.
PRIORITY_ORDER: Final = f"{PRIORITY_SQL}, CASE WHEN o.slot = 'missed' THEN 1 ELSE 0 END"
PER_CHANNEL: Final = 25  # due slots handed out per channel and round (one is sent at a time)

# The columns of an Outgoing (in field order, the root's ref last), over ``outbox AS o``.
SELECT_OUTGOING: Final = (
    "SELECT o.story_id, o.destination, o.platform, o.slot, o.channel, o.kind, o.sort_order,"
    " o.content, o.desired_version, o.ref, o.attempt_us, o.attempts, o.final, o.created_us,"
    " o.desired_us, (SELECT r.ref FROM outbox AS r WHERE r.story_id = o.story_id"
    "   AND r.destination = o.destination AND r.platform = o.platform AND r.slot = 'root')"
    " FROM outbox AS o"
)


def due_sql(*, not_failed: str, now: str, per_channel: str, limit: str) -> str:
    """The query behind :meth:`Store.due` in a backend's dialect (its boolean test for
    ``failed`` and its three placeholders).

    Per channel, the most important due slots first (PRIORITY_SQL), a few per channel and
    kind of request: new posts and edits of posted messages are paced by different budgets
    (Slack: per channel vs per workspace), so a backlog of one must not hide the other."""
    return (
        "WITH ranked AS (SELECT o.story_id, o.destination, o.platform, o.slot,"  # noqa: S608
        f" {PRIORITY_SQL} AS priority, row_number() OVER (PARTITION BY o.platform,"
        f" o.channel, o.ref IS NULL ORDER BY {PRIORITY_ORDER}, o.desired_us, o.sort_order)"
        " AS n FROM outbox AS o WHERE o.posted_version < o.desired_version"
        f" AND {not_failed} AND o.due_us <= {now})"
        f" {SELECT_OUTGOING} JOIN ranked AS k ON k.story_id = o.story_id"
        " AND k.destination = o.destination AND k.platform = o.platform AND k.slot = o.slot"
        f" WHERE k.n <= {per_channel} ORDER BY k.priority, k.n LIMIT {limit}"
    )


# -- decisions shared by the store backends (pure; each backend only runs the SQL) -----------


@dataclass(frozen=True, slots=True)
class Slot:
    """A stored slot as the planning and merging decisions need it."""

    story_id: str
    destination: str
    platform: str
    slot: str
    kind: Kind
    content: bytes | None
    desired_version: int
    posted_version: int
    ref: str | None

    @property
    def thread(self) -> tuple[str, str]:
        return (self.destination, self.platform)

    @property
    def is_reply(self) -> bool:
        return self.slot.startswith("reply:")


@dataclass(frozen=True, slots=True)
class Insert:
    planned: Planned
    due_us: int


@dataclass(frozen=True, slots=True)
class Update:
    planned: Planned
    due_us: int | None  # None: keep the slot's due time (a retry is backing off)


@dataclass(frozen=True, slots=True)
class Retract:
    """Set content to NULL (a new desired version): delete what was posted."""

    slot: Slot


@dataclass(frozen=True, slots=True)
class Drop:
    """Delete the row: nothing was posted, nothing to undo."""

    slot: Slot


@dataclass(frozen=True, slots=True)
class Move:
    """Give an absorbed story's slot to the surviving story."""

    slot: Slot


@dataclass(frozen=True, slots=True)
class Orphan:
    """A posted slot of a thread that lost a merge: re-key it and retract it."""

    slot: Slot


PlanChange = Insert | Update | Retract | Drop
MergeChange = Move | Orphan | Drop


def decide_plan(
    existing: list[Slot],
    planned: list[Planned],
    *,
    now_us: int,
    missed_due_us: int,
    allow_new: bool,
) -> list[PlanChange]:
    """What :meth:`Store.plan` changes.

    - A slot's desired version moves only when its content changes (bursts coalesce).
    - New (destination, kind) decisions only when ``allow_new``; once a decision exists its
      slots follow the call (new thread replies, the final root).
    - A missed alert no longer planned (a late answer arrived) is retracted.
    - A reply no longer planned under a root that is, and not yet posted, is dropped (its step
      was replaced, e.g. by a late event or a merge); posted replies stay: a thread is a log.
    """
    by_key = {(s.destination, s.platform, s.slot): s for s in existing}
    decided = {(s.destination, s.platform, s.kind) for s in existing}
    threads = {(p.destination, p.platform) for p in planned if p.slot == "root"}
    changes: list[PlanChange] = []
    for p in planned:
        due = missed_due_us if p.kind == "missed" else now_us
        row = by_key.pop((p.destination, p.platform, p.slot), None)
        if row is None:
            if allow_new or (p.destination, p.platform, p.kind) in decided:
                changes.append(Insert(p, due))
        elif row.content != p.content:
            up_to_date = row.posted_version >= row.desired_version
            changes.append(Update(p, due if up_to_date else None))
    for row in by_key.values():
        if row.kind == "missed" and row.content is not None:
            changes.append(Retract(row))
        elif row.is_reply and row.thread in threads and row.ref is None:
            changes.append(Drop(row))
    return changes


def decide_merge(keep: str, gone: str, rows: list[Slot]) -> list[MergeChange]:
    """What happens to the slots of two stories that a transfer joined (``gone`` into
    ``keep``), per destination thread: the thread already posted wins (the survivor's when
    both are) and keeps its replies; the other thread's root and replies become orphans
    (retracted if posted, dropped if not). Alerts and summaries move unless they collide."""
    changes: list[MergeChange] = []
    threads = {r.thread for r in rows}
    for thread in threads:
        mine = [r for r in rows if r.thread == thread]
        keep_rows = {r.slot: r for r in mine if r.story_id == keep}
        gone_rows = {r.slot: r for r in mine if r.story_id == gone}
        keep_root, gone_root = keep_rows.get("root"), gone_rows.get("root")
        gone_wins = gone_root is not None and (
            keep_root is None or (gone_root.ref is not None and keep_root.ref is None)
        )
        winner, loser = (gone_rows, keep_rows) if gone_wins else (keep_rows, gone_rows)
        for name, row in loser.items():
            threaded = name == "root" or row.is_reply
            if threaded or name in winner:
                changes.append(Orphan(row) if row.ref is not None else Drop(row))
            elif row.story_id == gone:
                changes.append(Move(row))
        if gone_wins:
            changes.extend(Move(row) for row in gone_rows.values())
    return changes
