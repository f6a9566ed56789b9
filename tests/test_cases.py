"""The callback case fold (bridge/core/cases.py): every path, table by table, and the
property that arrival order and duplication never matter.

Expected values are written from the rules in the module's docstring (issue 16), never
computed by the code under test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.core.cases import (
    AlertTo,
    Answered,
    Attempt,
    CaseKey,
    CaseRef,
    Click,
    Fact,
    Missed,
    decode_fact,
    decode_ref,
    encode_fact,
    encode_ref,
    fold,
    step_slot,
)

KEY = CaseKey("default", "+31612345678")
T0 = datetime(2026, 12, 2, 14, 2, tzinfo=UTC)
NOW = T0 + timedelta(days=10)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def miss(
    story: str, minutes: float, *, escalate: float | None = 30, expire: float = 3 * 1440
) -> Missed:
    return Missed(
        story_id=story,
        at=at(minutes),
        caller="+31 6 12345678",
        dialled="+31508009000",
        rung=("Johan",),
        destinations=("support",),
        escalate_at=None if escalate is None else at(minutes + escalate),
        escalate_to=("<!subteam^S1>",),
        expire_at=at(minutes + expire),
    )


def click(case: str, minutes: float, action: str, user: str = "Alice") -> Click:
    return Click(
        click_id=f"{user}-{action}-{minutes}",
        case_id=case,
        at=at(minutes),
        action=action,  # type: ignore[arg-type]
        user_id=f"U{user}",
        user=user,
    )


def one(facts: list[Fact], now: datetime = NOW) -> object:
    (case,) = fold(KEY, facts, now)
    return case


def test_each_destination_of_a_case_alert_keeps_the_mentions_its_routing_gave_it() -> None:
    first = msgspec.structs.replace(
        miss("m1", 0),
        destinations=("support", "oncall"),
        mentions=("<!subteam^S1>",),
        alerts=(AlertTo("support"), AlertTo("oncall", ("<!subteam^S1>",))),
    )
    # A later miss, routed differently (at night, say), adds a destination of its own.
    later = msgspec.structs.replace(
        miss("m2", 600),
        destinations=("support", "night"),
        mentions=("<!here>", "<@U2>"),
        alerts=(AlertTo("support", ("<!here>",)), AlertTo("night", ("<@U2>",))),
    )
    (case,) = fold(KEY, [later, first], at(601))
    assert case.destinations == ("support", "oncall", "night")
    assert case.mentions_for("support") == ()  # the first miss's say, not the union
    assert case.mentions_for("oncall") == ("<!subteam^S1>",)
    assert case.mentions_for("night") == ("<@U2>",)
    assert case.mentions_for("elsewhere") == ()


def test_a_miss_stored_before_alerts_were_kept_mentions_as_it_did() -> None:
    old = msgspec.structs.replace(
        miss("m1", 0), destinations=("support", "oncall"), mentions=("<!subteam^S1>",)
    )
    fields = msgspec.json.decode(encode_fact(old))
    del fields["alerts"]  # as an earlier version stored it
    stored = msgspec.json.encode(fields)
    (case,) = fold(KEY, [decode_fact(stored)], at(1))
    assert case.mentions_for("support") == ("<!subteam^S1>",)
    assert case.mentions_for("oncall") == ("<!subteam^S1>",)


def test_a_miss_opens_a_case_and_more_misses_stack_on_it() -> None:
    (case,) = fold(KEY, [miss("m1", 0), miss("m2", 7), miss("m3", 19)], at(20))
    assert case.id == "m1"
    assert case.open
    assert [m.story_id for m in case.misses] == ["m1", "m2", "m3"]
    assert [(s.kind, s.at) for s in case.steps] == [("missed", at(7)), ("missed", at(19))]
    assert case.destinations == ("support",)


def test_the_customer_getting_through_closes_the_case() -> None:
    facts = [miss("m1", 0), Answered(story_id="a1", at=at(38), by="Bob")]
    (case,) = fold(KEY, facts, NOW)
    assert case.closing is not None
    assert (case.closing.how, case.closing.by, case.closing.at) == ("got_through", "Bob", at(38))


def test_an_answered_callback_closes_and_an_unanswered_one_is_an_attempt() -> None:
    facts = [
        miss("m1", 0),
        Attempt(story_id="o1", at=at(23), by="Alice", answered=False),
        Attempt(story_id="o2", at=at(30), by="Alice", answered=True),
    ]
    (case,) = fold(KEY, facts, NOW)
    assert [a.story_id for a in case.attempts] == ["o1"]
    assert case.closing is not None
    assert (case.closing.how, case.closing.by, case.closing.at) == ("called_back", "Alice", at(30))
    assert [s.kind for s in case.steps] == ["attempt", "closed"]


def test_calls_before_the_first_miss_do_not_belong_to_the_case() -> None:
    facts = [
        Answered(story_id="a0", at=at(-60), by="Bob"),
        Attempt(story_id="o0", at=at(-30), by="Alice", answered=True),
        miss("m1", 0),
    ]
    (case,) = fold(KEY, facts, at(5))
    assert case.open
    assert case.steps == ()


def test_a_claim_stands_a_second_claim_is_refused_and_release_frees_it() -> None:
    facts = [miss("m1", 0), click("m1", 3, "claim"), click("m1", 4, "claim", "Bob")]
    (case,) = fold(KEY, facts, at(5))
    assert case.claim is not None
    assert (case.claim.user, case.claim.at) == ("Alice", at(3))
    assert [(s.kind, s.by) for s in case.steps] == [("claimed", "Alice")]
    released = fold(KEY, [*facts, click("m1", 6, "release", "Bob")], at(7))[0]
    assert released.claim is None
    assert [(s.kind, s.by) for s in released.steps][-1] == ("released", "Bob")


def test_done_closes_by_hand_and_a_claim_does_not_close() -> None:
    claimed = fold(KEY, [miss("m1", 0), click("m1", 3, "claim")], at(100))[0]
    assert claimed.open
    done = fold(KEY, [miss("m1", 0), click("m1", 3, "claim"), click("m1", 9, "done")], NOW)[0]
    assert done.closing is not None
    assert (done.closing.how, done.closing.by, done.closing.by_id) == ("done", "Alice", "UAlice")


def test_an_unclaimed_case_escalates_once_at_its_deadline() -> None:
    before = fold(KEY, [miss("m1", 0)], at(29))[0]
    assert before.escalated_at is None
    assert before.next_check() == at(30)
    after = fold(KEY, [miss("m1", 0)], at(31))[0]
    assert after.escalated_at == at(30)
    assert [(s.kind, s.mentions) for s in after.steps] == [("escalated", ("<!subteam^S1>",))]
    assert after.next_check() == at(3 * 1440)  # only the expiry is left


def test_a_claimed_case_does_not_escalate_until_released_past_the_deadline() -> None:
    facts = [miss("m1", 0), click("m1", 10, "claim")]
    assert fold(KEY, facts, at(60))[0].escalated_at is None
    released = fold(KEY, [*facts, click("m1", 45, "release")], at(60))[0]
    assert released.escalated_at == at(45)


def test_a_case_without_escalation_never_escalates() -> None:
    (case,) = fold(KEY, [miss("m1", 0, escalate=None)], at(60))
    assert case.escalated_at is None


def test_an_open_case_expires_at_its_window_and_a_later_miss_opens_a_new_one() -> None:
    facts = [miss("m1", 0, expire=60), miss("m2", 90)]
    first, second = fold(KEY, facts, at(100))
    assert first.closing is not None
    assert (first.closing.how, first.closing.at) == ("expired", at(60))
    assert (second.id, second.open) == ("m2", True)


def test_a_miss_after_a_callback_opens_a_new_case_and_old_clicks_do_not_touch_it() -> None:
    facts = [
        miss("m1", 0),
        Attempt(story_id="o1", at=at(5), by="Alice", answered=True),
        miss("m2", 20),
        click("m1", 21, "done"),  # pressed on the old alert
    ]
    first, second = fold(KEY, facts, at(22))
    assert first.closing is not None
    assert first.closing.how == "called_back"
    assert (second.id, second.open, second.steps) == ("m2", True, ())


def test_step_slots_are_stable_as_the_case_grows() -> None:
    early = fold(KEY, [miss("m1", 0), miss("m2", 7)], at(8))[0]
    later = fold(KEY, [miss("m1", 0), miss("m2", 7), click("m1", 9, "claim")], at(10))[0]
    assert step_slot(early, early.steps[0]) == step_slot(later, later.steps[0])
    assert len({step_slot(later, s) for s in later.steps}) == len(later.steps)


def test_facts_and_button_references_survive_encoding() -> None:
    for fact in (miss("m1", 0), click("m1", 3, "claim"), Answered(story_id="a", at=T0, by="B")):
        assert decode_fact(encode_fact(fact)) == fact
    ref = CaseRef("acme", "+31612345678", "m1")
    assert decode_ref(encode_ref(ref)) == ref


def test_a_malformed_button_reference_is_a_value_error() -> None:
    for text in ("", "{}", '["acme"]', "nonsense"):
        try:
            decode_ref(text)
        except ValueError:
            continue
        raise AssertionError(f"{text!r} was accepted")


# -- any order, any duplication -------------------------------------------------------------

STORY = [
    miss("m1", 0),
    miss("m2", 7),
    Attempt(story_id="o1", at=at(12), by="Alice", answered=False),
    click("m1", 13, "claim"),
    click("m1", 14, "claim", "Bob"),
    click("m1", 20, "release"),
    miss("m3", 45),
    Attempt(story_id="o2", at=at(50), by="Bob", answered=True),
    miss("m4", 70),
    click("m4", 71, "done", "Carol"),
    click("m1", 72, "done", "Dave"),
]


@settings(max_examples=200, deadline=None)
@given(st.permutations(STORY), st.lists(st.sampled_from(STORY), max_size=8), st.integers(0, 5000))
def test_any_order_and_duplication_folds_to_the_same_cases(
    shuffled: list[Fact], again: list[Fact], minutes: int
) -> None:
    now = at(minutes)
    assert fold(KEY, [*shuffled, *again], now) == fold(KEY, STORY, now)


def test_the_sample_story_folds_as_written() -> None:
    first, second = fold(KEY, STORY, at(80))
    assert first.id == "m1"
    assert [m.story_id for m in first.misses] == ["m1", "m2", "m3"]
    assert first.escalated_at == at(30)  # released at 20 (before its deadline), unclaimed at 30
    assert first.closing is not None
    assert (first.closing.how, first.closing.by) == ("called_back", "Bob")
    assert second.closing is not None
    assert (second.id, second.closing.how, second.closing.by) == ("m4", "done", "Carol")
