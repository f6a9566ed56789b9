"""Callback case statements of the SQLite store (migration 0005; the model is
bridge/core/cases.py). Run on the writer or reader thread, inside the caller's transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from bridge.core.cases import CaseKey, Click, decode_fact, fingerprint
from bridge.store import MAX_FACTS_PER_NUMBER, CaseHistory, ClickAdded
from bridge.store.case_rows import (
    ANCHORS_SQL,
    ARCHIVED_SQL,
    CUT_SQL,
    FACTS_SQL,
    NEVER_US,
    CaseWriteRow,
    FactRow,
    StoredCase,
    changed_since,
    fact_row,
)
from bridge.store.outbox import sqlite_style
from bridge.store.rows import from_us

Key = tuple[str, str]

_CASE_COLS = "case_id, scope, number, opened_us, closed_us, how, check_us"


def _window(conn: sqlite3.Connection, key: Key) -> tuple[int | None, bool]:
    """The time (µs) up to which the number's facts are left out of its refolds (None:
    none are), and whether that is the MAX_FACTS_PER_NUMBER cap rather than retention."""
    archived = conn.execute(_ARCHIVED, key).fetchone()
    until = None if archived is None else int(archived[0])
    after = NEVER_US if until is None else until
    cut = conn.execute(_CUT, (*key, after, MAX_FACTS_PER_NUMBER)).fetchone()
    return (until, False) if cut is None else (int(cut[0]), True)


def _bodies(conn: sqlite3.Connection, key: Key, until: int | None) -> list[bytes]:
    """The number's facts after ``until`` (µs; from :func:`_window`)."""
    rows = conn.execute(_FACTS, (*key, NEVER_US if until is None else until)).fetchall()
    return [bytes(r[0]) for r in rows]


def read(conn: sqlite3.Connection, keys: Sequence[CaseKey]) -> dict[CaseKey, CaseHistory]:
    out = {}
    for k in keys:
        until, capped = _window(conn, (k.scope, k.number))
        facts = [decode_fact(b) for b in _bodies(conn, (k.scope, k.number), until)]
        out[k] = CaseHistory(facts, None if until is None else from_us(until), capped)
    return out


# One statement whatever the number of stories: an ``IN (?, ?, …)`` list per count would be
# a new prepared statement per count, and the sqlite3 module keeps 128 of them per connection
# (a number with hundreds of missed calls made them tens of MiB).
_MARK_DIRTY: Final = (
    "UPDATE stories SET dirty_seq = CASE WHEN dirty = 1 THEN dirty_seq ELSE max_seq END,"
    " dirty = 1 WHERE story_id = ?"
)


def mark_dirty(conn: sqlite3.Connection, story_ids: Iterable[str]) -> None:
    conn.executemany(_MARK_DIRTY, ((story_id,) for story_id in story_ids))


def _anchors(conn: sqlite3.Connection, since: Mapping[Key, int], but: str | None) -> list[str]:
    """The stories whose alerts may show a change of these numbers' cases, each number's
    facts having changed from the given time on (``ANCHORS_SQL``)."""
    found: set[str] = set()
    for (scope, number), at_us in since.items():
        rows = conn.execute(_ANCHORS, (scope, number, at_us))
        found.update(str(r[0]) for r in rows if r[0] != but)
    return sorted(found)


_ANCHORS: Final = sqlite_style(ANCHORS_SQL)
_ARCHIVED: Final = sqlite_style(ARCHIVED_SQL)
_CUT: Final = sqlite_style(CUT_SQL)
_FACTS: Final = sqlite_style(FACTS_SQL)


def _insert(conn: sqlite3.Connection, story_id: str | None, row: FactRow, now_us: int) -> None:
    conn.execute(
        "INSERT INTO case_facts (scope, number, fact_id, story_id, kind, at_us, received_us,"
        " body) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (scope, number, fact_id) DO UPDATE"
        " SET story_id = excluded.story_id, kind = excluded.kind, at_us = excluded.at_us,"
        " body = excluded.body",
        (row.scope, row.number, row.fact_id, story_id, row.kind, row.at_us, now_us, row.body),
    )


def write(
    conn: sqlite3.Connection, story_id: str, write: CaseWriteRow
) -> tuple[list[str], list[StoredCase], bool]:
    """Replace the story's facts and case; returns (stories marked dirty, cases closed by
    this write, whether the facts the refold folded are still the stored ones)."""
    old = conn.execute(
        "SELECT scope, number, fact_id, body, at_us FROM case_facts WHERE story_id = ?",
        (story_id,),
    ).fetchall()
    before = {(r[0], r[1], r[2], bytes(r[3]), int(r[4])) for r in old}
    after = {(f.scope, f.number, f.fact_id, f.body, f.at_us) for f in write.facts}
    refold: list[str] = []
    if before != after:
        conn.execute("DELETE FROM case_facts WHERE story_id = ?", (story_id,))
        for row in write.facts:
            _insert(conn, story_id, row, write.now_us)
        refold = _anchors(conn, changed_since(before, after), story_id)
        mark_dirty(conn, refold)
    closed = _write_cases(conn, story_id, write.cases)
    current = all(
        fingerprint(_bodies(conn, key, _window(conn, key)[0])) == folded
        for key, folded in write.folded.items()
    )
    return refold, closed, current


def _write_cases(
    conn: sqlite3.Connection, story_id: str, cases: Sequence[StoredCase]
) -> list[StoredCase]:
    was = conn.execute("SELECT closed_us FROM cases WHERE case_id = ?", (story_id,)).fetchone()
    conn.execute("DELETE FROM cases WHERE case_id = ?", (story_id,))
    closed = []
    for c in cases:
        # The same closing recorded under another first call (a missed call that sorts
        # earlier arrived late and took the case over): it closed once, not twice.
        known = conn.execute(
            "SELECT 1 FROM cases WHERE scope = ? AND number = ? AND closed_us = ? AND how = ?",
            (c.scope, c.number, c.closed_us, c.how),
        ).fetchone()
        conn.execute(
            f"INSERT INTO cases ({_CASE_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (c.case_id, c.scope, c.number, c.opened_us, c.closed_us, c.how, c.check_us),
        )
        if c.closed_us is not None and (was is None or was[0] is None) and known is None:
            closed.append(c)
    return closed


def add_click(
    conn: sqlite3.Connection, key: CaseKey, click: Click, received_us: int, signature: str
) -> ClickAdded:
    seen = conn.execute("SELECT 1 FROM case_facts WHERE request_sig = ?", (signature,))
    if seen.fetchone() is not None:
        return ClickAdded("replayed")
    row = fact_row(key, click)
    inserted = conn.execute(
        "INSERT INTO case_facts (scope, number, fact_id, story_id, kind, at_us, received_us,"
        " request_sig, body) VALUES (?, ?, ?, NULL, ?, ?, ?, ?, ?)"
        " ON CONFLICT (scope, number, fact_id) DO NOTHING RETURNING fact_id",
        (row.scope, row.number, row.fact_id, row.kind, row.at_us, received_us, signature, row.body),
    ).fetchone()
    if inserted is None:
        return ClickAdded("duplicate")
    refold = _anchors(conn, {(key.scope, key.number): row.at_us}, None)
    mark_dirty(conn, refold)
    return ClickAdded("accepted", tuple(refold))


def merged(conn: sqlite3.Connection, gone: str) -> None:
    """A merge absorbed story ``gone``: its facts and case go (the survivor's refold writes
    its own), and the stories of the numbers they touched are folded again."""
    keys = conn.execute(
        "SELECT scope, number, min(at_us) FROM case_facts WHERE story_id = ?"
        " GROUP BY scope, number",
        (gone,),
    ).fetchall()
    conn.execute("DELETE FROM case_facts WHERE story_id = ?", (gone,))
    conn.execute("DELETE FROM cases WHERE case_id = ?", (gone,))
    mark_dirty(conn, _anchors(conn, {(str(s), str(n)): int(t) for s, n, t in keys}, None))


def purge(conn: sqlite3.Connection, story_ids: Sequence[str], cutoff_us: int, now_us: int) -> None:
    """Retention: the facts and cases of purged stories go; a purged case archives its
    number's facts up to its close, so they never make a case again; old clicks go."""
    marks = ", ".join("?" * len(story_ids))
    rows = conn.execute(
        f"SELECT scope, number, coalesce(closed_us, ?) FROM cases WHERE case_id IN ({marks})",
        (now_us, *story_ids),
    ).fetchall()
    for scope, number, until in rows:
        conn.execute(
            "INSERT INTO case_archive (scope, number, until_us) VALUES (?, ?, ?)"
            " ON CONFLICT (scope, number) DO UPDATE"
            " SET until_us = max(until_us, excluded.until_us)",
            (scope, number, until),
        )
    conn.execute(f"DELETE FROM cases WHERE case_id IN ({marks})", story_ids)
    conn.execute(f"DELETE FROM case_facts WHERE story_id IN ({marks})", story_ids)
    conn.execute("DELETE FROM case_facts WHERE story_id IS NULL AND received_us < ?", (cutoff_us,))


def due(conn: sqlite3.Connection, now_us: int, limit: int) -> list[str]:
    rows = conn.execute(
        "SELECT case_id FROM cases WHERE check_us <= ? ORDER BY check_us LIMIT ?",
        (now_us, limit),
    )
    return [str(r[0]) for r in rows]


def between(conn: sqlite3.Connection, since_us: int, until_us: int) -> list[CaseKey]:
    rows = conn.execute(
        "SELECT DISTINCT scope, number FROM cases WHERE opened_us <= ?"
        " AND (closed_us IS NULL OR closed_us > ?) ORDER BY scope, number",
        (until_us, since_us),
    )
    return [CaseKey(str(scope), str(number)) for scope, number in rows]


def count_open(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM cases WHERE closed_us IS NULL").fetchone()[0])
