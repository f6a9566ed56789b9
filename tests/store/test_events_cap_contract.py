"""The cap on events per story, for every backend: the event past MAX_EVENTS_PER_STORY is
refused and not stored, a redelivery of a stored one is still a duplicate, and a merge counts
the events of both stories."""

from __future__ import annotations

from datetime import timedelta

from bridge.store import MAX_EVENTS_PER_STORY
from tests.store import T0, ended, ringing, warm_transfer
from tests.store.conftest import CountingStore

RECEIVED = T0 + timedelta(milliseconds=300)
A, B = "cap-1693575683.100", "cap-1693575683.101"
CAP = 200  # the documented limit (README, "Guarantees and residual risks")


async def fill(store: CountingStore, call_id: str, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        added = await store.add_event(ringing(call_id, i), RECEIVED)
        assert added.status == "accepted", i


async def test_the_event_past_the_cap_is_refused_and_not_stored(store: CountingStore) -> None:
    assert MAX_EVENTS_PER_STORY == CAP
    await fill(store, A, CAP)

    refused = await store.add_event(ended(A, 9000), RECEIVED)
    assert refused.status == "refused"
    assert refused.story_id == A
    again = await store.add_event(ended(A, 9001), RECEIVED)
    assert again.status == "refused"

    story = await store.story(A)
    assert story is not None
    assert len(story.events) == CAP
    assert ended(A, 9000) not in story.events

    # A redelivery of an event already stored is answered as before.
    duplicate = await store.add_event(ringing(A, 5), RECEIVED + timedelta(seconds=1))
    assert duplicate.status == "duplicate"
    assert duplicate.story_id == A
    # Other calls are not affected.
    assert (await store.add_event(ringing(B, 1), RECEIVED)).status == "accepted"


async def test_a_merge_counts_the_events_of_both_stories(store: CountingStore) -> None:
    await fill(store, A, CAP - 50)
    await fill(store, B, 50)
    refused = await store.add_event(warm_transfer(A, B, 9000), RECEIVED)
    assert refused.status == "refused"
    assert await store.resolve(B) == B  # not merged
    story_a, story_b = await store.story(A), await store.story(B)
    assert story_a is not None
    assert story_b is not None
    assert len(story_a.events) + len(story_b.events) == CAP


async def test_a_merge_below_the_cap_is_accepted_then_the_merged_story_is_capped(
    store: CountingStore,
) -> None:
    await fill(store, A, 100)
    await fill(store, B, 50)
    merged = await store.add_event(warm_transfer(A, B, 9000), RECEIVED)
    assert merged.status == "accepted"
    assert merged.merged_from == B
    await fill(store, B, CAP - 151, start=1000)  # on the absorbed id: the same story
    assert (await store.add_event(ended(B, 9500), RECEIVED)).status == "refused"
    story = await store.story(A)
    assert story is not None
    assert len(story.events) == CAP
