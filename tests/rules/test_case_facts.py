"""What a routed call means for callback cases (bridge.rules.callbacks.case_facts), for calls
folded from provider JSON: which fact, in which scope, with which deadlines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from bridge.core.calls import Call
from bridge.core.cases import AlertTo, Answered, Attempt, CaseKey, Fact, Missed, fold
from bridge.rules import route
from bridge.rules.callbacks import case_facts, outcome

from .helpers import call, person, rules

RULES = rules(
    """\
routes:
  - name: ignore internal calls
    when: {internal: true}
    drop: true
  - name: acme numbers
    when: {destination: "+3120111*"}
    callback: {scope: acme}
    continue: true
  - name: support
    when: {direction: inbound, destination: ["+31508009000", "+3120111*"]}
    live: support
    missed: [support, oncall]
    min_ring: 5s
  - name: quiet line
    when: {direction: inbound, destination: "+31508009555"}
    missed: support
    callback: off
  - name: acme callbacks
    when: {direction: outbound, caller: "+31201110000"}
    live: support
    callback: {scope: acme}
  - name: premium numbers
    when: {direction: outbound, destination: "0900*"}
    drop: true
    callback: {scope: premium}
  - name: outbound
    when: {direction: outbound}
    live: support
unmatched: {missed: sales, callback: {scope: leftovers, escalate_after: 5m}}
"""
)
T0 = datetime(2026, 12, 1, 13, 2, tzinfo=UTC)  # Tue 14:02 in Amsterdam
S = timedelta(seconds=1)
CUSTOMER = person("+31612345678", "Anouk")
B = person("202", "B", account=202)
ALICE = person("201", "Alice", account=201)
ONCALL = "<!subteam^S0ONCALL1>"


def facts(c: Call) -> list[tuple[CaseKey, Fact]]:
    return case_facts(RULES, c, route(RULES, c))


def missed(dialled: str, *, ring: timedelta = 30 * S) -> Call:
    return call(T0, dialled=dialled, caller=CUSTOMER, rung=(B,), ring=ring)


def answered(dialled: str) -> Call:
    return call(T0, dialled=dialled, caller=CUSTOMER, rung=(B,), answered=B)


def outbound(
    dialled: str,
    *,
    caller: dict[str, Any] = ALICE,
    answered: dict[str, Any] | None = None,
    ended: bool = True,
) -> Call:
    """A colleague calls ``dialled``; an outside phone rings (and maybe answers)."""
    return call(
        T0,
        direction="outbound",
        dialled=dialled,
        caller=caller,
        rung=(person(dialled),),
        answered=answered,
        ended=ended,
    )


def test_a_missed_call_that_alerts_opens_a_case_with_the_routes_clock() -> None:
    assert facts(missed("+31508009000")) == [
        (
            CaseKey("default", "+31612345678"),
            Missed(
                story_id="c1",
                at=T0,
                caller="Anouk",
                dialled="+31508009000",
                rung=("B",),
                destinations=("support", "oncall"),
                mentions=(ONCALL,),
                # oncall's mention is the on-call destination's own (the helper's rules)
                alerts=(AlertTo("support"), AlertTo("oncall", (ONCALL,))),
                escalate_at=T0 + timedelta(minutes=30),
                escalate_to=(ONCALL,),  # no escalate_to: the alert's mentions
                expire_at=T0 + timedelta(days=3),
            ),
        )
    ]


def test_an_answered_inbound_call_means_the_customer_got_through() -> None:
    # answered when the ringing stopped: T0 + 10 s (helpers.call's default ring)
    assert facts(answered("+31508009000")) == [
        (CaseKey("default", "+31612345678"), Answered(story_id="c1", at=T0 + 10 * S, by="B"))
    ]


def test_an_inbound_call_still_ringing_adds_nothing() -> None:
    ringing = call(T0, dialled="+31508009000", caller=CUSTOMER, rung=(B,), ended=False)
    assert facts(ringing) == []
    assert outcome(RULES, ringing, route(RULES, ringing)).why == "not answered yet"


def test_a_miss_without_an_alert_opens_no_case() -> None:
    short = missed("+31508009000", ring=3 * S)  # below min_ring: no alert
    assert facts(short) == []
    assert outcome(RULES, short, route(RULES, short)).why == (
        "missed, but it raised no missed-call alert"
    )


@pytest.mark.parametrize("number", ["anonymous", "", "201", "+31xxxxxxxxxx"])
def test_callers_without_a_public_number_open_no_case(number: str) -> None:
    c = call(T0, caller=person(number), rung=(B,), ring=30 * S)
    result = route(RULES, c)
    assert [d.destination for d in result.deliveries if d.kind == "missed"] == [
        "support",
        "oncall",
    ]  # the alert is posted as before
    assert case_facts(RULES, c, result) == []
    assert (
        outcome(RULES, c, result).why
        == f'the caller ("{number or "no number"}") has no public number'
    )


def test_callback_off_alerts_as_before_and_takes_the_calls_out_of_cases() -> None:
    miss = missed("+31508009555")
    assert [d.destination for d in route(RULES, miss).deliveries] == ["support"]
    assert facts(miss) == []
    assert outcome(RULES, miss, route(RULES, miss)).why == (
        'route "quiet line" says `callback: off`'
    )
    assert facts(answered("+31508009555")) == []


def test_the_scope_is_the_first_matched_routes_for_every_call() -> None:
    """The missed call alerts through `support` but matched `acme numbers` first: its case is
    acme's, and so is the call that gets through, and Alice's callback with acme's number."""
    key = CaseKey("acme", "+31612345678")
    (miss,) = facts(missed("+31201110005"))
    (through,) = facts(answered("+31201110005"))
    (back,) = facts(
        outbound(
            "0612345678",
            caller=person("+31201110000", "Alice", account=201),
            answered=person("0612345678"),
        )
    )
    assert [miss[0], through[0], back[0]] == [key, key, key]
    assert isinstance(miss[1], Missed)
    assert miss[1].escalate_at == T0 + timedelta(minutes=30)  # support's clock (the default)
    # helpers.call names every call c1; two stories have two ids
    callback = msgspec.structs.replace(back[1], story_id="c2")
    (case,) = fold(key, [miss[1], callback], T0 + timedelta(days=1))
    assert case.closing is not None
    assert (case.closing.how, case.closing.by) == ("called_back", "Alice")


def test_a_call_another_scopes_route_matches_does_not_touch_the_case() -> None:
    (miss,) = facts(missed("+31201110005"))  # acme's case
    (back,) = facts(outbound("0612345678", answered=person("0612345678")))  # default scope
    assert back[0] == CaseKey("default", "+31612345678")
    assert back[0] != miss[0]


def test_outbound_calls_are_attempts_answered_or_not() -> None:
    # No `created` for outbound calls: the call starts at its first event, ringing at T0 + 1 s;
    # answered at T0 + 10 s.
    key = CaseKey("default", "+31612345678")
    assert facts(outbound("0612345678", answered=person("0612345678"))) == [
        (key, Attempt(story_id="c1", at=T0 + 10 * S, by="Alice", answered=True))
    ]
    assert facts(outbound("0612345678")) == [
        (key, Attempt(story_id="c1", at=T0 + S, by="Alice", answered=False))
    ]
    assert facts(outbound("0031612345678")) == [
        (key, Attempt(story_id="c1", at=T0 + S, by="Alice", answered=False))
    ]


def test_an_outbound_call_still_ringing_adds_nothing() -> None:
    ringing = outbound("0612345678", ended=False)
    assert facts(ringing) == []
    assert outcome(RULES, ringing, route(RULES, ringing)).why == "still ringing"


def test_a_call_a_drop_route_matches_still_counts_in_its_scope() -> None:
    assert facts(outbound("09001234567", answered=person("09001234567"))) == [
        (
            CaseKey("premium", "+319001234567"),
            Attempt(story_id="c1", at=T0 + 10 * S, by="Alice", answered=True),
        )
    ]


@pytest.mark.parametrize(
    ("dialled", "callee"),
    [
        ("202", person("202", "B", account=202)),
        ("0612345678", person("0612345678", "C", account=203)),
    ],
    ids=["an extension", "a colleague's mobile"],
)
def test_internal_calls_add_nothing(dialled: str, callee: dict[str, Any]) -> None:
    c = call(
        T0, direction="outbound", dialled=dialled, caller=ALICE, rung=(callee,), answered=callee
    )
    result = route(RULES, c)
    assert result.matched_routes == ("ignore internal calls",)
    assert case_facts(RULES, c, result) == []
    assert outcome(RULES, c, result).why == "an internal call, between colleagues"


def test_a_dialled_extension_of_an_outside_party_adds_nothing() -> None:
    # Not internal by the rules' definition (nobody with an account was reached), but "12345"
    # is no public number either.
    c = outbound("0800", answered=person("0800"))
    assert facts(c) == []
    assert (
        outcome(RULES, c, route(RULES, c)).why == 'the dialled number "0800" is not a public number'
    )


def test_unmatched_calls_take_unmatched_s_policy() -> None:
    (fact,) = facts(missed("+31508007777"))
    key, miss = fact
    assert key == CaseKey("leftovers", "+31612345678")
    assert isinstance(miss, Missed)
    assert miss.destinations == ("sales",)
    assert miss.escalate_at == T0 + timedelta(minutes=5)
    assert miss.escalate_to == ()  # no mentions anywhere


def test_without_unmatched_the_files_policy_applies() -> None:
    plain = rules(
        "callbacks: {scope: ours}\n"
        "routes:\n  - {name: in, when: {direction: inbound}, missed: support}\n"
    )
    c = outbound("0612345678", answered=person("0612345678"))
    result = route(plain, c)
    assert result.unmatched
    ((key, _),) = case_facts(plain, c, result)
    assert key == CaseKey("ours", "+31612345678")


def test_the_alerting_route_decides_the_clock_and_may_switch_cases_off() -> None:
    text = """\
callbacks:
  escalate_to: ["<@U0LEAD001>"]
  hours: office
routes:
  - name: everyone
    when: {direction: inbound}
    live: support
    continue: true
  - name: sales line
    when: {destination: "+31508009100"}
    missed: sales
    callback: off
  - name: support line
    when: {destination: "+31508009000"}
    missed: support
    callback: {escalate_after: 1h, hours: off}
  - name: the rest
    missed: support
"""
    ruleset = rules(text)

    def one(dialled: str, at: datetime) -> list[tuple[CaseKey, Fact]]:
        c = call(at, dialled=dialled, caller=CUSTOMER, ring=30 * S)
        return case_facts(ruleset, c, route(ruleset, c))

    friday = datetime(2026, 12, 4, 16, 0, tzinfo=UTC)  # Fri 17:00 CET
    assert one("+31508009100", friday) == []
    ((_, support),) = one("+31508009000", friday)
    assert isinstance(support, Missed)
    assert support.escalate_at == friday + timedelta(hours=1)  # hours: off, 24/7
    assert support.escalate_to == ("<@U0LEAD001>",)
    ((_, rest),) = one("+31508009999", friday)
    assert isinstance(rest, Missed)
    # 30m with office hours: Fri 17:00-17:30 CET uses it all: 17:30 CET.
    assert rest.escalate_at == datetime(2026, 12, 4, 16, 30, tzinfo=UTC)
    # 3d = 72h of open time: 0.5h Fri, 9h a day Mon 12-07..Fri 12-11 and Mon 12-14..Tue 12-15
    # (63.5h in all); 8.5h more on Wed 12-16: 08:30 + 8:30 = 17:00 CET.
    assert rest.expire_at == datetime(2026, 12, 16, 16, 0, tzinfo=UTC)
