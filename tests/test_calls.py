"""The call fold, table-driven and without an event loop.

Expected facts come from :class:`bridge.simulate.Expected` (hand-written per flow) or, in the
focused cases below, from the events written out in the test itself.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bridge.core.calls import Call, fold
from bridge.core.events import Destination, Event, Participant, decode
from bridge.simulate import SCENARIOS, Expected, ScenarioContext, build

T0 = datetime(2024, 3, 5, 9, 41, 7, tzinfo=UTC)


def scenario_events(
    name: str, seed: int, speed: float = 1.0
) -> tuple[list[Event], ScenarioContext]:
    ctx = ScenarioContext(T0, seed=seed, speed=speed)
    events = [decode(json.dumps(doc).encode()) for doc in build(name, ctx)]
    return events, ctx


def labels(people: tuple[Participant, ...]) -> tuple[str, ...]:
    return tuple(p.label for p in people)


@pytest.mark.parametrize("seed", [0, 7, 2024])
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_folds_to_its_expected_facts(name: str, seed: int) -> None:
    events, ctx = scenario_events(name, seed)
    want = SCENARIOS[name].expected
    call = fold(events)
    assert_the_story(call, ctx, want)
    assert call.call_ids == tuple(sorted(ctx.legs[leg] for leg in want.legs))
    assert call.direction == want.direction
    assert call.missed is want.missed
    assert call.ended
    assert sum(step.consult for step in call.steps) == want.consult_steps
    assert call.steps[-1].kind == "ended"
    assert call.event_count == len(events)


def assert_the_story(call: Call, ctx: ScenarioContext, want: Expected) -> None:
    """Who answered, was connected, rung and transferred, and how it ended."""
    assert call.call_id == ctx.legs[want.story_leg]
    assert call.answered is want.answered
    assert call.end_reason == want.end_reason
    assert (call.answered_by.label if call.answered_by else None) == want.answered_by
    assert (call.connected.label if call.connected else None) == want.connected
    assert call.picked_up is want.picked_up
    assert labels(call.rung) == want.rung
    assert tuple(t.kind for t in call.transfers) == want.transfers
    assert call.steps[-1].call_id == ctx.legs[want.ended_leg]


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_a_scenario_five_times_faster_folds_to_the_same_facts(name: str) -> None:
    """``simulate --speed 5`` stamps the calls on a compressed timeline: same story."""
    events, ctx = scenario_events(name, 7, speed=5)
    assert_the_story(fold(events), ctx, SCENARIOS[name].expected)
    # (consult steps may differ: semi-attended's answer, 0.6 s after the transfer at this
    # speed, shares its second, and within a second the fold ranks an answer first)


def test_scenarios_cover_design_section_2() -> None:
    required = {
        "answered",
        "no-answer",
        "unavailable",
        "auto-answer",
        "pickup",
        "forwarding",
        "call-group",
        "warm-transfer",
        "warm-transfer-consult-survives",
        "cold-transfer",
        "semi-attended-transfer",
        "outbound",
        "internal",
    }
    assert required <= set(SCENARIOS)


# ---- focused cases on hand-written events -------------------------------------------------

ALICE = Participant(number="+31508009101", name="Alice", account_number=201)
BOB = Participant(number="+31508009102", name="Bob", account_number=202)
CAROL = Participant(number="+31508009103", name="Carol", account_number=203)
CUSTOMER = Participant(number="+31201234567")
LINE = "+31508009000"


def ev(
    status: str,
    seconds: float,
    *,
    people: tuple[Participant, ...] = (),
    call_id: str = "c-1",
    **extra: Any,
) -> Event:
    if status == "in-progress" and people:
        dest = Destination(number=LINE, target=people[0])
    else:
        dest = Destination(number=LINE, targets=people)
    return Event(
        call_id=call_id,
        timestamp=T0 + timedelta(seconds=seconds),
        status=status,
        direction="inbound",
        caller=CUSTOMER,
        destination=dest,
        **extra,
    )


def test_stale_closing_needs_now_and_the_full_interval() -> None:
    events = [ev("created", 0), ev("ringing", 1, people=(ALICE,))]
    last = T0 + timedelta(seconds=1)

    assert not fold(events).ended  # without `now`, only events decide
    almost = fold(events, now=last + timedelta(hours=4) - timedelta(seconds=1))
    assert not almost.ended
    assert almost.phase == "ringing"

    stale = fold(events, now=last + timedelta(hours=4))
    assert stale.ended
    assert stale.stale
    assert stale.end_reason == "stale"
    assert stale.ended_at == last
    assert stale.missed  # nobody answered
    assert stale.steps[-1].kind == "ended"
    assert stale.steps[-1].reason == "stale"

    custom = fold(events, now=last + timedelta(minutes=10), stale_after=timedelta(minutes=10))
    assert custom.stale


def test_silence_measured_by_the_caller_decides_staleness_over_timestamps() -> None:
    """The dispatcher measures silence from when it last received an event: a provider
    clock that is hours behind must not close a call that is ringing right now."""
    events = [ev("created", 0), ev("ringing", 1, people=(ALICE,))]
    hours_later = T0 + timedelta(hours=9)
    assert not fold(events, now=hours_later, silence=timedelta(minutes=1)).ended
    stale = fold(events, now=hours_later, silence=timedelta(hours=4))
    assert stale.stale
    assert stale.ended_at == T0 + timedelta(seconds=1)  # the last event, as without silence


def test_an_ended_call_is_never_made_stale() -> None:
    events = [ev("ringing", 0, people=(ALICE,)), ev("ended", 20, reason="no-answer")]
    call = fold(events, now=T0 + timedelta(days=2))
    assert call.end_reason == "no-answer"
    assert not call.stale


def test_answered_by_someone_not_rung_is_a_pickup() -> None:
    rung = [ev("ringing", 0, people=(ALICE, BOB))]
    picked = fold([*rung, ev("in-progress", 5, people=(CAROL,))])
    assert picked.picked_up
    assert picked.answered_by == CAROL
    normal = fold([*rung, ev("in-progress", 5, people=(BOB,))])
    assert not normal.picked_up
    assert normal.answered_by == BOB


def test_auto_answer_is_not_a_pickup() -> None:
    call = fold([ev("in-progress", 0, people=(ALICE,)), ev("ended", 30, reason="completed")])
    assert call.answered
    assert not call.picked_up
    assert call.ring_time == timedelta(0)
    assert call.talk_time == timedelta(seconds=30)


def test_forwarding_accumulates_rung_without_repeats() -> None:
    call = fold(
        [
            ev("ringing", 0, people=(ALICE,)),
            ev("ringing", 20, people=(ALICE, BOB)),
            ev("ringing", 40, people=(BOB, CAROL)),
        ]
    )
    assert call.rung == (ALICE, BOB, CAROL)
    ringing = [step for step in call.steps if step.kind == "ringing"]
    assert [labels(step.people) for step in ringing] == [("Alice",), ("Bob",), ("Carol",)]


def test_same_person_seen_with_different_number_is_one_person() -> None:
    mobile = Participant(number="+31612345678", name="Alice (mobile)", account_number=201)
    call = fold([ev("ringing", 0, people=(ALICE,)), ev("ringing", 20, people=(mobile,))])
    assert call.rung == (ALICE,)


@pytest.mark.parametrize("reason", ["completed", "no-answer", "cancelled", "abandon", "busy"])
def test_missed_is_decided_by_the_absence_of_an_answer_not_the_reason(reason: str) -> None:
    call = fold([ev("ringing", 0, people=(ALICE,)), ev("ended", 25, reason=reason)])
    assert call.missed
    assert call.end_reason == reason
    assert call.answered_by is None


def test_answered_call_ending_with_odd_reason_is_not_missed() -> None:
    call = fold([ev("in-progress", 0, people=(ALICE,)), ev("ended", 5, reason="failed")])
    assert not call.missed
    assert call.end_reason == "failed"


def test_ring_and_talk_time() -> None:
    answered = fold(
        [
            ev("created", 0),
            ev("ringing", 0.5, people=(ALICE,)),
            ev("in-progress", 12.5, people=(ALICE,)),
            ev("ended", 100, reason="completed"),
        ]
    )
    assert answered.ring_time == timedelta(seconds=12.5)
    assert answered.talk_time == timedelta(seconds=87.5)

    missed = fold([ev("created", 0), ev("ended", 31, reason="no-answer")])
    assert missed.ring_time == timedelta(seconds=31)
    assert missed.talk_time is None

    ongoing = fold([ev("created", 0), ev("in-progress", 4, people=(ALICE,))])
    assert ongoing.ring_time == timedelta(seconds=4)
    assert ongoing.talk_time is None
    assert ongoing.phase == "answered"


def test_phases() -> None:
    assert fold([ev("created", 0)]).phase == "new"
    assert fold([ev("ringing", 0, people=(ALICE,))]).phase == "ringing"


def test_consult_steps_are_flagged_and_do_not_answer_the_call() -> None:
    events = [
        ev("ringing", 0, people=(ALICE,)),
        ev("in-progress", 5, people=(ALICE,)),
        ev("ringing", 30, people=(BOB,), call_id="c-2"),
        ev("in-progress", 40, people=(BOB,), call_id="c-2"),
        ev(
            "warm-transfer",
            40,  # same whole second as Bob answering the consult call
            people=(BOB,),
            merged_id="c-2",
            redirector=ALICE,
        ),
        ev("ended", 200, reason="completed"),
    ]
    call = fold(events)
    flagged = [(s.kind, s.call_id, s.consult) for s in call.steps]
    assert flagged == [
        ("ringing", "c-1", False),
        ("answered", "c-1", False),
        ("ringing", "c-2", True),
        ("answered", "c-2", True),
        ("transfer", "c-1", False),
        ("ended", "c-1", False),
    ]
    assert call.answered_by == ALICE
    assert call.connected == BOB
    assert call.call_ids == ("c-1", "c-2")
    assert call.transfers[0].by == ALICE


def test_consult_call_before_the_transfer_leaves_the_caller_connected_to_the_first_answerer() -> (
    None
):
    events = [
        ev("ringing", 0, people=(ALICE,)),
        ev("in-progress", 5, people=(ALICE,)),
        ev("ringing", 30, people=(BOB,), call_id="c-2"),
        ev("in-progress", 40, people=(BOB,), call_id="c-2"),
    ]
    call = fold(events)
    assert call.connected == ALICE
    assert call.answered_by == ALICE
    assert not call.transfers


def test_semi_attended_connects_the_target_only_when_they_answer() -> None:
    before = [
        ev("ringing", 0, people=(ALICE,)),
        ev("in-progress", 5, people=(ALICE,)),
        ev("ringing", 30, people=(BOB,), call_id="c-2"),
        ev("warm-transfer", 34, people=(BOB,), merged_id="c-1", redirector=ALICE, call_id="c-2"),
    ]
    ringing = fold(before)
    assert ringing.connected == ALICE  # Bob's phone still rings
    answered = fold([*before, ev("in-progress", 38, people=(BOB,), call_id="c-2")])
    assert answered.connected == BOB
    last = answered.steps[-1]
    assert (last.kind, last.call_id, last.consult, labels(last.people)) == (
        "answered",
        "c-2",
        False,
        ("Bob",),
    )


def test_mixed_precision_timestamps_in_one_second_keep_status_order() -> None:
    created = ev("created", 0.972)  # with microseconds
    ringing = ev("ringing", 0, people=(ALICE,))  # the same second, truncated
    call = fold([ringing, created])
    assert [s.kind for s in call.steps] == ["created", "ringing"]


def test_later_event_after_an_ended_leg_reopens_the_story() -> None:
    call = fold(
        [
            ev("in-progress", 0, people=(ALICE,)),
            ev("ended", 10, reason="completed", call_id="c-2"),
            ev("in-progress", 12, people=(BOB,)),
        ]
    )
    assert not call.ended


def test_caller_and_dialled_come_from_the_first_event() -> None:
    call = fold([ev("created", 0), ev("ringing", 1, people=(ALICE,))])
    assert call.caller == CUSTOMER
    assert call.dialled == LINE
    assert call.started_at == T0


def test_empty_story_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one event"):
        fold([])


def test_call_is_frozen() -> None:
    call: Call = fold([ev("created", 0)])
    with pytest.raises(AttributeError):
        call.call_id = "other"  # type: ignore[misc]
