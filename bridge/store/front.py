"""The :class:`~bridge.store.Store` methods, written once for both backends.

A backend (``sqlite.py``, ``postgres.py``) supplies its dialect's operations, in two
namespaces (its ``*_sql`` and ``*_outbox`` modules: functions whose first argument is one of
its connections; plain functions for SQLite, coroutine functions for PostgreSQL; see
:class:`SqlOps` and :class:`OutboxOps`), and how to run one operation:

- ``_read(work)``: in one read snapshot;
- ``_read_outbox(work)``: delivery's small reads of the outbox (its due work), which follow
  its writes closely (by default ``_read``);
- ``_write_event(op)``: an accepted event; returns once it is durably committed;
- ``_write_derived(op)``: the dispatcher's writes (a refold's plan and state), which the
  dirty marks let it redo if a crash loses them;
- ``_write_story(op)``: other writes to stories (state, plans, purges);
- ``_write_outbox(op, durable=...)``: delivery's bookkeeping on one outbox row; ``durable``
  for the mark before a chat post.

This class turns the protocol's arguments into the operations' (:mod:`bridge.store.rows`:
times in microseconds since 1970, an event's row, a refold's state and plan) and their
results back.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from functools import partial
from typing import Any, Protocol, cast

from bridge.core.cases import CaseKey, Click
from bridge.core.events import Event
from bridge.core.slots import Decided, Planned
from bridge.store import (
    Added,
    CaseHistory,
    CaseWrite,
    ClickAdded,
    Dispatched,
    Emitted,
    PlanRequest,
    Story,
)
from bridge.store.case_rows import CaseWriteRow, case_write_row
from bridge.store.outbox import DigestMessage, Lane, Outgoing, ShownAlert, SlotKey
from bridge.store.rows import (
    PlanRow,
    Row,
    StateRow,
    event_row,
    from_us,
    plan_row,
    state_row,
    to_us,
)

Op = Callable[[Any], Any]
"""One operation on a backend connection (its result, or an awaitable of it)."""


class SqlOps(Protocol):
    """Events, stories and links (``sqlite_sql`` / ``postgres_sql``)."""

    def add(self, conn: Any, row: Row) -> Any: ...
    def story_of(self, conn: Any, call_id: str) -> Any: ...
    def read_story(self, conn: Any, call_id: str) -> Any: ...
    def read_stories(self, conn: Any, call_ids: Sequence[str]) -> Any: ...
    def dirty_stories(self, conn: Any, limit: int) -> Any: ...
    def open_stories(self, conn: Any, before_us: int, limit: int) -> Any: ...
    def count_open(self, conn: Any) -> Any: ...
    def purge_chunk(self, conn: Any, *, cutoff: int, now_us: int, n: int) -> Any: ...
    def forget(self, conn: Any, *, before_us: int) -> Any: ...
    def save_ruleset(
        self, conn: Any, *, version: str, source: str, text: str, now_us: int
    ) -> Any: ...
    def ruleset(self, conn: Any, version: str) -> Any: ...
    def save_state(self, conn: Any, story_id: str, state: StateRow) -> Any: ...
    def plan_story(self, conn: Any, story_id: str, plan: PlanRow) -> Any: ...
    def dispatched(
        self,
        conn: Any,
        story_id: str,
        state: StateRow,
        plan: PlanRow | None,
        case_write: CaseWriteRow | None,
    ) -> Any: ...
    def decided_for(self, conn: Any, story_id: str) -> Any: ...
    def shown_alerts_for(self, conn: Any, story_id: str, platform: str) -> Any: ...


class OutboxOps(Protocol):
    """Delivery's side of the outbox (``sqlite_outbox`` / ``postgres_outbox``)."""

    def due(self, conn: Any, *, now_us: int, limit: int, closed: Collection[Lane]) -> Any: ...
    def next_due(self, conn: Any) -> Any: ...
    def add_digests(self, conn: Any, messages: Sequence[DigestMessage], now_us: int) -> Any: ...
    def begin_attempt(self, conn: Any, key: SlotKey, now_us: int) -> Any: ...
    def posted_next(
        self,
        conn: Any,
        key: SlotKey,
        version: int,
        ref: str | None,
        *,
        unlinked: bool,
        channel: str,
        now_us: int,
    ) -> Any: ...
    def retry(
        self, conn: Any, key: SlotKey, *, due_us: int, error: str, maybe_sent: bool
    ) -> Any: ...
    def resume(self, conn: Any, platform: str, now_us: int) -> Any: ...
    def give_up(self, conn: Any, key: SlotKey, error: str) -> Any: ...
    def pending_counts(self, conn: Any) -> Any: ...


class CaseOps(Protocol):
    """Callback cases (``sqlite_cases`` / ``postgres_cases``)."""

    def read(self, conn: Any, keys: Sequence[CaseKey]) -> Any: ...
    def add_click(
        self, conn: Any, key: CaseKey, click: Click, received_us: int, signature: str
    ) -> Any: ...
    def due(self, conn: Any, now_us: int, limit: int) -> Any: ...
    def count_open(self, conn: Any) -> Any: ...
    def between(self, conn: Any, since_us: int, until_us: int) -> Any: ...


class StoreFront:
    """The Store protocol over a backend's operations and runners (see the module doc)."""

    _sql: SqlOps
    _outbox: OutboxOps
    _cases: CaseOps
    _purge_chunk: int

    # -- what a backend provides -----------------------------------------------------------

    async def _read(self, work: Op) -> Any:
        raise NotImplementedError

    async def _read_outbox(self, work: Op) -> Any:
        return await self._read(work)

    async def _write_event(self, op: Op) -> Any:
        raise NotImplementedError

    async def _write_derived(self, op: Op) -> Any:
        raise NotImplementedError

    async def _write_story(self, op: Op) -> Any:
        raise NotImplementedError

    async def _write_outbox(self, op: Op, *, durable: bool) -> Any:
        raise NotImplementedError

    # -- writes ----------------------------------------------------------------------------

    async def add_event(self, event: Event, received_at: datetime) -> Added:
        row = event_row(event, received_at)
        return cast(Added, await self._write_event(partial(self._sql.add, row=row)))

    async def save_state(
        self,
        story_id: str,
        *,
        upto_seq: int,
        digest: str,
        ended_at: datetime | None,
        last_event_at: datetime,
        rules_version: str | None = None,
    ) -> bool:
        state = state_row(Emitted(upto_seq, digest, ended_at, last_event_at, rules_version))
        op = partial(self._sql.save_state, story_id=story_id, state=state)
        return cast(bool, await self._write_story(op))

    async def purge(self, received_before: datetime, *, now: datetime) -> int:
        """Delete ended stories in chunks (one short transaction each); return how many."""
        cutoff, now_us, total = to_us(received_before), to_us(now), 0
        while True:
            op = partial(self._sql.purge_chunk, cutoff=cutoff, now_us=now_us, n=self._purge_chunk)
            done = cast(int, await self._write_story(op))
            total += done
            if done < self._purge_chunk:
                return total

    async def forget(self, before: datetime) -> None:
        await self._write_story(partial(self._sql.forget, before_us=to_us(before)))

    async def save_ruleset(self, version: str, source: str, text: str, now: datetime) -> None:
        op = partial(
            self._sql.save_ruleset, version=version, source=source, text=text, now_us=to_us(now)
        )
        await self._write_story(op)

    async def ruleset(self, version: str) -> tuple[str, str] | None:
        op = partial(self._sql.ruleset, version=version)
        return cast(tuple[str, str] | None, await self._read(op))

    # -- reads -----------------------------------------------------------------------------

    async def resolve(self, call_id: str) -> str | None:
        return cast(str | None, await self._read(partial(self._sql.story_of, call_id=call_id)))

    async def story(self, story_id: str) -> Story | None:
        op = partial(self._sql.read_story, call_id=story_id)
        return cast(Story | None, await self._read(op))

    async def stories(self, story_ids: Sequence[str]) -> dict[str, Story]:
        op = partial(self._sql.read_stories, call_ids=story_ids)
        return cast(dict[str, Story], await self._read(op))

    async def dirty_stories(self, limit: int = 1000) -> list[str]:
        return cast(list[str], await self._read(partial(self._sql.dirty_stories, limit=limit)))

    async def open_stories(self, received_before: datetime, limit: int = 1000) -> list[str]:
        op = partial(self._sql.open_stories, before_us=to_us(received_before), limit=limit)
        return cast(list[str], await self._read(op))

    async def count_open(self) -> int:
        return cast(int, await self._read(self._sql.count_open))

    # -- delivery outbox ---------------------------------------------------------------------

    async def plan(
        self,
        story_id: str,
        planned: Sequence[Planned],
        *,
        now: datetime,
        missed_due: datetime,
        allow_new: bool,
    ) -> int:
        request = plan_row(PlanRequest(planned, now, missed_due, allow_new))
        op = partial(self._sql.plan_story, story_id=story_id, plan=request)
        return cast(int, await self._write_story(op))

    async def dispatched(
        self,
        story_id: str,
        state: Emitted,
        plan: PlanRequest | None = None,
        cases: CaseWrite | None = None,
    ) -> Dispatched:
        now_us = to_us(plan.now) if plan is not None else to_us(state.last_event_at)
        op = partial(
            self._sql.dispatched,
            story_id=story_id,
            state=state_row(state),
            plan=None if plan is None else plan_row(plan),
            case_write=None if cases is None else case_write_row(cases, now_us),
        )
        return cast(Dispatched, await self._write_derived(op))

    # -- callback cases ----------------------------------------------------------------------

    async def case_facts(self, keys: Sequence[CaseKey]) -> dict[CaseKey, CaseHistory]:
        op = partial(self._cases.read, keys=keys)
        return cast(dict[CaseKey, CaseHistory], await self._read(op))

    async def add_click(
        self, key: CaseKey, click: Click, received_at: datetime, signature: str
    ) -> ClickAdded:
        op = partial(
            self._cases.add_click,
            key=key,
            click=click,
            received_us=to_us(received_at),
            signature=signature,
        )
        return cast(ClickAdded, await self._write_event(op))

    async def due_cases(self, now: datetime, limit: int = 1000) -> list[str]:
        op = partial(self._cases.due, now_us=to_us(now), limit=limit)
        return cast(list[str], await self._read(op))

    async def count_open_cases(self) -> int:
        return cast(int, await self._read(self._cases.count_open))

    async def digest_case_keys(self, since: datetime, until: datetime) -> list[CaseKey]:
        op = partial(self._cases.between, since_us=to_us(since), until_us=to_us(until))
        return cast(list[CaseKey], await self._read(op))

    async def add_digests(self, messages: Sequence[DigestMessage], now: datetime) -> int:
        op = partial(self._outbox.add_digests, messages=messages, now_us=to_us(now))
        return cast(int, await self._write_story(op))

    async def decided(self, story_id: str) -> list[Decided]:
        op = partial(self._sql.decided_for, story_id=story_id)
        return cast(list[Decided], await self._read(op))

    async def shown_alerts(self, story_id: str, platform: str) -> list[ShownAlert]:
        op = partial(self._sql.shown_alerts_for, story_id=story_id, platform=platform)
        return cast(list[ShownAlert], await self._read(op))

    async def due(
        self, now: datetime, limit: int = 500, closed: Collection[Lane] = ()
    ) -> list[Outgoing]:
        op = partial(self._outbox.due, now_us=to_us(now), limit=limit, closed=closed)
        return cast(list[Outgoing], await self._read_outbox(op))

    async def next_due(self) -> datetime | None:
        found = cast(int | None, await self._read_outbox(self._outbox.next_due))
        return None if found is None else from_us(found)

    async def begin_attempt(self, key: SlotKey, now: datetime) -> None:
        op = partial(self._outbox.begin_attempt, key=key, now_us=to_us(now))
        await self._write_outbox(op, durable=True)

    async def posted_next(
        self,
        key: SlotKey,
        version: int,
        ref: str | None,
        *,
        channel: str,
        now: datetime,
        unlinked: bool = False,
    ) -> tuple[bool, list[Outgoing]]:
        op = partial(
            self._outbox.posted_next,
            key=key,
            version=version,
            ref=ref,
            unlinked=unlinked,
            channel=channel,
            now_us=to_us(now),
        )
        return cast(tuple[bool, list[Outgoing]], await self._write_outbox(op, durable=False))

    async def retry_later(
        self, key: SlotKey, *, due: datetime, error: str, maybe_sent: bool
    ) -> None:
        op = partial(
            self._outbox.retry, key=key, due_us=to_us(due), error=error, maybe_sent=maybe_sent
        )
        await self._write_outbox(op, durable=False)

    async def resume(self, platform: str, now: datetime) -> int:
        op = partial(self._outbox.resume, platform=platform, now_us=to_us(now))
        return cast(int, await self._write_outbox(op, durable=False))

    async def give_up(self, key: SlotKey, error: str) -> None:
        op = partial(self._outbox.give_up, key=key, error=error)
        await self._write_outbox(op, durable=False)

    async def pending_counts(self) -> list[tuple[str, str, int]]:
        return cast(list[tuple[str, str, int]], await self._read(self._outbox.pending_counts))
