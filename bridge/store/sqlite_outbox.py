"""Outbox statements of the SQLite store (see bridge/core/slots.py for the model): the shared
statements of bridge/store/outbox.py, run with SQLite's placeholders, and the reads that
differ from PostgreSQL's (a story's slots, the due work)."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Sequence
from typing import Final

from bridge.core.slots import Decided, Planned, Slot, decide_plan
from bridge.store import outbox as shared
from bridge.store.outbox import Lane, Outgoing, ShownAlert, SlotKey, Write


def _run(conn: sqlite3.Connection, writes: Sequence[Write]) -> int:
    """Run the statements; returns the rows the counting ones changed."""
    found = 0
    for write in writes:
        changed = conn.execute(shared.sqlite_style(write.sql), write.args).rowcount
        found += changed if write.counts else 0
    return found


def _slots(conn: sqlite3.Connection, story_ids: Sequence[str]) -> list[Slot]:
    marks = ", ".join("?" * len(story_ids))
    rows = conn.execute(
        f"SELECT {shared.SLOT_COLUMNS} FROM outbox WHERE story_id IN ({marks})", tuple(story_ids)
    ).fetchall()
    return [
        Slot(
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            row[5],
            row[6],
            row[7],
            row[8],
            attempted=bool(row[9]),
            order=int(row[10]),
        )
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
    _run(conn, shared.plan_writes(story_id, changes, now_us))
    return len(changes)


def decided(conn: sqlite3.Connection, story_id: str) -> list[Decided]:
    rows = conn.execute(shared.sqlite_style(shared.DECIDED_SQL), (story_id,)).fetchall()
    return [Decided(*row) for row in rows]


def shown_alerts(conn: sqlite3.Connection, story_id: str, platform: str) -> list[ShownAlert]:
    rows = conn.execute(shared.sqlite_style(shared.SHOWN_ALERTS_SQL), (story_id, platform))
    return [ShownAlert(*row) for row in rows.fetchall()]


_WINDOW: Final = shared.WINDOW_SQL.format(*"?????")
_AWAITED: Final = shared.AWAITED_SQL.format(*"????")
# Distinct pending channels by skipping through the index: O(channels x log backlog).
_FIRST_PLATFORM: Final = f"SELECT min(o.platform) FROM outbox AS o WHERE {shared.pending('o')}"
_NEXT_PLATFORM: Final = f"{_FIRST_PLATFORM} AND o.platform > ?"
_NEXT_CHANNEL: Final = (
    f"SELECT min(o.channel) FROM outbox AS o WHERE {shared.pending('o')} AND o.platform = ?"
    " AND o.channel > ?"
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


def _windows(
    conn: sqlite3.Connection, platform: str, channel: str, now_us: int, closed: Collection[Lane]
) -> list[list[Outgoing]]:
    """One channel's windows: its two lanes' heads and the roots its alerts wait for."""
    windows: list[list[Outgoing]] = []
    for lane in (0, 1):
        if (platform, channel, lane) not in closed:
            rows = conn.execute(_WINDOW, (platform, channel, lane, now_us, shared.PER_CHANNEL))
            windows.append([shared.outgoing(r) for r in rows])
    if (platform, channel, 0) not in closed:
        rows = conn.execute(_AWAITED, (platform, channel, now_us, shared.PER_CHANNEL))
        windows.append([shared.outgoing(r) for r in rows])
    return windows


def due(
    conn: sqlite3.Connection, *, now_us: int, limit: int, closed: Collection[Lane] = ()
) -> list[Outgoing]:
    windows: list[list[Outgoing]] = []
    for platform, channel in _channels(conn):
        windows += _windows(conn, platform, channel, now_us, closed)
    return shared.ranked(windows, limit)


def next_due(conn: sqlite3.Connection) -> int | None:
    row = conn.execute(shared.NEXT_DUE_SQL).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def begin_attempt(conn: sqlite3.Connection, key: SlotKey, now_us: int) -> None:
    _run(conn, shared.begin_attempt_writes(key, now_us))


def _posted(
    conn: sqlite3.Connection, key: SlotKey, version: int, ref: str | None, *, unlinked: bool
) -> bool:
    return _run(conn, shared.posted_writes(key, version, ref, unlinked=unlinked)) > 0


def posted_next(
    conn: sqlite3.Connection,
    key: SlotKey,
    version: int,
    ref: str | None,
    *,
    unlinked: bool,
    channel: str,
    now_us: int,
) -> tuple[bool, list[Outgoing]]:
    kept = _posted(conn, key, version, ref, unlinked=unlinked)
    try:
        windows = _windows(conn, key.platform, channel, now_us, ())
    except sqlite3.Error:  # the post stays recorded; delivery's next round reads the channel
        return kept, []
    return kept, shared.ranked(windows, shared.NEXT_MAX)


def resume(conn: sqlite3.Connection, platform: str, now_us: int) -> int:
    return _run(conn, shared.resume_writes(platform, now_us))


def retry(
    conn: sqlite3.Connection, key: SlotKey, *, due_us: int, error: str, maybe_sent: bool
) -> None:
    _run(conn, shared.retry_writes(key, due_us=due_us, error=error, maybe_sent=maybe_sent))


def give_up(conn: sqlite3.Connection, key: SlotKey, error: str) -> None:
    _run(conn, shared.give_up_writes(key, error))


def pending_counts(conn: sqlite3.Connection) -> list[tuple[str, str, int]]:
    return [(str(r[0]), str(r[1]), int(r[2])) for r in conn.execute(shared.PENDING_COUNTS_SQL)]


def merge(conn: sqlite3.Connection, keep: str, gone: str, now_us: int) -> None:
    """Join the slots of two stories a transfer merged (``shared.merge_writes``)."""
    _run(conn, shared.merge_writes(keep, gone, _slots(conn, [keep, gone]), now_us))


def add_digests(
    conn: sqlite3.Connection, messages: Sequence[shared.DigestMessage], now_us: int
) -> int:
    return _run(conn, shared.digest_writes(messages, now_us))


def purge_digests(conn: sqlite3.Connection, cutoff_us: int) -> None:
    conn.execute(shared.sqlite_style(shared.PURGE_DIGESTS), (cutoff_us,))


def purge(conn: sqlite3.Connection, story_ids: Sequence[str]) -> None:
    marks = ", ".join("?" * len(story_ids))
    conn.execute(f"DELETE FROM outbox WHERE story_id IN ({marks})", story_ids)
