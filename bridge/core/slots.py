"""The outbox's pure decisions: which slots a call story should have (:class:`Planned`),
the (destination, kind) decisions stored with it (:class:`Decided`), and what a new plan or
a merge of two stories changes in the stored slots (:func:`decide_plan`,
:func:`decide_merge`). Each store backend only runs the SQL for these changes
(:mod:`bridge.store.outbox`).

Slots: ``root`` (the live message), ``reply:<id>`` (one thread reply per story step),
``missed`` (the alert) and ``summary``. A slot whose desired content is ``None`` must be
retracted: its posted message is deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from bridge.core.routing import Kind

# A thread's replies: a story step's (under the live message, ``root``) or a callback case
# step's (under its alert, ``missed``). Replies are never edited: a thread is a log.
REPLY_PREFIXES: Final = ("reply:", "alert:")


@dataclass(frozen=True, slots=True)
class Planned:
    """One message a story should have, as the dispatcher decided it."""

    destination: str
    platform: str
    channel: str
    slot: str
    kind: Kind
    order: int  # posting order among the story's replies in one destination
    content: bytes  # encoded render input (bridge.core.plan)
    final: bool  # the call has ended: this is the root's last version
    # A new one waits for the settle time: it says the call was missed, and a late answer
    # may still come (the missed alert, and the live thread's line that tells the miss).
    settles: bool = False


@dataclass(frozen=True, slots=True)
class Decided:
    """A (destination, kind) decision stored with a story, as its root/alert/summary slot."""

    destination: str
    platform: str
    channel: str
    kind: Kind
    content: bytes | None


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
    attempted: bool = False  # a post may have reached the platform (its answer was lost)
    order: int = 0  # its place among its thread's replies (Planned.order, as last planned)

    @property
    def thread(self) -> tuple[str, str]:
        return (self.destination, self.platform)

    @property
    def maybe_posted(self) -> bool:
        """Something may show on the platform: withdrawing it means deleting it."""
        return self.ref is not None or self.attempted

    @property
    def decision(self) -> tuple[str, str, str]:
        return (self.destination, self.platform, self.kind)

    @property
    def is_reply(self) -> bool:
        """A reply in a thread: a story step's (under the live message) or a callback
        case's (under its alert)."""
        return self.slot.startswith(REPLY_PREFIXES)

    @property
    def posted_reply(self) -> bool:
        """A reply that shows on the platform with content (not a retracted one)."""
        return self.is_reply and self.ref is not None and self.content is not None


@dataclass(frozen=True, slots=True)
class Insert:
    planned: Planned
    due_us: int


@dataclass(frozen=True, slots=True)
class Update:
    """New content for a slot. A slot that was up to date is due at ``due_us``. One still
    waiting to be sent keeps its due time (a retry backing off, a settle time running)
    unless ``due_us`` is sooner and no attempt has failed: the change ended the wait (a
    "Missed" line that waited for a late answer became a plain end line when it came)."""

    planned: Planned
    due_us: int
    pending: bool  # the slot had a version not sent yet


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


ORPHAN: Final = "orphan:"


def orphan_slot(story_id: str, slot: str) -> str:
    """The name of a slot of a merged-away story once it is moved to the survivor."""
    return f"{ORPHAN}{story_id}:{slot}"


def posted_as(story_id: str, slot: str) -> tuple[str, str]:
    """The (story, slot) a message was posted under (its metadata): an orphan of a merge
    was renamed after it was posted."""
    if slot.startswith(ORPHAN):
        story, _, original = slot.removeprefix(ORPHAN).partition(":")
        return story, original
    return story_id, slot


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

    ``planned`` is everything the story should show now: each (destination, platform, kind)
    decision in it with all its slots. So:

    - A new missed alert is due after the settle time; changes of a posted one at once. So
      is the live thread's line that says the call was missed (``Planned.settles``): a
      thread is a log, and a line posted before a late answer could never be corrected.
    - A slot's desired version moves only when its content changes (bursts coalesce). A posted
      thread reply is never edited (a thread is a log): only its first spelling is shown.
    - New decisions only when ``allow_new``; once a decision exists its slots follow the call.
    - A decision no longer made (a missed alert for a call answered after all, a live thread
      in a channel the whole call does not belong in, e.g. a consult leg's before the merge
      told the bridge whose call it was) is withdrawn: what may show on the platform is
      retracted (deleted), the rest dropped.
    - A reply no longer planned in a thread that is, and not posted, is dropped (its step was
      replaced, e.g. by a late event or a merge); posted replies stay.
    """
    by_key = {(s.destination, s.platform, s.slot): s for s in existing}
    decided = {s.decision for s in existing}
    decided_now = {(p.destination, p.platform, p.kind) for p in planned}
    changes: list[PlanChange] = []
    for p in planned:
        row = by_key.pop((p.destination, p.platform, p.slot), None)
        # A new alert waits for the settle time (a late answer may still come); once it is
        # posted, what changes on it (a stacked miss, a claim, its closing) shows at once.
        settles = p.settles and (row is None or row.ref is None)
        due = missed_due_us if settles else now_us
        if row is None:
            if allow_new or (p.destination, p.platform, p.kind) in decided:
                changes.append(Insert(p, due))
        elif (row.content != p.content or row.order != p.order) and not row.posted_reply:
            # A new place alone counts too: a reply not sent yet waits for the replies
            # before it (a step a late fact inserted), as its stored order says.
            changes.append(Update(p, due, row.posted_version < row.desired_version))
    for row in by_key.values():
        if row.content is None:
            continue  # already retracted
        if row.decision not in decided_now:
            changes.append(Retract(row) if row.maybe_posted else Drop(row))
        elif row.is_reply and row.ref is None:
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
                changes.append(Orphan(row) if row.maybe_posted else Drop(row))
            elif row.story_id == gone:
                changes.append(Move(row))
        if gone_wins:
            changes.extend(Move(row) for row in gone_rows.values())
    return changes
