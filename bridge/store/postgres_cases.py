"""Callback case statements of the PostgreSQL store (the same steps as
bridge/store/sqlite_cases.py; migration 0005). Run inside the caller's transaction, under the
writers' lock for writes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

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
from bridge.store.rows import from_us

if TYPE_CHECKING:
    from asyncpg import Connection  # type: ignore[import-untyped]
else:
    Connection = Any

Key = tuple[str, str]

_CASE_COLS = "case_id, scope, number, opened_us, closed_us, how, check_us"


async def _window(conn: Connection, key: Key) -> tuple[int | None, bool]:
    """The time (µs) up to which the number's facts are left out of its refolds (None:
    none are), and whether that is the MAX_FACTS_PER_NUMBER cap rather than retention."""
    archived = await conn.fetchval(ARCHIVED_SQL, *key)
    until = None if archived is None else int(archived)
    after = NEVER_US if until is None else until
    cut = await conn.fetchval(CUT_SQL, *key, after, MAX_FACTS_PER_NUMBER)
    return (until, False) if cut is None else (int(cut), True)


async def _bodies(conn: Connection, key: Key, until: int | None) -> list[bytes]:
    """The number's facts after ``until`` (µs; from :func:`_window`)."""
    rows = await conn.fetch(FACTS_SQL, *key, NEVER_US if until is None else until)
    return [bytes(r["body"]) for r in rows]


async def read(conn: Connection, keys: Sequence[CaseKey]) -> dict[CaseKey, CaseHistory]:
    out: dict[CaseKey, CaseHistory] = {}
    for k in keys:
        until, capped = await _window(conn, (k.scope, k.number))
        facts = [decode_fact(b) for b in await _bodies(conn, (k.scope, k.number), until)]
        out[k] = CaseHistory(facts, None if until is None else from_us(until), capped)
    return out


async def mark_dirty(conn: Connection, story_ids: Iterable[str]) -> None:
    ids = list(story_ids)
    if ids:
        await conn.execute(
            "UPDATE stories SET dirty_seq = CASE WHEN dirty THEN dirty_seq ELSE max_seq END,"
            " dirty = TRUE WHERE story_id = ANY($1::text[])",
            ids,
        )


async def _anchors(conn: Connection, since: Mapping[Key, int], but: str | None) -> list[str]:
    """The stories whose alerts may show a change of these numbers' cases, each number's
    facts having changed from the given time on (``ANCHORS_SQL``)."""
    found: set[str] = set()
    for (scope, number), at_us in since.items():
        rows = await conn.fetch(ANCHORS_SQL, scope, number, at_us)
        found.update(str(r["story_id"]) for r in rows if r["story_id"] != but)
    return sorted(found)


async def _insert(conn: Connection, story_id: str | None, row: FactRow, now_us: int) -> None:
    await conn.execute(
        "INSERT INTO case_facts (scope, number, fact_id, story_id, kind, at_us, received_us,"
        " body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (scope, number, fact_id)"
        " DO UPDATE SET story_id = excluded.story_id, kind = excluded.kind,"
        " at_us = excluded.at_us, body = excluded.body",
        row.scope,
        row.number,
        row.fact_id,
        story_id,
        row.kind,
        row.at_us,
        now_us,
        row.body,
    )


async def write(
    conn: Connection, story_id: str, write: CaseWriteRow
) -> tuple[list[str], list[StoredCase], bool]:
    """Replace the story's facts and case; returns (stories marked dirty, cases closed by
    this write, whether the facts the refold folded are still the stored ones)."""
    old = await conn.fetch(
        "SELECT scope, number, fact_id, body, at_us FROM case_facts WHERE story_id = $1",
        story_id,
    )
    before = {
        (r["scope"], r["number"], r["fact_id"], bytes(r["body"]), int(r["at_us"])) for r in old
    }
    after = {(f.scope, f.number, f.fact_id, f.body, f.at_us) for f in write.facts}
    refold: list[str] = []
    if before != after:
        await conn.execute("DELETE FROM case_facts WHERE story_id = $1", story_id)
        for row in write.facts:
            await _insert(conn, story_id, row, write.now_us)
        refold = await _anchors(conn, changed_since(before, after), story_id)
        await mark_dirty(conn, refold)
    closed = await _write_cases(conn, story_id, write.cases)
    current = True
    for key, folded in write.folded.items():
        until, _capped = await _window(conn, key)
        current = current and fingerprint(await _bodies(conn, key, until)) == folded
    return refold, closed, current


async def _write_cases(
    conn: Connection, story_id: str, cases: Sequence[StoredCase]
) -> list[StoredCase]:
    was = await conn.fetchrow("SELECT closed_us FROM cases WHERE case_id = $1", story_id)
    await conn.execute("DELETE FROM cases WHERE case_id = $1", story_id)
    closed = []
    for c in cases:
        # The same closing recorded under another first call (a missed call that sorts
        # earlier arrived late and took the case over): it closed once, not twice.
        known = await conn.fetchval(
            "SELECT 1 FROM cases WHERE scope = $1 AND number = $2 AND closed_us = $3 AND how = $4",
            c.scope,
            c.number,
            c.closed_us,
            c.how,
        )
        await conn.execute(
            f"INSERT INTO cases ({_CASE_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7)",  # noqa: S608
            c.case_id,
            c.scope,
            c.number,
            c.opened_us,
            c.closed_us,
            c.how,
            c.check_us,
        )
        if c.closed_us is not None and (was is None or was["closed_us"] is None) and not known:
            closed.append(c)
    return closed


async def add_click(
    conn: Connection, key: CaseKey, click: Click, received_us: int, signature: str
) -> ClickAdded:
    if await conn.fetchval("SELECT 1 FROM case_facts WHERE request_sig = $1", signature):
        return ClickAdded("replayed")
    row = fact_row(key, click)
    inserted = await conn.fetchval(
        "INSERT INTO case_facts (scope, number, fact_id, story_id, kind, at_us, received_us,"
        " request_sig, body) VALUES ($1, $2, $3, NULL, $4, $5, $6, $7, $8)"
        " ON CONFLICT DO NOTHING RETURNING fact_id",
        row.scope,
        row.number,
        row.fact_id,
        row.kind,
        row.at_us,
        received_us,
        signature,
        row.body,
    )
    if inserted is None:
        return ClickAdded("duplicate")
    refold = await _anchors(conn, {(key.scope, key.number): row.at_us}, None)
    await mark_dirty(conn, refold)
    return ClickAdded("accepted", tuple(refold))


async def merged(conn: Connection, gone: str) -> None:
    """A merge absorbed story ``gone``: its facts and case go (the survivor's refold writes
    its own), and the stories of the numbers they touched are folded again."""
    keys = await conn.fetch(
        "SELECT scope, number, min(at_us) AS at_us FROM case_facts WHERE story_id = $1"
        " GROUP BY scope, number",
        gone,
    )
    await conn.execute("DELETE FROM case_facts WHERE story_id = $1", gone)
    await conn.execute("DELETE FROM cases WHERE case_id = $1", gone)
    since = {(str(r["scope"]), str(r["number"])): int(r["at_us"]) for r in keys}
    found = await _anchors(conn, since, None)
    await mark_dirty(conn, found)


async def purge(conn: Connection, story_ids: Sequence[str], cutoff_us: int, now_us: int) -> None:
    """Retention: the facts and cases of purged stories go; a purged case archives its
    number's facts up to its close, so they never make a case again; old clicks go."""
    ids = list(story_ids)
    await conn.execute(
        "INSERT INTO case_archive (scope, number, until_us)"
        " SELECT scope, number, max(coalesce(closed_us, $2)) FROM cases"
        " WHERE case_id = ANY($1::text[]) GROUP BY scope, number"
        " ON CONFLICT (scope, number) DO UPDATE"
        " SET until_us = greatest(case_archive.until_us, excluded.until_us)",
        ids,
        now_us,
    )
    await conn.execute("DELETE FROM cases WHERE case_id = ANY($1::text[])", ids)
    await conn.execute("DELETE FROM case_facts WHERE story_id = ANY($1::text[])", ids)
    await conn.execute(
        "DELETE FROM case_facts WHERE story_id IS NULL AND received_us < $1", cutoff_us
    )


async def due(conn: Connection, now_us: int, limit: int) -> list[str]:
    rows = await conn.fetch(
        "SELECT case_id FROM cases WHERE check_us <= $1 ORDER BY check_us LIMIT $2",
        now_us,
        limit,
    )
    return [str(r["case_id"]) for r in rows]


async def between(conn: Connection, since_us: int, until_us: int) -> list[CaseKey]:
    rows = await conn.fetch(
        "SELECT DISTINCT scope, number FROM cases WHERE opened_us <= $1"
        " AND (closed_us IS NULL OR closed_us > $2) ORDER BY scope, number",
        until_us,
        since_us,
    )
    return [CaseKey(str(r["scope"]), str(r["number"])) for r in rows]


async def count_open(conn: Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM cases WHERE closed_us IS NULL"))
