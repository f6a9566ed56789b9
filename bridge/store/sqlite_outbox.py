"""Outbox statements of the SQLite store (see bridge/core/slots.py for the model)."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import Final, cast

from bridge.core.routing import Kind
from bridge.core.slots import (
    Decided,
    Drop,
    Insert,
    Move,
    Orphan,
    Planned,
    Retract,
    Slot,
    Update,
    decide_merge,
    decide_plan,
    orphan_slot,
)
from bridge.store.outbox import (
    AWAITED_SQL,
    NEXT_DUE_SQL,
    PER_CHANNEL,
    RELINK_SQL,
    THREADS,
    WINDOW_SQL,
    Lane,
    Outgoing,
    SlotKey,
    pending,
    ranked,
)

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

_KEY_WHERE: Final = "story_id = ? AND destination = ? AND platform = ? AND slot = ?"


def _key(key: SlotKey) -> tuple[str, str, str, str]:
    return (key.story_id, key.destination, key.platform, key.slot)


def _at(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _slots(conn: sqlite3.Connection, story_ids: Sequence[str]) -> list[Slot]:
    marks = ", ".join("?" * len(story_ids))
    rows = conn.execute(
        "SELECT story_id, destination, platform, slot, kind, content, desired_version,"
        f" posted_version, ref, attempt_us IS NOT NULL FROM outbox WHERE story_id IN ({marks})",
        tuple(story_ids),
    ).fetchall()
    return [
        Slot(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8], bool(row[9]))
        for row in rows
    ]


def plan(
    conn: sqlite3.Connection,
    story_id: str,
    planned: Sequence[Planned],
    *,
    now_us: int,
    missed_due_us: int,
    allow_new: bool,
) -> int:
    """Record what the story should show (see :func:`decide_plan`); returns the work made."""
    changes = decide_plan(
        _slots(conn, [story_id]),
        list(planned),
        now_us=now_us,
        missed_due_us=missed_due_us,
        allow_new=allow_new,
    )
    for change in changes:
        match change:
            case Insert(planned=p, due_us=due):
                conn.execute(
                    "INSERT INTO outbox (story_id, destination, platform, slot, channel, kind,"
                    " sort_order, content, final, desired_version, desired_us, due_us,"
                    " created_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)",
                    (story_id, p.destination, p.platform, p.slot, p.channel, p.kind, p.order,
                     p.content, int(p.final), now_us, due, now_us),
                )  # fmt: skip
            case Update(planned=p, due_us=due):
                conn.execute(
                    "UPDATE outbox SET content = ?, final = ?, sort_order = ?,"
                    " desired_version = desired_version + 1, desired_us = ?,"
                    f" due_us = coalesce(?, due_us), failed = 0 WHERE {_KEY_WHERE}",
                    (p.content, int(p.final), p.order, now_us, due,
                     story_id, p.destination, p.platform, p.slot),
                )  # fmt: skip
            case Retract(slot=row):
                _retract(conn, row, row.story_id, row.slot, now_us)
            case Drop(slot=row):
                conn.execute(f"DELETE FROM outbox WHERE {_KEY_WHERE}", _row_key(row))
    return len(changes)


def _row_key(row: Slot) -> tuple[str, str, str, str]:
    return (row.story_id, row.destination, row.platform, row.slot)


def _retract(conn: sqlite3.Connection, row: Slot, story_id: str, slot: str, now_us: int) -> None:
    conn.execute(
        "UPDATE outbox SET story_id = ?, slot = ?, content = NULL,"
        " desired_version = desired_version + 1, desired_us = ?, due_us = ?, failed = 0"
        f" WHERE {_KEY_WHERE}",
        (story_id, slot, now_us, now_us, *_row_key(row)),
    )


def decided(conn: sqlite3.Connection, story_id: str) -> list[Decided]:
    rows = conn.execute(
        "SELECT destination, platform, channel, kind, content FROM outbox WHERE story_id = ?"
        " AND slot IN ('root', 'missed', 'summary') ORDER BY destination, platform, slot",
        (story_id,),
    ).fetchall()
    return [Decided(*row) for row in rows]


_WINDOW: Final = WINDOW_SQL.format(*"?????")
_RELINK: Final = RELINK_SQL.format("?1", "?2", "?3")
_AWAITED: Final = AWAITED_SQL.format(*"????")
# Distinct pending channels by skipping through the index: O(channels x log backlog).
_FIRST_PLATFORM: Final = f"SELECT min(o.platform) FROM outbox AS o WHERE {pending('o')}"
_NEXT_PLATFORM: Final = f"{_FIRST_PLATFORM} AND o.platform > ?"
_NEXT_CHANNEL: Final = (
    f"SELECT min(o.channel) FROM outbox AS o WHERE {pending('o')} AND o.platform = ?"
    " AND o.channel > ?"
)


def _outgoing(row: tuple[object, ...]) -> Outgoing:
    return Outgoing(
        key=SlotKey(str(row[0]), str(row[1]), str(row[2]), str(row[3])),
        channel=str(row[4]),
        kind=cast(Kind, row[5]),
        order=int(cast(int, row[6])),
        content=cast(bytes | None, row[7]),
        version=int(cast(int, row[8])),
        ref=cast(str | None, row[9]),
        attempted=row[10] is not None,
        attempts=int(cast(int, row[11])),
        final=bool(row[12]),
        created_at=_at(cast(int, row[13])),
        desired_at=_at(cast(int, row[14])),
        root_ref=cast(str | None, row[15]),
        priority=int(cast(int, row[16])),
    )


def _channels(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    platform = conn.execute(_FIRST_PLATFORM).fetchone()[0]
    while platform is not None:
        channel = ""
        while channel := conn.execute(_NEXT_CHANNEL, (platform, channel)).fetchone()[0]:
            found.append((platform, channel))
        platform = conn.execute(_NEXT_PLATFORM, (platform,)).fetchone()[0]
    return found


def due(
    conn: sqlite3.Connection, *, now_us: int, limit: int, closed: Collection[Lane] = ()
) -> list[Outgoing]:
    windows: list[list[Outgoing]] = []
    for platform, channel in _channels(conn):
        for lane in (0, 1):
            if (platform, channel, lane) in closed:
                continue
            rows = conn.execute(_WINDOW, (platform, channel, lane, now_us, PER_CHANNEL))
            windows.append([_outgoing(r) for r in rows])
        if (platform, channel, 0) not in closed:
            rows = conn.execute(_AWAITED, (platform, channel, now_us, PER_CHANNEL))
            windows.append([_outgoing(r) for r in rows])
    return ranked(windows, limit)


def next_due(conn: sqlite3.Connection) -> int | None:
    row = conn.execute(NEXT_DUE_SQL).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def begin_attempt(conn: sqlite3.Connection, key: SlotKey, now_us: int) -> None:
    conn.execute(f"UPDATE outbox SET attempt_us = ? WHERE {_KEY_WHERE}", (now_us, *_key(key)))


def posted(conn: sqlite3.Connection, key: SlotKey, version: int, ref: str | None) -> bool:
    if key.slot == "root" and ref is not None:
        conn.execute(_RELINK, _key(key)[:3])
    found = (
        conn.execute(
            "UPDATE outbox SET posted_version = max(posted_version, ?), ref = ?, attempt_us = NULL,"
            f" attempts = 0, last_error = NULL WHERE {_KEY_WHERE}",
            (version, ref, *_key(key)),
        ).rowcount
        > 0
    )
    if key.slot in THREADS:  # replies that gave up with their parent may go now
        conn.execute(
            "UPDATE outbox SET failed = 0 WHERE story_id = ? AND destination = ?"
            " AND platform = ? AND slot LIKE ? AND failed = 1",
            (*_key(key)[:3], THREADS[key.slot]),
        )
    return found


def retry(
    conn: sqlite3.Connection, key: SlotKey, *, due_us: int, error: str, maybe_sent: bool
) -> None:
    conn.execute(
        "UPDATE outbox SET attempts = attempts + 1, due_us = ?, last_error = ?,"
        f" attempt_us = CASE WHEN ? THEN attempt_us ELSE NULL END WHERE {_KEY_WHERE}",
        (due_us, error, maybe_sent, *_key(key)),
    )


def give_up(conn: sqlite3.Connection, key: SlotKey, error: str) -> None:
    conn.execute(
        f"UPDATE outbox SET failed = 1, last_error = ?, attempt_us = NULL WHERE {_KEY_WHERE}",
        (error, *_key(key)),
    )
    if key.slot in THREADS:  # its replies have no thread to go to
        conn.execute(
            "UPDATE outbox SET failed = 1, last_error = ? WHERE story_id = ? AND"
            " destination = ? AND platform = ? AND slot LIKE ?"
            " AND posted_version < desired_version",
            (f"the {key.slot} message failed: {error}", *_key(key)[:3], THREADS[key.slot]),
        )


def pending_counts(conn: sqlite3.Connection) -> list[tuple[str, str, int]]:
    return [
        (str(r[0]), str(r[1]), int(r[2]))
        for r in conn.execute(
            "SELECT platform, channel, count(*) FROM outbox"
            " WHERE posted_version < desired_version AND failed = 0 GROUP BY platform, channel"
        )
    ]


def merge(conn: sqlite3.Connection, keep: str, gone: str, now_us: int) -> None:
    """Join the slots of two stories a transfer merged (see :func:`decide_merge`)."""
    for change in decide_merge(keep, gone, _slots(conn, [keep, gone])):
        row = change.slot
        match change:
            case Move():
                conn.execute(f"UPDATE outbox SET story_id = ? WHERE {_KEY_WHERE}",
                             (keep, *_row_key(row)))  # fmt: skip
            case Orphan():
                _retract(conn, row, keep, orphan_slot(row.story_id, row.slot), now_us)
            case Drop():
                conn.execute(f"DELETE FROM outbox WHERE {_KEY_WHERE}", _row_key(row))


def purge(conn: sqlite3.Connection, story_ids: Sequence[str]) -> None:
    marks = ", ".join("?" * len(story_ids))
    conn.execute(f"DELETE FROM outbox WHERE story_id IN ({marks})", story_ids)
