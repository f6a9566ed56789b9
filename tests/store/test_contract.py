"""The Store contract: every backend must pass these (see conftest.py for the backends).

Expected values come from the protocol's docstrings (bridge/store/__init__.py): a story's
id is the first call id the store saw of it, a merge keeps the story first seen, a duplicate
changes nothing, save_state clears the dirty mark only up to the seq it folded.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from bridge.store import Added, StoreError
from tests.store import (
    T0,
    answered,
    at,
    consult_ringing,
    created,
    ended,
    redelivered,
    ringing,
    warm_transfer,
)
from tests.store.conftest import Backend, CountingStore

RECEIVED = T0 + timedelta(milliseconds=300)
A, B, C = "ua9-grq-1693575683.100", "ua9-grq-1693575683.101", "ua9-grq-1693575683.102"


async def save(
    store: CountingStore,
    story_id: str,
    upto: int,
    digest: str,
    *,
    ended_at: datetime | None = None,
) -> bool:
    """save_state as the dispatcher calls it (the last event of these calls is at T0+60 s)."""
    return await store.save_state(
        story_id, upto_seq=upto, digest=digest, ended_at=ended_at, last_event_at=at(60)
    )


# -- accepting and deduplicating -------------------------------------------------------------


async def test_accept_then_duplicate_changes_nothing(store: CountingStore) -> None:
    first = await store.add_event(created(A), RECEIVED)
    assert first.status == "accepted"
    assert first.story_id == A
    assert first.merged_from is None

    assert await save(store, A, first.seq, "d1")
    again = await store.add_event(created(A), RECEIVED + timedelta(seconds=30))
    with_extra_field = await store.add_event(redelivered(A), RECEIVED + timedelta(seconds=31))

    assert again == Added("duplicate", A, first.seq)
    assert with_extra_field == Added("duplicate", A, first.seq)
    assert await store.dirty_stories() == []  # a duplicate does not even mark dirty
    story = await store.story(A)
    assert story is not None
    assert story.events == (created(A),)
    assert story.max_seq == first.seq
    assert story.first_stored_at == RECEIVED


async def test_seq_increases_with_every_accepted_event_even_after_purge(
    store: CountingStore,
) -> None:
    events = [created(A), ringing(A), answered(A), ended(A), created(B)]
    seqs = [(await store.add_event(e, RECEIVED)).seq for e in events]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)

    assert await save(store, A, seqs[3], "done", ended_at=at(60))
    assert await save(store, B, seqs[4], "b-digest", ended_at=at(60))
    assert await store.purge(at(3600), now=at(3600)) == 2
    later = await store.add_event(created(C), RECEIVED)
    assert later.seq > seqs[-1]


# -- stories ---------------------------------------------------------------------------------


async def test_simple_call_is_one_story(store: CountingStore) -> None:
    events = (created(A, 0), ringing(A, 1), answered(A, 5), ended(A, 60))
    added = [
        await store.add_event(e, RECEIVED + timedelta(seconds=i)) for i, e in enumerate(events)
    ]
    assert {a.story_id for a in added} == {A}

    story = await store.story(A)
    assert story is not None
    assert story.story_id == A
    assert story.call_ids == (A,)
    assert story.events == events
    assert story.max_seq == added[-1].seq
    assert story.first_stored_at == RECEIVED
    assert story.digest is None
    assert story.ended_at is None
    assert await store.resolve(A) == A


async def test_unknown_ids(store: CountingStore) -> None:
    await store.add_event(created(A), RECEIVED)
    assert await store.resolve("never-seen") is None
    assert await store.story("never-seen") is None


async def test_separate_calls_are_separate_stories(store: CountingStore) -> None:
    await store.add_event(ringing(A), RECEIVED)
    await store.add_event(ringing(B), RECEIVED)
    story_a, story_b = await store.story(A), await store.story(B)
    assert story_a is not None
    assert story_b is not None
    assert story_a.events == (ringing(A),)
    assert story_b.events == (ringing(B),)


# -- merges ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("survivor_id", "merged_id"), [(A, B), (B, A)])
async def test_transfer_merges_consult_call_into_the_story_seen_first(
    store: CountingStore, survivor_id: str, merged_id: str
) -> None:
    """A = customer's call (seen first), B = consult call; the provider may keep either id."""
    await store.add_event(ringing(A, 1), RECEIVED)
    await store.add_event(answered(A, 5), RECEIVED)
    await store.add_event(consult_ringing(B, 20), RECEIVED)
    transfer = warm_transfer(survivor_id, merged_id, 40)
    added = await store.add_event(transfer, RECEIVED)

    assert added.status == "accepted"
    assert added.story_id == A
    assert added.merged_from == B
    assert await store.resolve(A) == A
    assert await store.resolve(B) == A
    for any_id in (A, B):
        story = await store.story(any_id)
        assert story is not None
        assert story.story_id == A
        assert set(story.call_ids) == {A, B}
        assert story.call_ids[0] == A
        assert story.events == (ringing(A, 1), answered(A, 5), consult_ringing(B, 20), transfer)
    assert await store.dirty_stories() == [A]

    # A later event on the consult call's id lands in the customer's story.
    end = await store.add_event(ended(B, 90), RECEIVED)
    assert end.story_id == A
    assert end.merged_from is None
    story = await store.story(A)
    assert story is not None
    assert story.events[-1] == ended(B, 90)
    assert story.max_seq == end.seq


async def test_stories_reads_many_ids_in_one_go(store: CountingStore) -> None:
    await store.add_event(ringing(A, 1), RECEIVED)
    await store.add_event(consult_ringing(B, 20), RECEIVED)
    await store.add_event(warm_transfer(A, B, 40), RECEIVED)
    await store.add_event(ringing("solo", 2), RECEIVED)

    found = await store.stories([B, "unknown", "solo", A])

    assert set(found) == {A, B, "solo"}  # the unknown id is left out
    assert found[A] == found[B] == await store.story(A)
    assert found["solo"] == await store.story("solo")
    assert await store.stories([]) == {}


async def test_consult_call_seen_first_survives(store: CountingStore) -> None:
    """If B's events arrive before any of A's, B is the story first seen and survives."""
    await store.add_event(consult_ringing(B, 20), RECEIVED)
    await store.add_event(ringing(A, 1), RECEIVED + timedelta(seconds=1))
    added = await store.add_event(warm_transfer(A, B), RECEIVED + timedelta(seconds=2))
    assert (added.story_id, added.merged_from) == (B, A)
    assert await store.resolve(A) == B
    story = await store.story(A)
    assert story is not None
    assert story.story_id == B
    assert story.first_stored_at == RECEIVED
    assert len(story.events) == 3


async def test_transfer_arriving_first_links_both_ids(store: CountingStore) -> None:
    transfer = warm_transfer(A, B, 40)
    first = await store.add_event(transfer, RECEIVED)
    assert first == Added("accepted", A, first.seq)  # nothing to absorb: B was unknown
    assert await store.resolve(B) == A

    later = [ringing(A, 1), consult_ringing(B, 20), ended(B, 90)]
    for event in later:
        added = await store.add_event(event, RECEIVED)
        assert (added.story_id, added.merged_from) == (A, None)
    story = await store.story(B)
    assert story is not None
    assert story.story_id == A
    assert story.call_ids == (A, B)
    assert story.events == (transfer, *later)


async def test_transfer_naming_an_unseen_call_id_joins_the_known_story(
    store: CountingStore,
) -> None:
    """The transfer's call_id is new, its merged_id known: it joins the known story."""
    await store.add_event(ringing(B, 1), RECEIVED)
    added = await store.add_event(warm_transfer(A, B), RECEIVED)
    assert (added.story_id, added.merged_from) == (B, None)
    assert (await store.add_event(ended(A, 90), RECEIVED)).story_id == B
    assert await store.dirty_stories() == [B]


async def test_merge_folds_bookkeeping_into_the_survivor(store: CountingStore) -> None:
    a1 = await store.add_event(ringing(A, 1), RECEIVED)
    two_hours = RECEIVED + timedelta(hours=2)
    b1 = await store.add_event(consult_ringing(B, 7200), two_hours)  # two hours later
    assert await save(store, A, a1.seq, "digest-a")
    assert await save(store, B, b1.seq, "digest-b")
    assert await store.dirty_stories() == []

    merged = await store.add_event(warm_transfer(A, B, 30), RECEIVED)
    assert merged.merged_from == B
    story = await store.story(A)
    assert story is not None
    assert story.digest == "digest-a"  # the survivor's digest is kept
    assert await store.dirty_stories() == [A]
    assert await store.count_open() == 1
    # The last event received of the merged story is B's (two hours after A's).
    assert story.last_received_at == two_hours
    assert await store.open_stories(at(3600)) == []
    assert await store.open_stories(at(7201)) == [A]


async def test_save_state_on_an_absorbed_id_records_on_the_survivor(
    store: CountingStore,
) -> None:
    await store.add_event(ringing(A), RECEIVED)
    await store.add_event(consult_ringing(B), RECEIVED)
    merged = await store.add_event(warm_transfer(B, A), RECEIVED)
    assert await save(store, B, merged.seq, "after-merge")
    story = await store.story(A)
    assert story is not None
    assert story.digest == "after-merge"
    assert await store.dirty_stories() == []


# -- dirty marks -----------------------------------------------------------------------------


async def test_save_state_cleans_a_story_folded_up_to_its_last_event(
    store: CountingStore,
) -> None:
    await store.add_event(ringing(A), RECEIVED)
    last = await store.add_event(answered(A), RECEIVED)
    assert await store.dirty_stories() == [A]

    assert await save(store, A, last.seq, "answered-by-bob")
    assert await store.dirty_stories() == []
    story = await store.story(A)
    assert story is not None
    assert story.digest == "answered-by-bob"
    assert story.ended_at is None


async def test_save_state_racing_a_newer_event_stays_dirty(store: CountingStore) -> None:
    await store.add_event(ringing(A), RECEIVED)
    folded = await store.story(A)
    assert folded is not None
    newer = await store.add_event(answered(A), RECEIVED)  # lands while the fold runs

    assert not await save(store, A, folded.max_seq, "ringing-only")
    assert await store.dirty_stories() == [A]
    story = await store.story(A)
    assert story is not None
    assert story.digest == "ringing-only"  # what was emitted is still recorded

    assert await save(store, A, newer.seq, "answered")
    assert await store.dirty_stories() == []


async def test_dirty_stories_oldest_first(store: CountingStore) -> None:
    a = await store.add_event(ringing(A), RECEIVED)
    await store.add_event(ringing(B), RECEIVED)
    await store.add_event(ringing(C), RECEIVED)
    assert await store.dirty_stories() == [A, B, C]
    assert await store.dirty_stories(limit=2) == [A, B]

    assert await save(store, A, a.seq, "x")
    await store.add_event(answered(A), RECEIVED)  # dirty again, now the newest
    await store.add_event(answered(B), RECEIVED)  # already dirty: keeps its place
    assert await store.dirty_stories() == [B, C, A]


# -- open stories and retention --------------------------------------------------------------


async def test_open_stories_and_count_open(store: CountingStore) -> None:
    await store.add_event(ringing(A, 0), RECEIVED)  # last received at T0
    await store.add_event(ringing(B, 0), RECEIVED + timedelta(hours=3))  # at T0 + 3 h
    c = await store.add_event(ringing(C, 0), RECEIVED)
    assert await store.count_open() == 3
    assert await save(store, C, c.seq, "ended", ended_at=at(10))
    assert await store.count_open() == 2

    assert await store.open_stories(at(3600)) == [A]
    assert await store.open_stories(at(4 * 3600)) == [A, B]
    assert await store.open_stories(at(4 * 3600), limit=1) == [A]
    assert await store.open_stories(at(-1)) == []


async def test_staleness_counts_from_receipt_not_the_providers_clock(
    store: CountingStore,
) -> None:
    """A provider clock five hours behind must not make a call that is ringing now stale."""
    await store.add_event(ringing(A, -5 * 3600), RECEIVED)
    stale_after = 4 * 3600
    assert await store.open_stories(at(3600 - stale_after)) == []  # an hour later: not stale
    assert await store.open_stories(at(4 * 3600 + 1 - stale_after)) == [A]


async def test_purge_removes_ended_stories_with_their_events(store: CountingStore) -> None:
    # A (merged with B) was last heard of at T0, C at T0+2 h, D is still open.
    await store.add_event(ringing(A), RECEIVED)
    await store.add_event(consult_ringing(B), RECEIVED)
    ab = await store.add_event(warm_transfer(A, B), RECEIVED)
    c = await store.add_event(ended(C, 60), RECEIVED + timedelta(hours=2))
    await store.add_event(ringing("open-call"), RECEIVED)
    assert await save(store, A, ab.seq, "ab", ended_at=at(60))
    assert await save(store, C, c.seq, "c", ended_at=at(60))

    assert await store.purge(at(3600), now=at(3600)) == 1

    for gone in (A, B):
        assert await store.resolve(gone) is None
        assert await store.story(gone) is None
    assert await store.resolve(C) == C
    assert await store.resolve("open-call") == "open-call"
    assert await store.count_open() == 1
    assert await store.purge(at(3600), now=at(3600)) == 0


async def test_retention_counts_from_receipt_not_the_providers_clock(
    store: CountingStore,
) -> None:
    """An `ended` stamped a day ago by the provider, received now, is not purged now."""
    e = await store.add_event(ended(A, -24 * 3600), RECEIVED)
    assert await save(store, A, e.seq, "a", ended_at=at(-24 * 3600))
    assert await store.purge(at(-3600), now=at(0)) == 0
    assert await store.purge(at(3600), now=at(3600)) == 1


async def test_a_purged_call_is_remembered_until_forgotten(store: CountingStore) -> None:
    """A provider may redeliver after retention: the call is not posted again, and a
    transfer naming a purged id does not resurrect it either; once forgotten, it is new."""
    await store.add_event(ringing(A), RECEIVED)
    await store.add_event(consult_ringing(B), RECEIVED)
    ab = await store.add_event(warm_transfer(A, B), RECEIVED)
    assert await save(store, A, ab.seq, "ab", ended_at=at(60))
    assert await store.purge(at(3600), now=at(3600)) == 1

    for event in (ringing(A), consult_ringing(B), warm_transfer(B, A, 40)):
        again = await store.add_event(event, at(3700))
        assert again.status == "duplicate", event
        assert await store.resolve(event.call_id) is None
    assert await store.dirty_stories() == []

    await store.forget(at(3600))  # purged at 3600: not before it, kept
    assert (await store.add_event(ringing(A), at(3800))).status == "duplicate"
    await store.forget(at(3601))
    again = await store.add_event(consult_ringing(B), at(3900))
    assert (again.status, again.story_id) == ("accepted", B)


# -- the rules a story is routed by ------------------------------------------------------------


async def test_a_story_keeps_the_rules_version_it_was_first_routed_by(
    store: CountingStore,
) -> None:
    a = await store.add_event(ringing(A), RECEIVED)
    assert (await store.story(A)).rules_version is None  # type: ignore[union-attr]
    await store.save_state(
        A, upto_seq=a.seq, digest="d1", ended_at=None, last_event_at=at(1), rules_version="v1"
    )
    await store.save_state(
        A, upto_seq=a.seq, digest="d2", ended_at=None, last_event_at=at(1), rules_version="v2"
    )
    story = await store.story(A)
    assert story is not None
    assert (story.rules_version, story.digest) == ("v1", "d2")


async def test_a_merge_keeps_the_survivors_rules_else_the_absorbed_ones(
    store: CountingStore,
) -> None:
    a = await store.add_event(ringing(A), RECEIVED)
    b = await store.add_event(consult_ringing(B), RECEIVED)
    await store.save_state(
        B, upto_seq=b.seq, digest="b", ended_at=None, last_event_at=at(1), rules_version="vB"
    )
    await store.add_event(warm_transfer(A, B), RECEIVED)
    story = await store.story(B)
    assert story is not None
    assert (story.story_id, story.rules_version) == (A, "vB")  # A had none yet
    assert a.story_id == A


async def test_rulesets_are_kept_by_version(store: CountingStore) -> None:
    assert await store.ruleset("v1") is None
    await store.save_ruleset("v1", "rules.yaml", "version: 1\n", at(0))
    await store.save_ruleset("v1", "rules.yaml", "version: 1\n", at(10))  # refreshes
    assert await store.ruleset("v1") == ("rules.yaml", "version: 1\n")
    await store.save_ruleset("v2", "other.yaml", "version: 1 # two\n", at(0))
    a = await store.add_event(ringing(A), RECEIVED)
    await store.save_state(
        A, upto_seq=a.seq, digest="d", ended_at=None, last_event_at=at(1), rules_version="v2"
    )
    await store.forget(at(5))  # v2 is older but a story is routed by it; v1 was refreshed
    assert await store.ruleset("v1") is not None
    assert await store.ruleset("v2") is not None
    await store.forget(at(11))
    assert await store.ruleset("v1") is None
    assert await store.ruleset("v2") == ("other.yaml", "version: 1 # two\n")


# -- durability and concurrency --------------------------------------------------------------


async def test_everything_survives_a_reopen(backend: Backend) -> None:
    first = backend.new_store()
    await first.open()
    await first.add_event(ringing(A), RECEIVED)
    b = await first.add_event(consult_ringing(B), RECEIVED)
    merged = await first.add_event(warm_transfer(A, B), RECEIVED)
    c = await first.add_event(ringing(C), RECEIVED)
    assert await save(first, C, c.seq, "c-digest", ended_at=at(50))
    before = await first.story(B)
    await first.close()
    await first.close()  # idempotent

    second = backend.new_store()
    await second.open()
    try:
        assert await second.story(B) == before
        assert await second.resolve(B) == A
        assert await second.dirty_stories() == [A]
        assert await second.count_open() == 1
        duplicate = await second.add_event(consult_ringing(B), RECEIVED)
        assert duplicate == Added("duplicate", A, b.seq)
        assert (await second.add_event(ended(A), RECEIVED)).seq > merged.seq
    finally:
        await second.close()


async def test_concurrent_adds_share_commits(store: CountingStore) -> None:
    calls = [f"burst-{n}" for n in range(50)]
    events = [maker(cid, 1) for cid in calls for maker in (created, ringing, answered, ended)]
    before = store.commits
    added = await asyncio.gather(*(store.add_event(e, RECEIVED) for e in events))

    assert len(events) == 200
    assert all(a.status == "accepted" for a in added)
    assert len({a.seq for a in added}) == 200
    assert [a.story_id for a in added] == [e.call_id for e in events]
    assert 1 <= store.commits - before < 200
    story = await store.story("burst-7")
    assert story is not None
    assert len(story.events) == 4


async def test_close_stores_everything_already_queued(backend: Backend) -> None:
    store = backend.new_store()
    await store.open()
    # gather starts its tasks in order: every add_event has queued its event before close
    # runs, and close must store them all before it returns.
    adds = [store.add_event(ringing(f"queued-{i}"), RECEIVED) for i in range(40)]
    *added, _ = await asyncio.gather(*adds, store.close())
    assert [a.status for a in added if isinstance(a, Added)] == ["accepted"] * 40

    reopened = backend.new_store()
    await reopened.open()
    try:
        assert len(await reopened.dirty_stories()) == 40
        assert await reopened.resolve("queued-39") == "queued-39"
    finally:
        await reopened.close()


async def test_concurrent_duplicates_store_one_event(store: CountingStore) -> None:
    results = await asyncio.gather(*(store.add_event(ringing(A), RECEIVED) for _ in range(5)))
    assert sorted(r.status for r in results) == ["accepted"] + ["duplicate"] * 4
    assert len({r.seq for r in results}) == 1
    story = await store.story(A)
    assert story is not None
    assert len(story.events) == 1


async def test_failed_batch_fails_every_waiter_and_the_store_recovers(
    backend: Backend, store: CountingStore
) -> None:
    await store.add_event(created(A), RECEIVED)
    blocked = [ringing(A), answered(A), ringing(B)]
    async with backend.hold_write_lock():
        results = await asyncio.gather(
            *(store.add_event(e, RECEIVED) for e in blocked), return_exceptions=True
        )
        await store.ping()  # reads still work while writes fail
    assert all(isinstance(r, StoreError) for r in results), results

    # Nothing of the failed batch was stored, and the writer is alive again.
    story = await store.story(A)
    assert story is not None
    assert story.events == (created(A),)
    retried = [await store.add_event(e, RECEIVED) for e in blocked]
    assert [r.status for r in retried] == ["accepted"] * 3


async def test_newer_schema_is_refused_clearly(backend: Backend) -> None:
    first = backend.new_store()
    await first.open()
    await first.close()
    await backend.stamp_schema_version(99)

    newer = backend.new_store()
    with pytest.raises(StoreError) as caught:
        await newer.open()
    message = str(caught.value)
    assert "database schema version 99 is newer than this callbridge understands" in message
    assert "upgrade callbridge or point CALLBRIDGE_STORE at another database" in message


async def test_closed_store_refuses_work(backend: Backend) -> None:
    closed = backend.new_store()
    await closed.open()
    await closed.ping()
    await closed.close()
    with pytest.raises(StoreError):
        await closed.ping()
    with pytest.raises(StoreError):
        await closed.add_event(created(A), RECEIVED)
