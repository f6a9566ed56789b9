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

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, cast

from bridge.core.routing import Kind
from bridge.core.slots import (
    Drop,
    Insert,
    Move,
    Orphan,
    PlanChange,
    Retract,
    Slot,
    Update,
    decide_merge,
    orphan_slot,
)


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


@dataclass(frozen=True, slots=True)
class ShownAlert:
    """A story's missed-call alert as delivery will show it: its latest desired content
    (None: to be retracted), where it is, once posted its message, and the live root it links
    to (as ``ALERT_LINK`` picks it; encoded MessageRefs)."""

    destination: str
    channel: str
    content: bytes | None
    ref: str | None
    root_ref: str | None


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
# A channel's due work as read right after recording its last send (``Store.posted_next``):
# its two lanes' windows and the roots its alerts wait for.
NEXT_MAX: Final = 3 * PER_CHANNEL

# A lane (0: new posts, 1: edits of posted messages) of one channel: (platform, channel, lane).
Lane = tuple[str, str, int]

# The live root a missed alert links to: its story's posted root on the same platform, in the
# alert's own destination if there is one, else in another destination (an alert routed to
# another channel than the live message links there too; the least ref, for a stable choice).
_POSTED_ROOT: Final = (
    "SELECT {0}(r.ref) FROM outbox AS r WHERE r.story_id = o.story_id"
    " AND r.platform = o.platform AND r.slot = 'root' AND r.ref IS NOT NULL"
)
ALERT_LINK: Final = (
    f"coalesce(({_POSTED_ROOT.format('')} AND r.destination = o.destination),"
    f" ({_POSTED_ROOT.format('min')}))"
)

# The columns of an Outgoing (in field order, the root's ref and the priority last), over
# ``outbox AS o``. ``o.prio`` (migration 0006) is the delivery priority; a live root that a
# pending missed alert waits for (so the alert can link to it) ranks with a new alert.
SELECT_OUTGOING: Final = (
    "SELECT o.story_id, o.destination, o.platform, o.slot, o.channel, o.kind, o.sort_order,"
    " o.content, o.desired_version, o.ref, o.attempt_us, o.attempts, o.final, o.created_us,"
    f" o.desired_us, CASE WHEN o.slot = 'missed' THEN {ALERT_LINK} ELSE"
    " (SELECT r.ref FROM outbox AS r WHERE r.story_id = o.story_id"
    "   AND r.destination = o.destination AND r.platform = o.platform"
    "   AND r.slot = CASE WHEN o.slot LIKE 'alert:%' THEN 'missed' ELSE 'root' END) END,"
    " CASE WHEN o.slot = 'root' AND o.ref IS NULL AND EXISTS (SELECT 1 FROM outbox AS m"
    "   WHERE m.story_id = o.story_id AND m.destination = o.destination"
    "   AND m.platform = o.platform AND m.slot = 'missed' AND m.content IS NOT NULL"
    f"   AND {pending('m')}) THEN {NEW_ALERT} ELSE o.prio END"
    " FROM outbox AS o"
)

# A thread reply can go only once its parent is posted (bridge/deliver/sendable.py), and
# after the replies before it in its thread (a thread is a log: a step that a late fact put
# before a reply not sent yet goes first, however late it was planned; ``reply:`` and
# ``alert:``, six characters each, name the live message's thread and the alert's). Until
# then it is no work, and must not take a place in its channel's window.
SENDABLE: Final = (
    " AND (o.content IS NULL OR (o.slot NOT LIKE 'reply:%' AND o.slot NOT LIKE 'alert:%')"
    " OR (EXISTS (SELECT 1 FROM outbox AS t WHERE t.story_id = o.story_id"
    "   AND t.destination = o.destination AND t.platform = o.platform"
    "   AND t.slot = CASE WHEN o.slot LIKE 'alert:%' THEN 'missed' ELSE 'root' END"
    "   AND t.ref IS NOT NULL)"
    "  AND NOT EXISTS (SELECT 1 FROM outbox AS e WHERE e.story_id = o.story_id"
    "   AND e.destination = o.destination AND e.platform = o.platform"
    "   AND substr(e.slot, 1, 6) = substr(o.slot, 1, 6) AND e.sort_order < o.sort_order"
    f"   AND e.content IS NOT NULL AND {pending('e')})))"
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


# Before a live root's first post is recorded: the missed alerts of its story on the same
# platform (in any destination) that went out while no root of the story was posted carry no
# link to the live thread (the root was failing, backing off or not yet due). Make them due
# again, so delivery edits them and adds the link. Placeholders: story, destination, platform.
RELINK_SQL: Final = (
    "UPDATE outbox SET desired_version = desired_version + 1"
    " WHERE story_id = {0} AND platform = {2} AND slot = 'missed'"
    " AND ref IS NOT NULL AND content IS NOT NULL AND posted_version >= desired_version"
    " AND EXISTS (SELECT 1 FROM outbox AS r WHERE r.story_id = {0} AND r.destination = {1}"
    " AND r.platform = {2} AND r.slot = 'root' AND r.ref IS NULL)"
    " AND NOT EXISTS (SELECT 1 FROM outbox AS p WHERE p.story_id = {0} AND p.platform = {2}"
    " AND p.slot = 'root' AND p.ref IS NOT NULL)"
)


# A missed alert was just posted (or edited) without the link, as no root of its story was
# posted when delivery read it: if one has been posted since (while the alert was in flight,
# so RELINK_SQL found no posted alert to mark), make the alert due again for an edit that adds
# the link. Placeholders: the alert's story, destination, platform, slot.
LATE_LINK_SQL: Final = (
    "UPDATE outbox SET desired_version = desired_version + 1"
    " WHERE story_id = {0} AND destination = {1} AND platform = {2} AND slot = {3}"
    " AND content IS NOT NULL AND posted_version >= desired_version"
    " AND EXISTS (SELECT 1 FROM outbox AS p WHERE p.story_id = {0} AND p.platform = {2}"
    " AND p.slot = 'root' AND p.ref IS NOT NULL)"
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


# -- what both backends run: the statements, in one dialect-neutral SQL -------------------------
# Every statement below is written once, with PostgreSQL's numbered placeholders ($1, $2 ...,
# a number may be used twice); the SQLite backend runs them as ?1, ?2 ... (``sqlite_style``).
# Booleans are TRUE/FALSE, which SQLite stores as 1/0. The decisions are the pure core's
# (bridge/core/slots.py); the only dialect-specific parts stay in the backends: how the slots
# of some stories are read (and locked), how due work is read, how a list is passed.


@dataclass(frozen=True, slots=True)
class Write:
    """One statement and its arguments; ``counts``: its affected rows say whether the slot
    still exists (see :func:`posted_writes`)."""

    sql: str
    args: tuple[object, ...]
    counts: bool = False


_KEY_WHERE: Final = "story_id = $1 AND destination = $2 AND platform = $3 AND slot = $4"
_THREAD_WHERE: Final = "story_id = $1 AND destination = $2 AND platform = $3"

DECIDED_SQL: Final = (
    "SELECT destination, platform, channel, kind, content FROM outbox WHERE story_id = $1"
    " AND slot IN ('root', 'missed', 'summary') ORDER BY destination, platform, slot"
)
# A story's missed-call alerts on one platform, each with the live root it links to, as
# delivery reads them: what a press on an alert card's button is answered with.
SHOWN_ALERTS_SQL: Final = (
    f"SELECT o.destination, o.channel, o.content, o.ref, {ALERT_LINK} FROM outbox AS o"
    " WHERE o.story_id = $1 AND o.platform = $2 AND o.slot = 'missed' ORDER BY o.destination"
)
PENDING_COUNTS_SQL: Final = (
    "SELECT platform, channel, count(*) FROM outbox"
    " WHERE posted_version < desired_version AND NOT failed GROUP BY platform, channel"
)
# The columns of a :class:`Slot` (bridge/core/slots.py), for the backends' reads of stories.
SLOT_COLUMNS: Final = (
    "story_id, destination, platform, slot, kind, content, desired_version, posted_version,"
    " ref, attempt_us IS NOT NULL, sort_order"
)

_INSERT: Final = (
    "INSERT INTO outbox (story_id, destination, platform, slot, channel, kind, sort_order,"
    " content, final, desired_version, desired_us, due_us, created_us)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $11, $10)"
)
_UPDATE: Final = (
    "UPDATE outbox SET content = $5, final = $6, sort_order = $7,"
    " desired_version = desired_version + 1, desired_us = $8,"
    " due_us = CASE WHEN NOT $10 OR (attempts = 0 AND $9 < due_us) THEN $9 ELSE due_us END,"
    f" failed = FALSE WHERE {_KEY_WHERE}"
)
_RETRACT: Final = (
    "UPDATE outbox SET story_id = $5, slot = $6, content = NULL,"
    " desired_version = desired_version + 1, desired_us = $7, due_us = $7, failed = FALSE"
    f" WHERE {_KEY_WHERE}"
)
_DELETE: Final = f"DELETE FROM outbox WHERE {_KEY_WHERE}"
_MOVE: Final = f"UPDATE outbox SET story_id = $5 WHERE {_KEY_WHERE}"
_BEGIN_ATTEMPT: Final = f"UPDATE outbox SET attempt_us = $5 WHERE {_KEY_WHERE}"
_POSTED: Final = (
    "UPDATE outbox SET posted_version = CASE WHEN posted_version > $5 THEN posted_version"
    " ELSE $5 END, ref = $6, attempt_us = NULL, attempts = 0, last_error = NULL"
    f" WHERE {_KEY_WHERE}"
)
_REVIVE_REPLIES: Final = (
    f"UPDATE outbox SET failed = FALSE WHERE {_THREAD_WHERE} AND slot LIKE $4 AND failed"
)
_RETRY: Final = (
    "UPDATE outbox SET attempts = attempts + 1, due_us = $5, last_error = $6,"
    f" attempt_us = CASE WHEN $7 THEN attempt_us ELSE NULL END WHERE {_KEY_WHERE}"
)
_GIVE_UP: Final = (
    f"UPDATE outbox SET failed = TRUE, last_error = $5, attempt_us = NULL WHERE {_KEY_WHERE}"
)
_GIVE_UP_REPLIES: Final = (
    f"UPDATE outbox SET failed = TRUE, last_error = $5 WHERE {_THREAD_WHERE} AND slot LIKE $4"
    " AND posted_version < desired_version"
)


DIGEST_PREFIX: Final = "digest:"  # a digest's story id: the prefix and its time
DIGEST_SLOT: Final = "digest"
# A digest is planned by every janitor round of its window: the first insert stands.
_INSERT_ONCE: Final = _INSERT + " ON CONFLICT (story_id, destination, platform, slot) DO NOTHING"
# (a range on the key, not LIKE: the primary key's index finds them in both databases)
PURGE_DIGESTS: Final = (
    "DELETE FROM outbox WHERE story_id >= 'digest:' AND story_id < 'digest;' AND created_us < $1"
)


@dataclass(frozen=True, slots=True)
class DigestMessage:
    """One digest to post: a story of its own (``digest:<its time>``) with one slot."""

    story_id: str
    destination: str
    platform: str
    channel: str
    content: bytes  # encoded DigestContent


def digest_writes(messages: Iterable[DigestMessage], now_us: int) -> list[Write]:
    """Insert each digest unless it is there already (counted: how many are new)."""
    return [Write(_INSERT_ONCE, _digest_args(m, now_us), counts=True) for m in messages]


def _digest_args(m: DigestMessage, now_us: int) -> tuple[object, ...]:
    """``_INSERT``'s arguments: the one slot, kind summary, final, due now."""
    slot = (m.story_id, m.destination, m.platform, DIGEST_SLOT, m.channel)
    return (*slot, "summary", 0, m.content, True, now_us, now_us)


@functools.cache
def sqlite_style(sql: str) -> str:
    """The statement with SQLite's numbered placeholders (``$3`` -> ``?3``). Cached: the
    statements are this module's constants, rewritten once each (the regular expression per
    execution was a quarter of the SQLite writer's CPU at steady load)."""
    return re.sub(r"\$(\d+)", r"?\1", sql)


def key_args(key: SlotKey | Slot) -> tuple[str, str, str, str]:
    return (key.story_id, key.destination, key.platform, key.slot)


def _retract(row: Slot, story_id: str, slot: str, now_us: int) -> Write:
    return Write(_RETRACT, (*key_args(row), story_id, slot, now_us))


def plan_writes(story_id: str, changes: Iterable[PlanChange], now_us: int) -> list[Write]:
    """The statements that record a story's planned changes (:func:`decide_plan`)."""
    out: list[Write] = []
    for change in changes:
        match change:
            case Insert(planned=p, due_us=due):
                out.append(Write(_INSERT, (story_id, p.destination, p.platform, p.slot,
                                           p.channel, p.kind, p.order, p.content, p.final,
                                           now_us, due)))  # fmt: skip
            case Update(planned=p, due_us=due, pending=pending):
                out.append(Write(_UPDATE, (story_id, p.destination, p.platform, p.slot,
                                           p.content, p.final, p.order, now_us, due,
                                           pending)))  # fmt: skip
            case Retract(slot=row):
                out.append(_retract(row, row.story_id, row.slot, now_us))
            case Drop(slot=row):
                out.append(Write(_DELETE, key_args(row)))
    return out


def merge_writes(keep: str, gone: str, slots: Sequence[Slot], now_us: int) -> list[Write]:
    """The statements that join the slots of two stories a transfer merged
    (:func:`decide_merge`)."""
    out: list[Write] = []
    for change in decide_merge(keep, gone, list(slots)):
        row = change.slot
        match change:
            case Move():
                out.append(Write(_MOVE, (*key_args(row), keep)))
            case Orphan():
                out.append(_retract(row, keep, orphan_slot(row.story_id, row.slot), now_us))
            case Drop():
                out.append(Write(_DELETE, key_args(row)))
    return out


def begin_attempt_writes(key: SlotKey, now_us: int) -> list[Write]:
    return [Write(_BEGIN_ATTEMPT, (*key_args(key), now_us))]


def posted_writes(
    key: SlotKey, version: int, ref: str | None, *, unlinked: bool = False
) -> list[Write]:
    """The platform shows ``version`` of the slot; the counting statement finds the slot.
    ``unlinked``: a missed alert shown without the link to its live thread."""
    out: list[Write] = []
    if key.slot == "root" and ref is not None:
        out.append(Write(RELINK_SQL.format("$1", "$2", "$3"), key_args(key)[:3]))
    out.append(Write(_POSTED, (*key_args(key), version, ref), counts=True))
    if unlinked and ref is not None:
        out.append(Write(LATE_LINK_SQL.format("$1", "$2", "$3", "$4"), key_args(key)))
    if key.slot in THREADS:  # replies that gave up with their parent may go now
        out.append(Write(_REVIVE_REPLIES, (*key_args(key)[:3], THREADS[key.slot])))
    return out


def retry_writes(key: SlotKey, *, due_us: int, error: str, maybe_sent: bool) -> list[Write]:
    return [Write(_RETRY, (*key_args(key), due_us, error, maybe_sent))]


# A platform answers again after failing: its slots backing off after errors are due now (the
# most important first, by the usual order), not each at the end of its own growing backoff.
# Their attempt counts stay, so a message that fails on its own still backs off.
_RESUME: Final = (
    "UPDATE outbox SET due_us = $2 WHERE platform = $1 AND posted_version < desired_version"
    " AND NOT failed AND attempts > 0 AND due_us > $2"
)


def resume_writes(platform: str, now_us: int) -> list[Write]:
    return [Write(_RESUME, (platform, now_us), counts=True)]


def give_up_writes(key: SlotKey, error: str) -> list[Write]:
    out = [Write(_GIVE_UP, (*key_args(key), error))]
    if key.slot in THREADS:  # its replies have no thread to go to
        reason = f"the {key.slot} message failed: {error}"
        out.append(Write(_GIVE_UP_REPLIES, (*key_args(key)[:3], THREADS[key.slot], reason)))
    return out


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def outgoing(row: Sequence[Any]) -> Outgoing:
    """An :class:`Outgoing` from the columns of ``SELECT_OUTGOING`` (either backend's row)."""
    content = row[7]
    return Outgoing(
        key=SlotKey(str(row[0]), str(row[1]), str(row[2]), str(row[3])),
        channel=str(row[4]),
        kind=cast(Kind, row[5]),
        order=int(row[6]),
        content=None if content is None else bytes(content),
        version=int(row[8]),
        ref=cast(str | None, row[9]),
        attempted=row[10] is not None,
        attempts=int(row[11]),
        final=bool(row[12]),
        created_at=_EPOCH + timedelta(microseconds=int(row[13])),
        desired_at=_EPOCH + timedelta(microseconds=int(row[14])),
        root_ref=cast(str | None, row[15]),
        priority=int(row[16]),
    )
