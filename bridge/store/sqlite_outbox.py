"""Outbox statements of the SQLite store (see bridge/store/outbox.py for the model)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Final, cast

from bridge.store.outbox import Kind, Outgoing, Planned, SlotKey

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

_KEY_WHERE: Final = "story_id = ? AND destination = ? AND platform = ? AND slot = ?"


def _key(key: SlotKey) -> tuple[str, str, str, str]:
    return (key.story_id, key.destination, key.platform, key.slot)


def _at(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def plan(
    conn: sqlite3.Connection,
    story_id: str,
    planned: Sequence[Planned],
    *,
    now_us: int,
    missed_due_us: int,
    allow_new: bool,
) -> int:
    """Record what the story should show; returns how many slots now need work.

    A slot's desired version only moves when its content changes (bursts coalesce: the
    delivery layer always sends the newest). New (destination, kind) decisions are taken
    only when ``allow_new``; once a decision exists its slots follow the call (new thread
    replies, the final root), whatever the rules say now. A missed alert that is no longer
    planned (a late answer arrived) is retracted.
    """
    existing = {
        (r[0], r[1], r[2]): (r[3], r[4], r[5], r[6])
        for r in conn.execute(
            "SELECT destination, platform, slot, kind, content, desired_version, posted_version"
            " FROM outbox WHERE story_id = ?",
            (story_id,),
        )
    }
    decided = {(dest, platform, row[0]) for (dest, platform, _slot), row in existing.items()}
    changed = 0
    for p in planned:
        row = existing.pop((p.destination, p.platform, p.slot), None)
        due = missed_due_us if p.kind == "missed" else now_us
        if row is None:
            if not allow_new and (p.destination, p.platform, p.kind) not in decided:
                continue
            conn.execute(
                "INSERT INTO outbox (story_id, destination, platform, slot, channel, kind,"
                " sort_order, content, final, desired_version, desired_us, due_us, created_us)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)",
                (story_id, p.destination, p.platform, p.slot, p.channel, p.kind, p.order,
                 p.content, int(p.final), now_us, due, now_us),
            )  # fmt: skip
            changed += 1
        elif row[1] != p.content:
            up_to_date = row[3] >= row[2]
            conn.execute(
                "UPDATE outbox SET content = ?, final = ?, sort_order = ?,"
                " desired_version = desired_version + 1, desired_us = ?,"
                " due_us = CASE WHEN ? THEN ? ELSE due_us END, failed = 0"
                f" WHERE {_KEY_WHERE}",
                (p.content, int(p.final), p.order, now_us, up_to_date, due,
                 story_id, p.destination, p.platform, p.slot),
            )  # fmt: skip
            changed += 1
    for (dest, platform, slot), (kind, content, _v, _p) in existing.items():
        if kind == "missed" and content is not None:
            conn.execute(
                "UPDATE outbox SET content = NULL, desired_version = desired_version + 1,"
                f" desired_us = ?, due_us = ? WHERE {_KEY_WHERE}",
                (now_us, now_us, story_id, dest, platform, slot),
            )
            changed += 1
    return changed


_SELECT: Final = (
    "SELECT o.story_id, o.destination, o.platform, o.slot, o.channel, o.kind, o.sort_order,"
    " o.content, o.desired_version, o.ref, o.attempt_us, o.attempts, o.final, o.created_us,"
    " o.desired_us, (SELECT r.ref FROM outbox AS r WHERE r.story_id = o.story_id"
    "   AND r.destination = o.destination AND r.platform = o.platform AND r.slot = 'root')"
    " FROM outbox AS o"
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
    )


def due(conn: sqlite3.Connection, *, now_us: int, limit: int) -> list[Outgoing]:
    rows = conn.execute(
        f"{_SELECT} WHERE o.posted_version < o.desired_version AND o.failed = 0"
        " AND o.due_us <= ? ORDER BY o.due_us LIMIT ?",
        (now_us, limit),
    ).fetchall()
    return [_outgoing(r) for r in rows]


def next_due(conn: sqlite3.Connection) -> int | None:
    row = conn.execute(
        "SELECT min(due_us) FROM outbox WHERE posted_version < desired_version AND failed = 0"
    ).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def begin_attempt(conn: sqlite3.Connection, key: SlotKey, now_us: int) -> None:
    conn.execute(f"UPDATE outbox SET attempt_us = ? WHERE {_KEY_WHERE}", (now_us, *_key(key)))


def posted(conn: sqlite3.Connection, key: SlotKey, version: int, ref: str | None) -> None:
    conn.execute(
        "UPDATE outbox SET posted_version = max(posted_version, ?), ref = ?, attempt_us = NULL,"
        f" attempts = 0, last_error = NULL WHERE {_KEY_WHERE}",
        (version, ref, *_key(key)),
    )


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


def pending_counts(conn: sqlite3.Connection) -> list[tuple[str, str, int]]:
    return [
        (str(r[0]), str(r[1]), int(r[2]))
        for r in conn.execute(
            "SELECT platform, channel, count(*) FROM outbox"
            " WHERE posted_version < desired_version AND failed = 0 GROUP BY platform, channel"
        )
    ]


def merge(conn: sqlite3.Connection, keep: str, gone: str, now_us: int) -> None:
    """Move the absorbed story's slots to the survivor so posted threads continue.

    Where both stories have the same slot, the posted one is kept (the survivor's when both
    are); the other becomes an orphan: retracted if it was posted, dropped if it was not.
    """
    rows = conn.execute(
        "SELECT g.destination, g.platform, g.slot, g.ref, k.ref, k.slot IS NOT NULL"
        " FROM outbox AS g LEFT JOIN outbox AS k ON k.story_id = ? AND"
        " k.destination = g.destination AND k.platform = g.platform AND k.slot = g.slot"
        " WHERE g.story_id = ?",
        (keep, gone),
    ).fetchall()
    for dest, platform, slot, gone_ref, keep_ref, collides in rows:
        swap = collides and gone_ref is not None and keep_ref is None
        if swap:
            # The absorbed story's posted message carries on for the survivor.
            _orphan(conn, (keep, dest, platform, slot), new_story=keep, now_us=now_us)
        if swap or not collides:
            conn.execute(
                "UPDATE outbox SET story_id = ? WHERE story_id = ? AND destination = ?"
                " AND platform = ? AND slot = ?",
                (keep, gone, dest, platform, slot),
            )
        else:
            _orphan(conn, (gone, dest, platform, slot), new_story=keep, now_us=now_us)


def _orphan(
    conn: sqlite3.Connection,
    args: tuple[str, str, str, str],
    *,
    new_story: str,
    now_us: int,
) -> None:
    """Drop an unposted slot; re-key a posted one as ``orphan:`` to be retracted."""
    where = _KEY_WHERE
    story_id, _dest, _platform, slot = args
    new_slot = f"orphan:{story_id}:{slot}"
    ref = conn.execute(f"SELECT ref FROM outbox WHERE {where}", args).fetchone()
    if ref is None or ref[0] is None:
        conn.execute(f"DELETE FROM outbox WHERE {where}", args)
        return
    conn.execute(
        "UPDATE outbox SET story_id = ?, slot = ?, content = NULL, kind = 'live',"
        " desired_version = desired_version + 1, desired_us = ?, due_us = ?, failed = 0"
        f" WHERE {where}",
        (new_story, new_slot, now_us, now_us, *args),
    )


def purge(conn: sqlite3.Connection, story_ids: Sequence[str]) -> None:
    marks = ", ".join("?" * len(story_ids))
    conn.execute(f"DELETE FROM outbox WHERE story_id IN ({marks})", story_ids)
