"""The store's part of the daily digest, on every backend: the numbers whose cases a digest
period may tell, a digest planned once however often its window's janitor rounds plan it,
delivered like any message, and removed by retention."""

from __future__ import annotations

from datetime import timedelta

from bridge.core.cases import CaseKey, Missed
from bridge.store import CaseRow, CaseWrite, Emitted
from bridge.store.outbox import DigestMessage
from tests.store import T0, ringing
from tests.store.conftest import CountingStore

OLD = CaseKey("acme", "+31611111111")  # opened and closed before the period
OPEN = CaseKey("acme", "+31622222222")  # opened before the period, still open
NEW = CaseKey("acme", "+31633333333")  # opened in the period, closed in it
LATER = CaseKey("acme", "+31644444444")  # opened after the period
SINCE, UNTIL = T0 + timedelta(hours=1), T0 + timedelta(hours=25)


async def case(store: CountingStore, story: str, key: CaseKey, opened: int, closed: int | None):  # type: ignore[no-untyped-def]
    at = T0 + timedelta(hours=opened)
    done = None if closed is None else T0 + timedelta(hours=closed)
    fact = Missed(
        story_id=story, at=at, caller="X", dialled="+31508009000", rung=(), destinations=("s",)
    )
    row = CaseRow(story, key, at, done, None if closed is None else "called_back", None)
    added = await store.add_event(ringing(story), at)
    state = Emitted(added.seq, "ended", ended_at=at, last_event_at=at)
    await store.dispatched(story, state, None, CaseWrite([(key, fact)], cases=(row,)))


async def test_a_digest_period_reads_the_numbers_of_its_cases(store: CountingStore) -> None:
    await case(store, "old", OLD, 0, 1)  # closed exactly at SINCE: told by the previous one
    await case(store, "open", OPEN, 0, None)
    await case(store, "new", NEW, 2, 3)
    await case(store, "later", LATER, 26, None)
    assert await store.digest_case_keys(SINCE, UNTIL) == [OPEN, NEW]


def message(story: str, platform: str = "slack") -> DigestMessage:
    return DigestMessage(story, "support", platform, "C1", b'{"type":"digest"}')


async def test_a_digest_is_planned_once_delivered_and_purged_by_retention(
    store: CountingStore,
) -> None:
    first = [
        message("digest:2026-12-03T08:30+0100"),
        message("digest:2026-12-03T08:30+0100", "teams"),
    ]
    assert await store.add_digests(first, T0) == 2
    assert await store.add_digests(first, T0 + timedelta(minutes=1)) == 0  # the next round
    due = await store.due(T0 + timedelta(minutes=1))
    assert [(d.key.story_id, d.key.platform, d.key.slot, d.content) for d in due] == [
        ("digest:2026-12-03T08:30+0100", "slack", "digest", b'{"type":"digest"}'),
        ("digest:2026-12-03T08:30+0100", "teams", "digest", b'{"type":"digest"}'),
    ]
    later = T0 + timedelta(days=1)
    assert await store.add_digests([message("digest:2026-12-04T08:30+0100")], later) == 1
    await store.purge(T0 + timedelta(hours=1), now=later)  # retention: older than an hour
    left = await store.due(later)
    assert [d.key.story_id for d in left] == ["digest:2026-12-04T08:30+0100"]
