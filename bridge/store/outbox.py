"""Types of the delivery outbox: per (story, destination, platform, slot) the message a call
story should have (*desired*, versioned) and what was *posted* (the platform's reference and
the version it shows). Delivery is reconciliation: make posted match desired.

Slots: ``root`` (the live message), ``reply:<id>`` (one thread reply per story step, the id
derived from the step so that out-of-order steps never collide), ``missed`` (the alert) and
``summary``. A slot whose desired content is ``None`` must be retracted: its posted message
is deleted (a missed alert for a call that turned out answered, an orphaned consult call).
"""

# SQL here is built only from constants and placeholders.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Iterable, Sequence
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
    # Delivery priority, lower first: 0 missed alert (or a root one waits for), 1 new root or
    # summary, 2 thread reply, 3 final root update, 4 intermediate root update, 5 retraction.
    priority: int


# Pending work: the posted state lags the desired one and delivery has not given up on it.
def pending(alias: str) -> str:
    return f"{alias}.posted_version < {alias}.desired_version AND NOT {alias}.failed"


PER_CHANNEL: Final = 25  # due slots handed out per channel, lane and round (one is sent at a time)

# The columns of an Outgoing (in field order, the root's ref and the priority last), over
# ``outbox AS o``. ``o.prio`` (migration 0003) is the delivery priority; a live root that a
# pending missed alert waits for (so the alert can link to it) ranks with the alert.
SELECT_OUTGOING: Final = (
    "SELECT o.story_id, o.destination, o.platform, o.slot, o.channel, o.kind, o.sort_order,"
    " o.content, o.desired_version, o.ref, o.attempt_us, o.attempts, o.final, o.created_us,"
    " o.desired_us, (SELECT r.ref FROM outbox AS r WHERE r.story_id = o.story_id"
    "   AND r.destination = o.destination AND r.platform = o.platform AND r.slot = 'root'),"
    " CASE WHEN o.slot = 'root' AND o.ref IS NULL AND EXISTS (SELECT 1 FROM outbox AS m"
    "   WHERE m.story_id = o.story_id AND m.destination = o.destination"
    "   AND m.platform = o.platform AND m.slot = 'missed' AND m.content IS NOT NULL"
    f"   AND {pending('m')}) THEN 0 ELSE o.prio END"
    " FROM outbox AS o"
)

# A channel's most important due slots of one lane (0: new posts, 1: edits of posted
# messages; paced by different budgets, so a backlog of one must not hide the other), in
# index order (migration 0003's ``outbox_due``). Placeholders: platform, channel, lane, now,
# limit, as ``{0}``..``{4}`` in the backend's style.
WINDOW_SQL: Final = (
    f"{SELECT_OUTGOING} WHERE o.platform = {{0}} AND o.channel = {{1}} AND o.lane = {{2}}"
    f" AND {pending('o')} AND o.due_us <= {{3}}"
    " ORDER BY o.prio, o.desired_us, o.sort_order LIMIT {4}"
)
# The unposted live roots that a channel's pending missed alerts wait for (due or still
# settling): they go first, wherever they rank in their own window. Placeholders: platform,
# channel, now, limit.
AWAITED_SQL: Final = (
    f"{SELECT_OUTGOING} JOIN outbox AS a ON a.story_id = o.story_id"
    " AND a.destination = o.destination AND a.platform = o.platform"
    " WHERE a.platform = {0} AND a.channel = {1} AND a.lane = 0 AND a.prio = 0"
    f" AND {pending('a')} AND o.slot = 'root' AND o.ref IS NULL AND {pending('o')}"
    " AND o.due_us <= {2} ORDER BY a.desired_us LIMIT {3}"
)


# Before a live root's first post is recorded: a missed alert of the same thread already posted
# went out without the link to the root (the root was failing or backing off then). Make it
# due again, so delivery edits it and adds the link. Placeholders: story, destination, platform.
RELINK_SQL: Final = (
    "UPDATE outbox SET desired_version = desired_version + 1"
    " WHERE story_id = {0} AND destination = {1} AND platform = {2} AND slot = 'missed'"
    " AND ref IS NOT NULL AND content IS NOT NULL AND posted_version >= desired_version"
    " AND EXISTS (SELECT 1 FROM outbox AS r WHERE r.story_id = {0} AND r.destination = {1}"
    " AND r.platform = {2} AND r.slot = 'root' AND r.ref IS NULL)"
)


def ranked(windows: Iterable[Sequence[Outgoing]], limit: int) -> list[Outgoing]:
    """The due work of several windows in one list, at most ``limit``: most important first
    and, within a priority, each window's first slots before any window's later ones (so no
    channel starves another); one entry per slot."""
    seen: set[SlotKey] = set()
    out: list[tuple[int, int, Outgoing]] = []
    for window in windows:
        in_order = sorted(window, key=lambda o: (o.priority, o.desired_at, o.order))
        for n, item in enumerate(in_order):
            if item.key not in seen:
                seen.add(item.key)
                out.append((item.priority, n, item))
    out.sort(key=lambda entry: entry[:2])
    return [item for _, _, item in out[:limit]]


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
