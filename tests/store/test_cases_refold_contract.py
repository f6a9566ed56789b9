"""Which stories a change of a number's case facts folds again (issue 13 follow-up: the
quadratic refolds of a caller's misses), on every backend. A fact at time t can change only
the case open at t (its first miss's alert) and the cases opened after t: earlier, closed
cases are final. Expected values follow the callback-case rules of docs/rules.md."""

from __future__ import annotations

from datetime import timedelta

from bridge.core.cases import Answered, CaseKey, Missed
from bridge.store import CaseRow, CaseWrite, Emitted
from tests.store import T0, ringing
from tests.store.conftest import CountingStore

KEY = CaseKey("acme", "+31612345678")


def miss(story: str, minutes: int) -> Missed:
    return Missed(
        story_id=story,
        at=T0 + timedelta(minutes=minutes),
        caller="M. de Jong",
        dialled="+31508009000",
        rung=(),
        destinations=("support",),
    )


async def write(
    store: CountingStore, story: str, fact: Missed | Answered, case: CaseRow | None = None
) -> tuple[str, ...]:
    """The story's refold writes its fact (and the case it opens): the other stories marked
    dirty."""
    added = await store.add_event(ringing(story), T0)
    state = Emitted(added.seq, "ended", ended_at=T0, last_event_at=T0)
    cases = CaseWrite([(KEY, fact)], cases=() if case is None else (case,))
    return (await store.dispatched(story, state, None, cases)).refold


def opened(story: str, minutes: int, closed: int | None = None) -> CaseRow:
    at = T0 + timedelta(minutes=minutes)
    done = None if closed is None else T0 + timedelta(minutes=closed)
    return CaseRow(story, KEY, at, done, None if closed is None else "got_through", None)


async def test_a_new_miss_refolds_only_its_cases_alert_not_every_earlier_miss(
    store: CountingStore,
) -> None:
    assert await write(store, "s1", miss("s1", 0), opened("s1", 0)) == ()
    assert await write(store, "s2", miss("s2", 5)) == ("s1",)  # stacked: the alert counts it
    assert await write(store, "s3", miss("s3", 9)) == ("s1",)  # not s2: its part is unchanged
    assert await write(store, "s4", miss("s4", 12)) == ("s1",)


async def test_a_late_fact_refolds_its_case_and_every_miss_after_it(
    store: CountingStore,
) -> None:
    await write(store, "s1", miss("s1", 0), opened("s1", 0))
    await write(store, "s2", miss("s2", 5))
    await write(store, "s3", miss("s3", 9))
    # The customer got through at 0:07, told late: s3 (after it) opens a new case now.
    late = Answered(story_id="a1", at=T0 + timedelta(minutes=7), by="Bob")
    assert set(await write(store, "a1", late)) == {"s1", "s3"}
    # A miss earlier than the first one takes the case over: every miss is folded again.
    assert set(await write(store, "s0", miss("s0", -3))) == {"s1", "s2", "s3"}


async def test_a_closed_case_before_the_fact_is_final(store: CountingStore) -> None:
    await write(store, "s1", miss("s1", 0), opened("s1", 0, closed=4))
    await write(store, "s2", miss("s2", 10), opened("s2", 10))
    assert await write(store, "s3", miss("s3", 15)) == ("s2",)  # s1's case closed at 0:04
