"""Property tests: the fold depends on the *set* of a call's events, not on their delivery."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.core.calls import fold, step_identity
from bridge.core.events import Event, decode
from bridge.core.plan import reply_slot
from bridge.simulate import SCENARIOS, ScenarioContext, build

T0 = datetime(2024, 3, 5, 9, 41, 7, tzinfo=UTC)
PROPERTY = settings(max_examples=150, deadline=None)


def events_of(name: str, seed: int) -> list[Event]:
    ctx = ScenarioContext(T0, seed=seed)
    return [decode(json.dumps(doc).encode()) for doc in build(name, ctx)]


@st.composite
def delivery(draw: st.DrawFn) -> tuple[list[Event], list[Event]]:
    """(events in provider order, the same events shuffled with some delivered again)."""
    name = draw(st.sampled_from(sorted(SCENARIOS)))
    events = events_of(name, draw(st.integers(0, 2**16)))
    shuffled = draw(st.permutations(events))
    repeats = draw(st.lists(st.sampled_from(events), max_size=len(events) * 2))
    delivered = list(shuffled)
    for repeat in repeats:
        delivered.insert(draw(st.integers(0, len(delivered))), repeat)
    return events, delivered


@PROPERTY
@given(delivery())
def test_any_order_and_duplication_folds_to_the_same_call(
    case: tuple[list[Event], list[Event]],
) -> None:
    ordered, delivered = case
    assert fold(delivered) == fold(ordered)


@PROPERTY
@given(delivery(), st.integers(0, 10 * 3600))
def test_stale_closing_is_also_order_independent(
    case: tuple[list[Event], list[Event]], later: int
) -> None:
    ordered, delivered = case
    now = max(e.timestamp for e in ordered) + timedelta(seconds=later)
    assert fold(delivered, now=now) == fold(ordered, now=now)


@PROPERTY
@given(
    st.sampled_from(sorted(SCENARIOS)),
    st.integers(0, 2**16),
    st.data(),
)
def test_any_subset_of_a_scenario_folds_without_error(
    name: str, seed: int, data: st.DataObject
) -> None:
    events = events_of(name, seed)
    subset = data.draw(
        st.lists(st.sampled_from(events), min_size=1, max_size=len(events), unique_by=id)
    )
    call = fold(subset, now=T0 + timedelta(days=1))
    assert call.event_count == len(subset)
    assert call.ended  # either its `ended` is there or it is stale a day later
    assert set(call.call_ids) >= {e.call_id for e in subset}
    assert call.missed is (call.answered_at is None)
    if call.answered_at is not None:
        assert call.started_at <= call.answered_at


def test_every_scenario_has_distinct_events() -> None:
    """Otherwise the duplication property would be vacuous for the repeated ones."""
    for name in SCENARIOS:
        events = events_of(name, 1)
        assert len({e.dedupe_key() for e in events}) == len(events), name


def respelled(doc: dict[str, Any]) -> dict[str, Any]:
    """The same notification as a redelivery may spell it: names and e-mails missing."""
    copy = json.loads(json.dumps(doc))

    def strip(person: dict[str, Any] | None) -> None:
        if person is not None:
            person["name"] = None
            person.pop("user_emails", None)

    strip(copy["caller"])
    strip(copy.get("redirector"))
    strip(copy["destination"].get("target"))
    for person in copy["destination"].get("targets", []):
        strip(person)
    return copy


@PROPERTY
@given(st.sampled_from(sorted(SCENARIOS)), st.integers(0, 2**16), st.data())
def test_a_step_delivered_in_two_spellings_is_told_once(
    name: str, seed: int, data: st.DataObject
) -> None:
    docs = build(name, ScenarioContext(T0, seed=seed))
    again = data.draw(st.lists(st.sampled_from(docs), min_size=1, max_size=len(docs)))
    plain = [decode(json.dumps(d).encode()) for d in docs]
    both = plain + [decode(json.dumps(respelled(d)).encode()) for d in again]
    one, two = fold(plain), fold(data.draw(st.permutations(both)))
    assert [step_identity(s) for s in two.steps] == [step_identity(s) for s in one.steps]
    assert [reply_slot(s) for s in two.steps] == [reply_slot(s) for s in one.steps]
    assert len(two.transfers) == len(one.transfers)
    assert (two.phase, two.missed, two.answered) == (one.phase, one.missed, one.answered)
