"""Outbox statements of the PostgreSQL store (see bridge/core/slots.py for the model): the
shared statements of bridge/store/outbox.py, each run inside the caller's transaction, and the
reads that differ from SQLite's (a story's slots, locked; the due work, in one statement)."""

# SQL is built only from constants and $n placeholders (like sqlite_*.py, which pyproject
# exempts by name).
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any, Final

import asyncpg  # type: ignore[import-untyped]

from bridge.core.slots import Decided, Planned, Slot, decide_plan
from bridge.store import outbox as shared
from bridge.store.outbox import Lane, Outgoing, ShownAlert, SlotKey, Write

if TYPE_CHECKING:
    from asyncpg import Connection
else:
    Connection = Any


async def _run(conn: Connection, writes: Sequence[Write]) -> int:
    """Run the statements; returns the rows the counting ones changed."""
    found = 0
    for write in writes:
        status = str(await conn.execute(write.sql, *write.args))
        found += int(status.rsplit(" ", 1)[-1]) if write.counts else 0
    return found


async def _slots(conn: Connection, story_ids: list[str]) -> list[Slot]:
    rows = await conn.fetch(
        f"SELECT {shared.SLOT_COLUMNS} FROM outbox WHERE story_id = ANY($1::text[]) FOR UPDATE",
        story_ids,
    )
    return [Slot(*row) for row in rows]


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
    await _run(conn, shared.plan_writes(story_id, changes, now_us))
    return len(changes)


async def decided(conn: Connection, story_id: str) -> list[Decided]:
    return [Decided(*row) for row in await conn.fetch(shared.DECIDED_SQL, story_id)]


async def shown_alerts(conn: Connection, story_id: str, platform: str) -> list[ShownAlert]:
    rows = await conn.fetch(shared.SHOWN_ALERTS_SQL, story_id, platform)
    return [ShownAlert(*row) for row in rows]


# The channels with pending work, skipping through the index (O(channels x log backlog)),
# then per channel the windows of WINDOW_SQL (lanes 0 and 1) and AWAITED_SQL (as lane 2), in
# one statement, leaving out the closed lanes. $1 now, $2 rows per window, $3..$5 the closed
# lanes' platforms, channels and lanes.
_DUE: Final = (
    "WITH RECURSIVE ch (platform, channel) AS ("
    f" (SELECT o.platform, o.channel FROM outbox AS o WHERE {shared.pending('o')}"
    "  ORDER BY o.platform, o.channel LIMIT 1)"
    " UNION ALL SELECT n.platform, n.channel FROM ch CROSS JOIN LATERAL"
    f" (SELECT o.platform, o.channel FROM outbox AS o WHERE {shared.pending('o')}"
    "  AND (o.platform, o.channel) > (ch.platform, ch.channel)"
    "  ORDER BY o.platform, o.channel LIMIT 1) AS n),"
    " c AS (SELECT ch.platform, ch.channel, row_number() OVER () AS i FROM ch),"
    " shut (platform, channel, lane) AS (SELECT * FROM unnest($3::text[], $4::text[], $5::int[])),"
    " cl AS (SELECT c.i, c.platform, c.channel, l.lane FROM c CROSS JOIN (VALUES (0), (1))"
    "  AS l (lane) WHERE NOT EXISTS (SELECT 1 FROM shut WHERE shut.platform = c.platform"
    "  AND shut.channel = c.channel AND shut.lane = l.lane))"
    " SELECT cl.i * 3 + cl.lane, w.* FROM cl CROSS JOIN LATERAL"
    f" ({shared.WINDOW_SQL.format('cl.platform', 'cl.channel', 'cl.lane', '$1', '$2')}) AS w"
    " UNION ALL SELECT cl.i * 3 + 2, a.* FROM cl CROSS JOIN LATERAL"
    f" ({shared.AWAITED_SQL.format('cl.platform', 'cl.channel', '$1', '$2')}) AS a"
    " WHERE cl.lane = 0"
)


async def due(
    conn: Connection, *, now_us: int, limit: int, closed: Collection[Lane] = ()
) -> list[Outgoing]:
    shut = list(closed)
    platforms, channels, lanes = [s[0] for s in shut], [s[1] for s in shut], [s[2] for s in shut]
    windows: dict[int, list[Outgoing]] = {}
    for row in await conn.fetch(_DUE, now_us, shared.PER_CHANNEL, platforms, channels, lanes):
        windows.setdefault(int(row[0]), []).append(shared.outgoing(tuple(row)[1:]))
    return shared.ranked(windows.values(), limit)


async def next_due(conn: Connection) -> int | None:
    found = await conn.fetchval(shared.NEXT_DUE_SQL)
    return None if found is None else int(found)


_CHANNEL_WINDOWS: Final = (
    shared.WINDOW_SQL.format("$1", "$2", "$3", "$4", "$5"),
    shared.AWAITED_SQL.format("$1", "$2", "$3", "$4"),
)


async def begin_attempt(conn: Connection, key: SlotKey, now_us: int) -> None:
    await _run(conn, shared.begin_attempt_writes(key, now_us))


async def _posted(
    conn: Connection, key: SlotKey, version: int, ref: str | None, *, unlinked: bool
) -> bool:
    return await _run(conn, shared.posted_writes(key, version, ref, unlinked=unlinked)) > 0


async def posted_next(
    conn: Connection,
    key: SlotKey,
    version: int,
    ref: str | None,
    *,
    unlinked: bool,
    channel: str,
    now_us: int,
) -> tuple[bool, list[Outgoing]]:
    kept = await _posted(conn, key, version, ref, unlinked=unlinked)
    window, awaited = _CHANNEL_WINDOWS
    try:
        # A savepoint: a failing read must not abort the transaction that records the post
        # (delivery's next round reads the channel anyway).
        async with conn.transaction():
            windows = [
                await conn.fetch(window, key.platform, channel, lane, now_us, shared.PER_CHANNEL)
                for lane in (0, 1)
            ]
            windows.append(
                await conn.fetch(awaited, key.platform, channel, now_us, shared.PER_CHANNEL)
            )
    except asyncpg.PostgresError:
        return kept, []
    found = [[shared.outgoing(tuple(row)) for row in rows] for rows in windows]
    return kept, shared.ranked(found, shared.NEXT_MAX)


async def resume(conn: Connection, platform: str, now_us: int) -> int:
    return await _run(conn, shared.resume_writes(platform, now_us))


async def retry(
    conn: Connection, key: SlotKey, *, due_us: int, error: str, maybe_sent: bool
) -> None:
    await _run(conn, shared.retry_writes(key, due_us=due_us, error=error, maybe_sent=maybe_sent))


async def give_up(conn: Connection, key: SlotKey, error: str) -> None:
    await _run(conn, shared.give_up_writes(key, error))


async def pending_counts(conn: Connection) -> list[tuple[str, str, int]]:
    return [(str(r[0]), str(r[1]), int(r[2])) for r in await conn.fetch(shared.PENDING_COUNTS_SQL)]


async def merge(conn: Connection, keep: str, gone: str, now_us: int) -> None:
    """Join the slots of two stories a transfer merged (``shared.merge_writes``)."""
    await _run(conn, shared.merge_writes(keep, gone, await _slots(conn, [keep, gone]), now_us))


async def add_digests(
    conn: Connection, messages: Sequence[shared.DigestMessage], now_us: int
) -> int:
    return await _run(conn, shared.digest_writes(messages, now_us))


async def purge_digests(conn: Connection, cutoff_us: int) -> None:
    await conn.execute(shared.PURGE_DIGESTS, cutoff_us)


async def purge(conn: Connection, story_ids: Sequence[str]) -> None:
    await conn.execute("DELETE FROM outbox WHERE story_id = ANY($1::text[])", list(story_ids))
