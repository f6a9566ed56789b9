"""A caller number's case facts a refold reads are capped at its newest
``MAX_FACTS_PER_NUMBER`` (issue 13: a number with thousands of missed calls had every refold
of its stories read and fold them all), on every backend. Older facts count as archived, and
the write's check of what a refold folded uses the same window, so the two agree.

The cap is lowered to 5 here (the mechanism is the same at 200); the expected windows follow
from the test's own timeline: one miss per minute."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bridge.core.cases import CaseKey, Missed, encode_fact, fingerprint
from bridge.store import CaseWrite, Emitted, postgres_cases, sqlite_cases
from tests.store import T0, ringing
from tests.store.conftest import CountingStore

KEY = CaseKey("acme", "+31612345678")
CAP = 5


@pytest.fixture(autouse=True)
def small_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in (sqlite_cases, postgres_cases):
        monkeypatch.setattr(module, "MAX_FACTS_PER_NUMBER", CAP)


def miss(minute: int) -> Missed:
    return Missed(
        story_id=f"s{minute}",
        at=T0 + timedelta(minutes=minute),
        caller="M. de Jong",
        dialled="+31508009000",
        rung=(),
        destinations=("support",),
    )


async def write(store: CountingStore, minute: int, folded: list[int] | None = None) -> bool:
    """Story ``s<minute>`` writes its miss, having folded the misses of ``folded`` (minutes);
    whether the store found those were the number's facts (the story is clean)."""
    story = f"s{minute}"
    added = await store.add_event(ringing(story), T0)
    state = Emitted(added.seq, "ended", ended_at=T0, last_event_at=T0)
    check = {} if folded is None else {KEY: fingerprint(encode_fact(miss(m)) for m in folded)}
    cases = CaseWrite([(KEY, miss(minute))], folded=check)
    return (await store.dispatched(story, state, None, cases)).clean


async def test_up_to_the_cap_a_number_reads_all_its_facts(store: CountingStore) -> None:
    for minute in range(CAP):
        await write(store, minute)
    history = (await store.case_facts([KEY]))[KEY]
    assert sorted(f.at for f in history.facts) == [miss(m).at for m in range(CAP)]
    assert history.archived_until is None
    assert not history.capped


async def test_past_the_cap_the_oldest_facts_count_as_archived(store: CountingStore) -> None:
    for minute in range(CAP + 3):  # misses at minutes 0..7
        await write(store, minute)
    history = (await store.case_facts([KEY]))[KEY]
    assert sorted(f.at for f in history.facts) == [miss(m).at for m in range(3, CAP + 3)]
    assert history.archived_until == miss(2).at  # the newest left out
    assert history.capped


async def test_the_write_checks_what_was_folded_against_the_same_window(
    store: CountingStore,
) -> None:
    for minute in range(CAP + 2):  # misses at minutes 0..6; the window holds 2..6
        await write(store, minute)
    # Minute 7 arrives: the window moves to 3..7. A refold that folded exactly that is current.
    assert await write(store, 7, folded=[3, 4, 5, 6, 7])
    # One that folded the window before the move (2..7) is not: its story is folded again.
    assert not await write(store, 8, folded=[3, 4, 5, 6, 7, 8, 2])
    assert await write(store, 8, folded=[4, 5, 6, 7, 8])
