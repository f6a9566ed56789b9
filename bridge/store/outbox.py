"""The delivery outbox as stored: per (story, destination, platform, slot) the message a call
story should have (*desired*, versioned) and what was *posted* (the platform's reference and
the version it shows). Delivery is reconciliation: make posted match desired.

Slots: ``root`` (the live message), ``reply:<id>`` (one thread reply per story step, the id
derived from the step so that out-of-order steps never collide), ``missed`` (the alert) and
``summary``. A slot whose desired content is ``None`` must be retracted: its posted message
is deleted (a missed alert for a call that turned out answered, an orphaned consult call).
What the slots should be is decided in the pure core (:mod:`bridge.core.slots`); this module
holds the rows delivery reads and the SQL both backends share.
"""

# SQL here is built only from constants and placeholders.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from bridge.core.routing import Kind


@dataclass(frozen=True, slots=True)
class SlotKey:
    story_id: str
    destination: str
    platform: str
    slot: str


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
    # Delivery priority, lower first (migration 0006): 0 retraction or correction of a posted
    # alert, 1 new missed alert or case step (or a live root one waits for), 2 current state
    # of a live call (first post or edit) and any first post, 3 end state of a call that is
    # over (its final edit) and the live thread's replies.
    priority: int


# A thread's parent slot and the pattern of its replies: the live message's story steps,
# and a callback case alert's steps.
THREADS: Final = {"root": "reply:%", "missed": "alert:%"}


# Pending work: the posted state lags the desired one and delivery has not given up on it.
def pending(alias: str) -> str:
    return f"{alias}.posted_version < {alias}.desired_version AND NOT {alias}.failed"


NEW_ALERT: Final = 1  # the priority of a new missed alert (migration 0006)

# Due slots handed out per channel, lane and round: one is sent at a time per channel, and
# the window's head is sendable work (the thread replies whose parent is not posted yet are
# left out), so two are enough: the head, and the next when pacing holds the head's action
# back (delivery does not read a lane at all while pacing holds back all its work).
PER_CHANNEL: Final = 2

# A lane (0: new posts, 1: edits of posted messages) of one channel: (platform, channel, lane).
Lane = tuple[str, str, int]

# The columns of an Outgoing (in field order, the root's ref and the priority last), over
# ``outbox AS o``. ``o.prio`` (migration 0006) is the delivery priority; a live root that a
# pending missed alert waits for (so the alert can link to it) ranks with a new alert.
SELECT_OUTGOING: Final = (
    "SELECT o.story_id, o.destination, o.platform, o.slot, o.channel, o.kind, o.sort_order,"
    " o.content, o.desired_version, o.ref, o.attempt_us, o.attempts, o.final, o.created_us,"
    " o.desired_us, (SELECT r.ref FROM outbox AS r WHERE r.story_id = o.story_id"
    "   AND r.destination = o.destination AND r.platform = o.platform"
    "   AND r.slot = CASE WHEN o.slot LIKE 'alert:%' THEN 'missed' ELSE 'root' END),"
    " CASE WHEN o.slot = 'root' AND o.ref IS NULL AND EXISTS (SELECT 1 FROM outbox AS m"
    "   WHERE m.story_id = o.story_id AND m.destination = o.destination"
    "   AND m.platform = o.platform AND m.slot = 'missed' AND m.content IS NOT NULL"
    f"   AND {pending('m')}) THEN {NEW_ALERT} ELSE o.prio END"
    " FROM outbox AS o"
)

# A thread reply can go only once its parent is posted (bridge/deliver/sendable.py): until
# then it is no work, and must not take a place in its channel's window.
SENDABLE: Final = (
    " AND (o.content IS NULL OR (o.slot NOT LIKE 'reply:%' AND o.slot NOT LIKE 'alert:%')"
    " OR EXISTS (SELECT 1 FROM outbox AS t WHERE t.story_id = o.story_id"
    "   AND t.destination = o.destination AND t.platform = o.platform"
    "   AND t.slot = CASE WHEN o.slot LIKE 'alert:%' THEN 'missed' ELSE 'root' END"
    "   AND t.ref IS NOT NULL))"
)

# A channel's most important due slots of one lane (0: new posts, 1: edits of posted
# messages; paced by different budgets, so a backlog of one must not hide the other), in
# index order (migration 0006's ``outbox_due``). Placeholders: platform, channel, lane, now,
# limit, as ``{0}``..``{4}`` in the backend's style.
WINDOW_SQL: Final = (
    f"{SELECT_OUTGOING} WHERE o.platform = {{0}} AND o.channel = {{1}} AND o.lane = {{2}}"
    f" AND {pending('o')} AND o.due_us <= {{3}}{SENDABLE}"
    " ORDER BY o.prio, o.desired_us, o.sort_order LIMIT {4}"
)
# When the next sendable work is due (a reply waiting for its parent is not: the parent's
# post, by this delivery, makes it sendable).
NEXT_DUE_SQL: Final = f"SELECT min(o.due_us) FROM outbox AS o WHERE {pending('o')}{SENDABLE}"

# The unposted live roots that a channel's pending missed alerts wait for (due or still
# settling): they go first, wherever they rank in their own window. Placeholders: platform,
# channel, now, limit.
AWAITED_SQL: Final = (
    f"{SELECT_OUTGOING} JOIN outbox AS a ON a.story_id = o.story_id"
    " AND a.destination = o.destination AND a.platform = o.platform"
    f" WHERE a.platform = {{0}} AND a.channel = {{1}} AND a.lane = 0 AND a.prio = {NEW_ALERT}"
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
