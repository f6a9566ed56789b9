"""SQL statements of the PostgreSQL store (the same steps as bridge/store/sqlite_sql.py),
and how its driver errors become :class:`StoreError`.

Every function runs inside a transaction the caller opened on one asyncpg connection.
Writers that touch stories or links first take :data:`WRITE_LOCK` (see
:func:`lock_writers`), so these steps see the same serial world as on SQLite.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

import asyncpg  # type: ignore[import-untyped]

from bridge.core.events import Event, decode_stored
from bridge.core.slots import Decided
from bridge.core.urls import without_password
from bridge.store import MAX_EVENTS_PER_STORY, Added, Dispatched, StoreError, Story
from bridge.store import postgres_cases as cases
from bridge.store import postgres_outbox as outbox
from bridge.store.case_rows import CaseWriteRow, StoredCase
from bridge.store.outbox import ShownAlert
from bridge.store.rows import PlanRow, Row, StateRow, from_us

if TYPE_CHECKING:
    from asyncpg import Connection
else:
    Connection = Any

__all__ = [
    "DB_ERRORS",
    "WRITE_LOCK",
    "Row",
    "add",
    "count_open",
    "decided_for",
    "dirty_stories",
    "dispatched",
    "failure",
    "forget",
    "lock_writers",
    "open_stories",
    "plan_story",
    "purge_chunk",
    "read_stories",
    "read_story",
    "ruleset",
    "save_ruleset",
    "save_state",
    "shown_alerts_for",
    "story_of",
]

# What a lost, refused or failing connection looks like through asyncpg.
DB_ERRORS: Final = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,
)


def failure(doing: str, dsn: str, err: BaseException) -> StoreError:
    """A :class:`StoreError` saying what failed where (never the password) and what to do.

    Raises :class:`asyncio.CancelledError` instead when the current task is being
    cancelled: asyncpg, interrupted mid-operation, can fail its connection's cleanup with a
    driver error that replaces the cancellation, and a cancelled loop handed a StoreError
    would take it for a store failure and try again instead of ending (a leader stepping
    down waited for its dispatcher forever)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError from err
    text = (str(err) or type(err).__name__).replace(dsn, without_password(dsn))
    return StoreError(
        f"{doing} the PostgreSQL store {without_password(dsn)}: {text}; "
        "check that the server is running and reachable (CALLBRIDGE_STORE)"
    )


# Transaction-level advisory lock held by every transaction that writes stories or links
# (b"cbwriter" as a signed 64-bit integer). It makes seq order equal commit order across
# instances: save_state's "clean up to upto_seq" is only sound if no event with a lower
# seq can still commit after an event with a higher one was folded.
WRITE_LOCK: Final = int.from_bytes(b"cbwriter", "big", signed=True)


async def lock_writers(conn: Connection) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock($1)", WRITE_LOCK)


async def story_of(conn: Connection, call_id: str) -> str | None:
    found = await conn.fetchval("SELECT story_id FROM links WHERE call_id = $1", call_id)
    return None if found is None else str(found)


async def _link(conn: Connection, call_id: str, story_id: str, seq: int) -> None:
    await conn.execute(
        "INSERT INTO links (call_id, story_id, linked_seq) VALUES ($1, $2, $3)",
        call_id,
        story_id,
        seq,
    )


async def add(conn: Connection, row: Row) -> Added:
    # One round trip for the common case: store the event and look up both ids' stories.
    found = await conn.fetchrow(
        "WITH ins AS (INSERT INTO events"
        " (dedupe_key, call_id, status, timestamp_us, received_us, body)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (dedupe_key) DO NOTHING RETURNING seq)"
        " SELECT (SELECT seq FROM ins) AS seq,"
        " (SELECT story_id FROM links WHERE call_id = $2) AS call_story,"
        " (SELECT story_id FROM links WHERE call_id = $7) AS merged_story",
        row.dedupe_key,
        row.call_id,
        row.status,
        row.timestamp_us,
        row.received_us,
        row.body,
        row.merged_id,
    )
    if found["seq"] is None:  # already stored (by this batch, an earlier one, or elsewhere)
        hit = await conn.fetchrow(
            "SELECT seq, call_id FROM events WHERE dedupe_key = $1", row.dedupe_key
        )
        call_id = str(hit["call_id"])
        return Added("duplicate", await story_of(conn, call_id) or call_id, int(hit["seq"]))
    seq = int(found["seq"])
    story_id: str | None = found["call_story"]
    other: str | None = found["merged_story"]
    if (full := await _full_story(conn, seq, story_id, other)) is not None:
        await conn.execute("DELETE FROM events WHERE seq = $1", seq)
        return Added("refused", full, seq)
    fresh = False  # a new story: its row already holds this event's bookkeeping
    if story_id is None:
        story_id = other
        if story_id is None:
            if await _purged(conn, row):  # a redelivery after retention: never posted again
                await conn.execute("DELETE FROM events WHERE seq = $1", seq)
                return Added("duplicate", row.call_id, seq)
            story_id, fresh = row.call_id, True
            await conn.execute(
                "INSERT INTO stories (story_id, first_seq, first_received_us, max_seq,"
                " last_event_us, last_received_us, dirty, dirty_seq)"
                " VALUES ($1, $2, $3, $2, $4, $3, TRUE, $2)",
                story_id,
                seq,
                row.received_us,
                row.timestamp_us,
            )
        await _link(conn, row.call_id, story_id, seq)
        if row.merged_id == row.call_id:  # just linked above
            other = story_id
    merged_from = None
    if row.merged_id is not None:
        if other is None:
            await _link(conn, row.merged_id, story_id, seq)
        elif other != story_id:
            story_id, merged_from = await _merge(conn, story_id, other, seq, row.received_us)
    if fresh:
        return Added("accepted", story_id, seq)
    await conn.execute(
        "UPDATE stories SET max_seq = greatest(max_seq, $1),"
        " last_event_us = greatest(last_event_us, $2),"
        " first_received_us = least(first_received_us, $3),"
        " last_received_us = greatest(last_received_us, $3),"
        " dirty_seq = CASE WHEN dirty THEN dirty_seq ELSE $1 END, dirty = TRUE"
        " WHERE story_id = $4",
        seq,
        row.timestamp_us,
        row.received_us,
        story_id,
    )
    return Added("accepted", story_id, seq, merged_from)


async def _full_story(conn: Connection, seq: int, *found: str | None) -> str | None:
    """The story the new event ``seq`` would join (merging with) when it already holds
    MAX_EVENTS_PER_STORY events; None when the event fits."""
    stories = list(dict.fromkeys(s for s in found if s is not None))
    if not stories:
        return None
    held = await conn.fetchval(
        "SELECT count(*) FROM (SELECT 1 FROM links AS l JOIN events AS e"
        " ON e.call_id = l.call_id WHERE l.story_id = ANY($1::text[]) AND e.seq <> $2"
        " LIMIT $3) AS held",
        stories,
        seq,
        MAX_EVENTS_PER_STORY,
    )
    return stories[0] if held >= MAX_EVENTS_PER_STORY else None


async def _purged(conn: Connection, row: Row) -> bool:
    ids = [row.call_id] if row.merged_id is None else [row.call_id, row.merged_id]
    found = await conn.fetchval(
        "SELECT 1 FROM purged_calls WHERE call_id = ANY($1::text[]) LIMIT 1", ids
    )
    return found is not None


async def _merge(conn: Connection, a: str, b: str, seq: int, now_us: int) -> tuple[str, str]:
    """Join stories ``a`` and ``b``: the one first seen survives. Returns (survivor, absorbed)."""
    keep, gone = await conn.fetch(
        "SELECT story_id, first_received_us, max_seq, last_event_us, dirty, dirty_seq,"
        " last_received_us, rules_version"
        " FROM stories WHERE story_id = ANY($1::text[]) ORDER BY first_seq FOR UPDATE",
        [a, b],
    )
    dirty_since = [
        r["dirty_seq"] for r in (keep, gone) if r["dirty"] and r["dirty_seq"] is not None
    ]
    keep_id, gone_id = str(keep["story_id"]), str(gone["story_id"])
    await conn.execute("UPDATE links SET story_id = $1 WHERE story_id = $2", keep_id, gone_id)
    await conn.execute(
        "UPDATE stories SET first_received_us = $1, max_seq = $2, last_event_us = $3,"
        " dirty = TRUE, dirty_seq = $4, last_received_us = $5, rules_version = $6"
        " WHERE story_id = $7",
        min(keep["first_received_us"], gone["first_received_us"]),
        max(keep["max_seq"], gone["max_seq"]),
        max(keep["last_event_us"], gone["last_event_us"]),
        min([*dirty_since, seq]),
        max(keep["last_received_us"], gone["last_received_us"]),
        # the survivor's rules, else those the other was routed by
        keep["rules_version"] or gone["rules_version"],
        keep_id,
    )
    await conn.execute("DELETE FROM stories WHERE story_id = $1", gone_id)
    await outbox.merge(conn, keep_id, gone_id, now_us)
    await cases.merged(conn, gone_id)
    return keep_id, gone_id


async def save_state(conn: Connection, story_id: str, state: StateRow) -> bool:
    # The story the id resolves to now (a merge may have absorbed it); none: purged meanwhile.
    dirty = await conn.fetchval(
        "UPDATE stories SET digest = $1, ended_us = $2,"
        " last_event_us = greatest(last_event_us, $3),"
        " dirty = CASE WHEN max_seq <= $4 THEN FALSE ELSE dirty END,"
        " dirty_seq = CASE WHEN max_seq <= $4 THEN NULL ELSE dirty_seq END,"
        " rules_version = coalesce(rules_version, $6)"
        " WHERE story_id = (SELECT story_id FROM links WHERE call_id = $5) RETURNING dirty",
        state.digest,
        state.ended_us,
        state.last_event_us,
        state.upto_seq,
        story_id,
        state.rules_version,
    )
    return dirty is None or not dirty


async def purge_chunk(conn: Connection, *, cutoff: int, now_us: int, n: int) -> int:
    """Delete up to ``n`` stories that ended and were last heard of before ``cutoff``,
    remembering their call ids (see migration 0004's ``purged_calls``), and the digests
    planned before ``cutoff``."""
    await outbox.purge_digests(conn, cutoff)
    rows = await conn.fetch(
        "SELECT story_id FROM stories WHERE ended_us IS NOT NULL AND last_received_us < $1"
        " ORDER BY last_received_us LIMIT $2",
        cutoff,
        n,
    )
    ids = [str(r["story_id"]) for r in rows]
    if ids:
        await conn.execute(
            "INSERT INTO purged_calls (call_id, purged_us) SELECT call_id, $2 FROM links"
            " WHERE story_id = ANY($1::text[]) ON CONFLICT (call_id) DO NOTHING",
            ids,
            now_us,
        )
        await conn.execute(
            "DELETE FROM events WHERE call_id IN"
            " (SELECT call_id FROM links WHERE story_id = ANY($1::text[]))",
            ids,
        )
        await conn.execute("DELETE FROM links WHERE story_id = ANY($1::text[])", ids)
        await conn.execute("DELETE FROM stories WHERE story_id = ANY($1::text[])", ids)
        await outbox.purge(conn, ids)
        await cases.purge(conn, ids, cutoff, now_us)
    return len(ids)


async def forget(conn: Connection, *, before_us: int) -> None:
    """Forget purged call ids and unused rules versions older than ``before_us``."""
    await conn.execute("DELETE FROM purged_calls WHERE purged_us < $1", before_us)
    await conn.execute(
        "DELETE FROM rulesets WHERE stored_us < $1 AND version NOT IN"
        " (SELECT rules_version FROM stories WHERE rules_version IS NOT NULL)",
        before_us,
    )


async def save_ruleset(
    conn: Connection, *, version: str, source: str, text: str, now_us: int
) -> None:
    await conn.execute(
        "INSERT INTO rulesets (version, source, text, stored_us) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (version) DO UPDATE SET stored_us = excluded.stored_us",
        version,
        source,
        text,
        now_us,
    )


async def ruleset(conn: Connection, version: str) -> tuple[str, str] | None:
    row = await conn.fetchrow("SELECT source, text FROM rulesets WHERE version = $1", version)
    return None if row is None else (str(row["source"]), str(row["text"]))


async def read_story(conn: Connection, call_id: str) -> Story | None:
    return (await read_stories(conn, [call_id])).get(call_id)


async def read_stories(conn: Connection, call_ids: Sequence[str]) -> dict[str, Story]:
    """:func:`read_story` for many ids in four statements (one round trip each, whatever
    the number of stories): requested id -> story."""
    links = await conn.fetch(
        "SELECT call_id, story_id FROM links WHERE call_id = ANY($1::text[])", list(call_ids)
    )
    wanted = {str(r["call_id"]): str(r["story_id"]) for r in links}
    story_ids = sorted(set(wanted.values()))
    rows = await conn.fetch(
        "SELECT story_id, max_seq, first_received_us, digest, ended_us, rules_version,"
        " last_received_us FROM stories WHERE story_id = ANY($1::text[])",
        story_ids,
    )
    members = await conn.fetch(
        "SELECT story_id, call_id FROM links WHERE story_id = ANY($1::text[])"
        ' ORDER BY story_id, linked_seq, call_id COLLATE "C"',
        story_ids,
    )
    bodies = await conn.fetch(
        "SELECT l.story_id, e.body FROM events AS e JOIN links AS l ON l.call_id = e.call_id"
        " WHERE l.story_id = ANY($1::text[]) ORDER BY e.seq",
        story_ids,
    )
    call_ids_of: dict[str, list[str]] = {}
    for r in members:
        call_ids_of.setdefault(str(r["story_id"]), []).append(str(r["call_id"]))
    events_of: dict[str, list[Event]] = {}
    for r in bodies:
        events_of.setdefault(str(r["story_id"]), []).append(decode_stored(bytes(r["body"])))
    stories = {
        str(row["story_id"]): Story(
            story_id=str(row["story_id"]),
            call_ids=tuple(call_ids_of.get(str(row["story_id"]), ())),
            events=tuple(events_of.get(str(row["story_id"]), ())),
            max_seq=int(row["max_seq"]),
            first_stored_at=from_us(int(row["first_received_us"])),
            digest=row["digest"],
            ended_at=None if row["ended_us"] is None else from_us(int(row["ended_us"])),
            rules_version=row["rules_version"],
            last_received_at=from_us(int(row["last_received_us"])),
        )
        for row in rows
    }
    return {asked: stories[sid] for asked, sid in wanted.items() if sid in stories}


async def dirty_stories(conn: Connection, limit: int) -> list[str]:
    query = "SELECT story_id FROM stories WHERE dirty ORDER BY dirty_seq LIMIT $1"
    return [str(r[0]) for r in await conn.fetch(query, limit)]


async def open_stories(conn: Connection, before_us: int, limit: int) -> list[str]:
    query = (
        "SELECT story_id FROM stories WHERE ended_us IS NULL AND last_received_us < $1"
        " ORDER BY last_received_us LIMIT $2"
    )
    return [str(r[0]) for r in await conn.fetch(query, before_us, limit)]


async def count_open(conn: Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM stories WHERE ended_us IS NULL"))


async def plan_story(conn: Connection, story_id: str, plan: PlanRow) -> int:
    """Record what the story ``story_id`` resolves to should show; returns the work made."""
    resolved = await story_of(conn, story_id)
    return 0 if resolved is None else await _plan(conn, resolved, plan)


async def _plan(conn: Connection, story_id: str, plan: PlanRow) -> int:
    return await outbox.plan(
        conn,
        story_id,
        plan.planned,
        now_us=plan.now_us,
        missed_due_us=plan.missed_due_us,
        allow_new=plan.allow_new,
    )


_CALLS: Final = "SELECT count(*) FROM links WHERE story_id = $1"


async def dispatched(
    conn: Connection,
    story_id: str,
    state: StateRow,
    plan: PlanRow | None,
    case_write: CaseWriteRow | None,
) -> Dispatched:
    """A refold's plan, case facts and state, in one transaction (nothing when the story is
    not what was folded any more: see ``Store.dispatched``)."""
    resolved = await story_of(conn, story_id)
    if resolved is None:  # purged meanwhile
        return Dispatched(0, True)
    if resolved != story_id or (
        state.calls is not None and await conn.fetchval(_CALLS, resolved) != state.calls
    ):
        return Dispatched(0, False, stale=True)
    made = 0 if plan is None else await _plan(conn, resolved, plan)  # resolved == story_id
    refold: list[str] = []
    closed: tuple[StoredCase, ...] = ()
    current = True
    if case_write is not None:
        refold, closing, current = await cases.write(conn, resolved, case_write)
        closed = tuple(closing)
    clean = await save_state(conn, story_id, state)
    if not current:  # facts arrived since they were read: fold it again
        await cases.mark_dirty(conn, [resolved])
        clean = False
    return Dispatched(made, clean, tuple(refold), tuple(c.row() for c in closed))


async def decided_for(conn: Connection, story_id: str) -> list[Decided]:
    resolved = await story_of(conn, story_id)
    return [] if resolved is None else await outbox.decided(conn, resolved)


async def shown_alerts_for(conn: Connection, story_id: str, platform: str) -> list[ShownAlert]:
    resolved = await story_of(conn, story_id)
    return [] if resolved is None else await outbox.shown_alerts(conn, resolved, platform)
