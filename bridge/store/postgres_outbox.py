"""Outbox statements of the PostgreSQL store: the same steps as bridge/store/sqlite_outbox.py
(see bridge/core/slots.py for the model). Each runs inside the caller's transaction."""

# SQL is built only from constants and $n placeholders (like sqlite_*.py, which pyproject
# exempts by name).
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any, Final, cast

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
from bridge.store.rows import from_us

if TYPE_CHECKING:
    from asyncpg import Connection, Record  # type: ignore[import-untyped]
else:
    Connection = Record = Any

_KEY_WHERE: Final = "story_id = $1 AND destination = $2 AND platform = $3 AND slot = $4"


def _key(key: SlotKey) -> tuple[str, str, str, str]:
    return (key.story_id, key.destination, key.platform, key.slot)


async def _slots(conn: Connection, story_ids: list[str]) -> list[Slot]:
    rows = await conn.fetch(
        "SELECT story_id, destination, platform, slot, kind, content, desired_version,"
        " posted_version, ref, attempt_us IS NOT NULL FROM outbox"
        " WHERE story_id = ANY($1::text[]) FOR UPDATE",
        story_ids,
    )
    return [Slot(*row) for row in rows]


def _row_key(row: Slot) -> tuple[str, str, str, str]:
    return (row.story_id, row.destination, row.platform, row.slot)


async def _retract(conn: Connection, row: Slot, story_id: str, slot: str, now_us: int) -> None:
    await conn.execute(
        "UPDATE outbox SET story_id = $5, slot = $6, content = NULL,"
        " desired_version = desired_version + 1, desired_us = $7, due_us = $7, failed = FALSE"
        f" WHERE {_KEY_WHERE}",
        *_row_key(row), story_id, slot, now_us,
    )  # fmt: skip


async def plan(
    conn: Connection,
    story_id: str,
    planned: Sequence[Planned],
    *,
    now_us: int,
    missed_due_us: int,
    allow_new: bool,
) -> int:
    """Record what the story should show (see :func:`decide_plan`); returns the work made."""
    changes = decide_plan(
        await _slots(conn, [story_id]),
        list(planned),
        now_us=now_us,
        missed_due_us=missed_due_us,
        allow_new=allow_new,
    )
    for change in changes:
        match change:
            case Insert(planned=p, due_us=due):
                await conn.execute(
                    "INSERT INTO outbox (story_id, destination, platform, slot, channel, kind,"
                    " sort_order, content, final, desired_version, desired_us, due_us,"
                    " created_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $11, $10)",
                    story_id, p.destination, p.platform, p.slot, p.channel, p.kind, p.order,
                    p.content, p.final, now_us, due,
                )  # fmt: skip
            case Update(planned=p, due_us=due):
                await conn.execute(
                    "UPDATE outbox SET content = $5, final = $6, sort_order = $7,"
                    " desired_version = desired_version + 1, desired_us = $8,"
                    f" due_us = coalesce($9, due_us), failed = FALSE WHERE {_KEY_WHERE}",
                    story_id, p.destination, p.platform, p.slot,
                    p.content, p.final, p.order, now_us, due,
                )  # fmt: skip
            case Retract(slot=row):
                await _retract(conn, row, row.story_id, row.slot, now_us)
            case Drop(slot=row):
                await conn.execute(f"DELETE FROM outbox WHERE {_KEY_WHERE}", *_row_key(row))
    return len(changes)


async def decided(conn: Connection, story_id: str) -> list[Decided]:
    rows = await conn.fetch(
        "SELECT destination, platform, channel, kind, content FROM outbox WHERE story_id = $1"
        " AND slot IN ('root', 'missed', 'summary') ORDER BY destination, platform, slot",
        story_id,
    )
    return [Decided(*row) for row in rows]


_RELINK: Final = RELINK_SQL.format("$1", "$2", "$3")

# The channels with pending work, skipping through the index (O(channels x log backlog)),
# then per channel the windows of WINDOW_SQL (lanes 0 and 1) and AWAITED_SQL (as lane 2), in
# one statement, leaving out the closed lanes. $1 now, $2 rows per window, $3..$5 the closed
# lanes' platforms, channels and lanes.
_DUE: Final = (
    "WITH RECURSIVE ch (platform, channel) AS ("
    f" (SELECT o.platform, o.channel FROM outbox AS o WHERE {pending('o')}"
    "  ORDER BY o.platform, o.channel LIMIT 1)"
    " UNION ALL SELECT n.platform, n.channel FROM ch CROSS JOIN LATERAL"
    f" (SELECT o.platform, o.channel FROM outbox AS o WHERE {pending('o')}"
    "  AND (o.platform, o.channel) > (ch.platform, ch.channel)"
    "  ORDER BY o.platform, o.channel LIMIT 1) AS n),"
    " c AS (SELECT ch.platform, ch.channel, row_number() OVER () AS i FROM ch),"
    " shut (platform, channel, lane) AS (SELECT * FROM unnest($3::text[], $4::text[], $5::int[])),"
    " cl AS (SELECT c.i, c.platform, c.channel, l.lane FROM c CROSS JOIN (VALUES (0), (1))"
    "  AS l (lane) WHERE NOT EXISTS (SELECT 1 FROM shut WHERE shut.platform = c.platform"
    "  AND shut.channel = c.channel AND shut.lane = l.lane))"
    " SELECT cl.i * 3 + cl.lane, w.* FROM cl CROSS JOIN LATERAL"
    f" ({WINDOW_SQL.format('cl.platform', 'cl.channel', 'cl.lane', '$1', '$2')}) AS w"
    " UNION ALL SELECT cl.i * 3 + 2, a.* FROM cl CROSS JOIN LATERAL"
    f" ({AWAITED_SQL.format('cl.platform', 'cl.channel', '$1', '$2')}) AS a WHERE cl.lane = 0"
)


def _outgoing(row: Record) -> Outgoing:
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
        created_at=from_us(int(row[13])),
        desired_at=from_us(int(row[14])),
        root_ref=cast(str | None, row[15]),
        priority=int(row[16]),
    )


async def due(
    conn: Connection, *, now_us: int, limit: int, closed: Collection[Lane] = ()
) -> list[Outgoing]:
    shut = list(closed)
    platforms, channels, lanes = [s[0] for s in shut], [s[1] for s in shut], [s[2] for s in shut]
    windows: dict[int, list[Outgoing]] = {}
    for row in await conn.fetch(_DUE, now_us, PER_CHANNEL, platforms, channels, lanes):
        windows.setdefault(int(row[0]), []).append(_outgoing(tuple(row)[1:]))
    return ranked(windows.values(), limit)


async def next_due(conn: Connection) -> int | None:
    found = await conn.fetchval(NEXT_DUE_SQL)
    return None if found is None else int(found)


async def begin_attempt(conn: Connection, key: SlotKey, now_us: int) -> None:
    await conn.execute(f"UPDATE outbox SET attempt_us = $5 WHERE {_KEY_WHERE}", *_key(key), now_us)


async def posted(conn: Connection, key: SlotKey, version: int, ref: str | None) -> bool:
    if key.slot == "root" and ref is not None:
        await conn.execute(_RELINK, *_key(key)[:3])
    status = await conn.execute(
        "UPDATE outbox SET posted_version = greatest(posted_version, $5), ref = $6,"
        f" attempt_us = NULL, attempts = 0, last_error = NULL WHERE {_KEY_WHERE}",
        *_key(key),
        version,
        ref,
    )
    if key.slot in THREADS:  # replies that gave up with their parent may go now
        await conn.execute(
            "UPDATE outbox SET failed = FALSE WHERE story_id = $1 AND destination = $2"
            " AND platform = $3 AND slot LIKE $4 AND failed",
            *_key(key)[:3],
            THREADS[key.slot],
        )
    return str(status) != "UPDATE 0"


async def retry(
    conn: Connection, key: SlotKey, *, due_us: int, error: str, maybe_sent: bool
) -> None:
    await conn.execute(
        "UPDATE outbox SET attempts = attempts + 1, due_us = $5, last_error = $6,"
        f" attempt_us = CASE WHEN $7 THEN attempt_us ELSE NULL END WHERE {_KEY_WHERE}",
        *_key(key),
        due_us,
        error,
        maybe_sent,
    )


async def give_up(conn: Connection, key: SlotKey, error: str) -> None:
    await conn.execute(
        f"UPDATE outbox SET failed = TRUE, last_error = $5, attempt_us = NULL WHERE {_KEY_WHERE}",
        *_key(key),
        error,
    )
    if key.slot in THREADS:  # its replies have no thread to go to
        await conn.execute(
            "UPDATE outbox SET failed = TRUE, last_error = $4 WHERE story_id = $1 AND"
            " destination = $2 AND platform = $3 AND slot LIKE $5"
            " AND posted_version < desired_version",
            *_key(key)[:3],
            f"the {key.slot} message failed: {error}",
            THREADS[key.slot],
        )


async def pending_counts(conn: Connection) -> list[tuple[str, str, int]]:
    rows = await conn.fetch(
        "SELECT platform, channel, count(*) FROM outbox"
        " WHERE posted_version < desired_version AND NOT failed GROUP BY platform, channel"
    )
    return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]


async def merge(conn: Connection, keep: str, gone: str, now_us: int) -> None:
    """Join the slots of two stories a transfer merged (see :func:`decide_merge`)."""
    for change in decide_merge(keep, gone, await _slots(conn, [keep, gone])):
        row = change.slot
        match change:
            case Move():
                await conn.execute(
                    f"UPDATE outbox SET story_id = $5 WHERE {_KEY_WHERE}", *_row_key(row), keep
                )
            case Orphan():
                await _retract(conn, row, keep, orphan_slot(row.story_id, row.slot), now_us)
            case Drop():
                await conn.execute(f"DELETE FROM outbox WHERE {_KEY_WHERE}", *_row_key(row))


async def purge(conn: Connection, story_ids: Sequence[str]) -> None:
    await conn.execute("DELETE FROM outbox WHERE story_id = ANY($1::text[])", list(story_ids))
