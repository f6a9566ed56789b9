"""SQL statements of the SQLite store, run on its writer or reader thread (never the loop)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Final

from bridge.core.events import decode_stored
from bridge.core.slots import Decided
from bridge.store import MAX_EVENTS_PER_STORY, Added, Dispatched, Story
from bridge.store import sqlite_cases as cases
from bridge.store import sqlite_outbox as outbox
from bridge.store.case_rows import CaseWriteRow, StoredCase
from bridge.store.outbox import ShownAlert
from bridge.store.rows import PlanRow, Row, StateRow, from_us


def story_of(conn: sqlite3.Connection, call_id: str) -> str | None:
    row = conn.execute("SELECT story_id FROM links WHERE call_id = ?", (call_id,)).fetchone()
    return None if row is None else str(row[0])


def link(conn: sqlite3.Connection, call_id: str, story_id: str, seq: int) -> None:
    conn.execute(
        "INSERT INTO links (call_id, story_id, linked_seq) VALUES (?, ?, ?)",
        (call_id, story_id, seq),
    )


def add(conn: sqlite3.Connection, row: Row) -> Added:
    inserted = conn.execute(
        "INSERT INTO events (dedupe_key, call_id, status, timestamp_us, received_us, body)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (dedupe_key) DO NOTHING RETURNING seq",
        (row.dedupe_key, row.call_id, row.status, row.timestamp_us, row.received_us, row.body),
    ).fetchone()
    if inserted is None:
        hit = conn.execute(
            "SELECT seq, call_id FROM events WHERE dedupe_key = ?", (row.dedupe_key,)
        ).fetchone()
        return Added("duplicate", story_of(conn, hit[1]) or hit[1], int(hit[0]))
    seq = int(inserted[0])
    if (full := _full_story(conn, row, seq)) is not None:
        conn.execute("DELETE FROM events WHERE seq = ?", (seq,))
        return Added("refused", full, seq)
    if row.merged_id is None:  # the common case: one more event of a known call
        known = conn.execute(
            f"{_TOUCH} WHERE story_id = (SELECT story_id FROM links WHERE call_id = ?)"
            " RETURNING story_id",
            (seq, row.timestamp_us, row.received_us, row.received_us, seq, row.call_id),
        ).fetchone()
        if known is not None:
            return Added("accepted", str(known[0]), seq)
    story_id = story_of(conn, row.call_id)
    if story_id is None:
        story_id = story_of(conn, row.merged_id) if row.merged_id else None
        if story_id is None:
            if _purged(conn, row):  # a redelivery after retention: never posted again
                conn.execute("DELETE FROM events WHERE seq = ?", (seq,))
                return Added("duplicate", row.call_id, seq)
            story_id = row.call_id
            conn.execute(
                "INSERT INTO stories (story_id, first_seq, first_received_us, max_seq,"
                " last_event_us, last_received_us, dirty, dirty_seq)"
                " VALUES (?, ?, ?, ?, ?, ?, 1, ?)",
                (story_id, seq, row.received_us, seq, row.timestamp_us, row.received_us, seq),
            )
        link(conn, row.call_id, story_id, seq)
    merged_from = None
    if row.merged_id is not None:
        other = story_of(conn, row.merged_id)
        if other is None:
            link(conn, row.merged_id, story_id, seq)
        elif other != story_id:
            story_id, merged_from = merge(conn, story_id, other, seq, row.received_us)
    conn.execute(
        f"{_TOUCH} WHERE story_id = ?",
        (seq, row.timestamp_us, row.received_us, row.received_us, seq, story_id),
    )
    return Added("accepted", story_id, seq, merged_from)


_COUNT: Final = (
    "SELECT count(*) FROM (SELECT 1 FROM links AS l JOIN events AS e ON e.call_id = l.call_id"
    " WHERE l.story_id = ? AND e.seq <> ? LIMIT ?)"
)


def _full_story(conn: sqlite3.Connection, row: Row, seq: int) -> str | None:
    """The story the new event ``seq`` would join (merging with) when it already holds
    MAX_EVENTS_PER_STORY events; None when the event fits."""
    ids = (row.call_id,) if row.merged_id is None else (row.call_id, row.merged_id)
    stories = list(dict.fromkeys(s for s in (story_of(conn, i) for i in ids) if s is not None))
    held = 0
    for story_id in stories:
        held += conn.execute(_COUNT, (story_id, seq, MAX_EVENTS_PER_STORY)).fetchone()[0]
    return stories[0] if stories and held >= MAX_EVENTS_PER_STORY else None


def _purged(conn: sqlite3.Connection, row: Row) -> bool:
    ids = (row.call_id,) if row.merged_id is None else (row.call_id, row.merged_id)
    marks = ", ".join("?" * len(ids))
    query = f"SELECT 1 FROM purged_calls WHERE call_id IN ({marks}) LIMIT 1"
    return conn.execute(query, ids).fetchone() is not None


# A new event of a story: bookkeeping, and the dirty mark (kept from the oldest unemitted seq).
_TOUCH: Final = (
    "UPDATE stories SET max_seq = max(max_seq, ?), last_event_us = max(last_event_us, ?),"
    " first_received_us = min(first_received_us, ?),"
    " last_received_us = max(last_received_us, ?),"
    " dirty_seq = CASE WHEN dirty = 1 THEN dirty_seq ELSE ? END, dirty = 1"
)


def merge(conn: sqlite3.Connection, a: str, b: str, seq: int, now_us: int) -> tuple[str, str]:
    """Join stories ``a`` and ``b``: the one first seen survives. Returns (survivor, absorbed)."""
    cols = (
        "story_id, first_seq, first_received_us, max_seq, last_event_us, dirty, dirty_seq,"
        " last_received_us, rules_version"
    )
    rows = conn.execute(
        f"SELECT {cols} FROM stories WHERE story_id IN (?, ?) ORDER BY first_seq",
        (a, b),
    ).fetchall()
    keep, gone = rows
    dirty_since = [r[6] for r in rows if r[5] == 1 and r[6] is not None] + [seq]
    conn.execute("UPDATE links SET story_id = ? WHERE story_id = ?", (keep[0], gone[0]))
    conn.execute(
        "UPDATE stories SET first_received_us = ?, max_seq = ?, last_event_us = ?,"
        " dirty = 1, dirty_seq = ?, last_received_us = ?, rules_version = ? WHERE story_id = ?",
        (
            min(keep[2], gone[2]),
            max(keep[3], gone[3]),
            max(keep[4], gone[4]),
            min(dirty_since),
            max(keep[7], gone[7]),
            keep[8] or gone[8],  # the survivor's rules, else those the other was routed by
            keep[0],
        ),
    )
    conn.execute("DELETE FROM stories WHERE story_id = ?", (gone[0],))
    outbox.merge(conn, str(keep[0]), str(gone[0]), now_us)
    cases.merged(conn, str(gone[0]))
    return str(keep[0]), str(gone[0])


def save_state(conn: sqlite3.Connection, story_id: str, state: StateRow) -> bool:
    # The story the id resolves to now (a merge may have absorbed it); none: purged meanwhile.
    row = conn.execute(
        "UPDATE stories SET digest = ?, ended_us = ?, last_event_us = max(last_event_us, ?),"
        " rules_version = coalesce(rules_version, ?),"
        " dirty = CASE WHEN max_seq <= ? THEN 0 ELSE dirty END,"
        " dirty_seq = CASE WHEN max_seq <= ? THEN NULL ELSE dirty_seq END"
        " WHERE story_id = (SELECT story_id FROM links WHERE call_id = ?) RETURNING dirty",
        (
            state.digest,
            state.ended_us,
            state.last_event_us,
            state.rules_version,
            state.upto_seq,
            state.upto_seq,
            story_id,
        ),
    ).fetchone()
    return row is None or row[0] == 0


def purge_chunk(conn: sqlite3.Connection, *, cutoff: int, now_us: int, n: int) -> int:
    """Delete up to ``n`` stories that ended and were last heard of before ``cutoff``,
    remembering their call ids (see migration 0004's ``purged_calls``), and the digests
    planned before ``cutoff``."""
    outbox.purge_digests(conn, cutoff)
    ids = [
        r[0]
        for r in conn.execute(
            "SELECT story_id FROM stories WHERE ended_us IS NOT NULL AND last_received_us < ?"
            " ORDER BY last_received_us LIMIT ?",
            (cutoff, n),
        )
    ]
    if ids:
        marks = ", ".join("?" * len(ids))
        conn.execute(
            "INSERT INTO purged_calls (call_id, purged_us) SELECT call_id, ? FROM links"
            f" WHERE story_id IN ({marks}) ON CONFLICT (call_id) DO NOTHING",
            (now_us, *ids),
        )
        conn.execute(
            "DELETE FROM events WHERE call_id IN"
            f" (SELECT call_id FROM links WHERE story_id IN ({marks}))",
            ids,
        )
        conn.execute(f"DELETE FROM links WHERE story_id IN ({marks})", ids)
        conn.execute(f"DELETE FROM stories WHERE story_id IN ({marks})", ids)
        outbox.purge(conn, ids)
        cases.purge(conn, ids, cutoff, now_us)
    return len(ids)


def forget(conn: sqlite3.Connection, *, before_us: int) -> None:
    """Forget purged call ids and unused rules versions older than ``before_us``."""
    conn.execute("DELETE FROM purged_calls WHERE purged_us < ?", (before_us,))
    conn.execute(
        "DELETE FROM rulesets WHERE stored_us < ? AND version NOT IN"
        " (SELECT rules_version FROM stories WHERE rules_version IS NOT NULL)",
        (before_us,),
    )


def save_ruleset(
    conn: sqlite3.Connection, *, version: str, source: str, text: str, now_us: int
) -> None:
    conn.execute(
        "INSERT INTO rulesets (version, source, text, stored_us) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (version) DO UPDATE SET stored_us = excluded.stored_us",
        (version, source, text, now_us),
    )


def ruleset(conn: sqlite3.Connection, version: str) -> tuple[str, str] | None:
    row = conn.execute("SELECT source, text FROM rulesets WHERE version = ?", (version,)).fetchone()
    return None if row is None else (str(row[0]), str(row[1]))


def read_story(conn: sqlite3.Connection, call_id: str) -> Story | None:
    story_id = story_of(conn, call_id)
    if story_id is None:
        return None
    row = conn.execute(
        "SELECT max_seq, first_received_us, digest, ended_us, rules_version, last_received_us"
        " FROM stories WHERE story_id = ?",
        (story_id,),
    ).fetchone()
    if row is None:
        return None
    call_ids = conn.execute(
        "SELECT call_id FROM links WHERE story_id = ? ORDER BY linked_seq, call_id", (story_id,)
    ).fetchall()
    bodies = conn.execute(
        "SELECT e.body FROM events AS e JOIN links AS l ON l.call_id = e.call_id"
        " WHERE l.story_id = ? ORDER BY e.seq",
        (story_id,),
    ).fetchall()
    return Story(
        story_id=story_id,
        call_ids=tuple(str(r[0]) for r in call_ids),
        events=tuple(decode_stored(r[0]) for r in bodies),
        max_seq=int(row[0]),
        first_stored_at=from_us(row[1]),
        digest=row[2],
        ended_at=None if row[3] is None else from_us(row[3]),
        rules_version=row[4],
        last_received_at=from_us(row[5]),
    )


def read_stories(conn: sqlite3.Connection, call_ids: Sequence[str]) -> dict[str, Story]:
    """:func:`read_story` for many ids (requested id -> story; unknown ids left out)."""
    found = {i: read_story(conn, i) for i in call_ids}
    return {i: story for i, story in found.items() if story is not None}


def dirty_stories(conn: sqlite3.Connection, limit: int) -> list[str]:
    query = "SELECT story_id FROM stories WHERE dirty = 1 ORDER BY dirty_seq LIMIT ?"
    return [str(r[0]) for r in conn.execute(query, (limit,))]


def open_stories(conn: sqlite3.Connection, before_us: int, limit: int) -> list[str]:
    query = (
        "SELECT story_id FROM stories WHERE ended_us IS NULL AND last_received_us < ?"
        " ORDER BY last_received_us LIMIT ?"
    )
    return [str(r[0]) for r in conn.execute(query, (before_us, limit))]


def count_open(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM stories WHERE ended_us IS NULL").fetchone()[0])


def plan_story(conn: sqlite3.Connection, story_id: str, plan: PlanRow) -> int:
    """Record what the story ``story_id`` resolves to should show; returns the work made."""
    resolved = story_of(conn, story_id)
    return 0 if resolved is None else _plan(conn, resolved, plan)


def _plan(conn: sqlite3.Connection, story_id: str, plan: PlanRow) -> int:
    return outbox.plan(
        conn,
        story_id,
        plan.planned,
        now_us=plan.now_us,
        missed_due_us=plan.missed_due_us,
        allow_new=plan.allow_new,
    )


_CALLS: Final = "SELECT count(*) FROM links WHERE story_id = ?"


def dispatched(
    conn: sqlite3.Connection,
    story_id: str,
    state: StateRow,
    plan: PlanRow | None,
    case_write: CaseWriteRow | None,
) -> Dispatched:
    """A refold's plan, case facts and state, in one transaction (nothing when the story is
    not what was folded any more: see ``Store.dispatched``)."""
    resolved = story_of(conn, story_id)
    if resolved is None:  # purged meanwhile
        return Dispatched(0, True)
    if resolved != story_id or (
        state.calls is not None and conn.execute(_CALLS, (resolved,)).fetchone()[0] != state.calls
    ):
        return Dispatched(0, False, stale=True)
    made = 0 if plan is None else _plan(conn, resolved, plan)  # resolved == story_id
    refold: list[str] = []
    closed: tuple[StoredCase, ...] = ()
    current = True
    if case_write is not None:
        refold, closing, current = cases.write(conn, resolved, case_write)
        closed = tuple(closing)
    clean = save_state(conn, story_id, state)
    if not current:  # facts arrived since they were read: fold it again
        cases.mark_dirty(conn, [resolved])
        clean = False
    return Dispatched(made, clean, tuple(refold), tuple(c.row() for c in closed))


def decided_for(conn: sqlite3.Connection, story_id: str) -> list[Decided]:
    resolved = story_of(conn, story_id)
    return [] if resolved is None else outbox.decided(conn, resolved)


def shown_alerts_for(conn: sqlite3.Connection, story_id: str, platform: str) -> list[ShownAlert]:
    resolved = story_of(conn, story_id)
    return [] if resolved is None else outbox.shown_alerts(conn, resolved, platform)
