# ruff: noqa: RUF001 (the issue writes "missed 3x" with the multiplication sign)
"""A callback case in plain text (the dry-run log and `callbridge route`): one line per alert
with the state, every miss with who was rung, the attempts and the escalation; one line per
thread reply. Written by hand from tests/render/cases.py's story (14:02 in Amsterdam)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from msgspec.structs import replace

from bridge.core.cases import Case
from bridge.render.casetext import case_view
from bridge.render.text import case_line, render
from tests.render import cases as K

CALL = (
    "<!here> MISSED CALL: ⏹ inbound call from M. de Jong (+31501234567) to +31508009000: "
    "MISSED (no-answer), rang 30s at Johan | Voys (+31508009101), Sanne de Vries (+31508009102)"
)
LIVE = " (live thread: https://example.slack.com/archives/C1/p1)"


@pytest.mark.parametrize(
    ("case", "line"),
    [
        pytest.param(
            K.open_case(), "callback case: ⏳ Waiting for a callback since 14:02", id="open"
        ),
        pytest.param(
            K.stacked(),
            "callback case: ⏳ Waiting for a callback since 14:02; missed 3×: "
            "14:02 (rang Johan | Voys, Sanne de Vries), 14:09 (rang Johan | Voys), "
            "14:21 (nobody's phone rang)",
            id="stacked",
        ),
        pytest.param(
            K.claimed(), "callback case: 📞 Alice is calling back since 14:05", id="claimed"
        ),
        pytest.param(
            K.tried_twice(),
            "callback case: ⏳ Waiting for a callback since 14:02; "
            "tried 2×: Alice 14:25 (no answer), Bob 14:28 (no answer)",
            id="tried",
        ),
        pytest.param(
            K.escalated(),
            "callback case: ⏳ Waiting for a callback since 14:02; "
            "⚠️ Escalated at 14:32 to <!subteam^S0123>",
            id="escalated",
        ),
        pytest.param(
            K.got_through(),
            "callback case: ✅ Got through: answered by Bob at 14:40, 38 min after the first "
            "miss; ⚠️ Escalated at 14:32 to <!subteam^S0123>",
            id="got-through",
        ),
        pytest.param(
            K.called_back(),
            "callback case: ✅ Called back by Alice at 14:32, 30 min after the first miss; "
            "tried 1×: Alice 14:25 (no answer)",
            id="called-back",
        ),
        pytest.param(
            K.done(),
            "callback case: ✅ Closed by Alice at 14:11 (marked done), 9 min after the first miss",
            id="done",
        ),
        pytest.param(
            K.expired(),
            "callback case: ⌛ Not called back in time: closed at 2026-12-05 14:02, 3 d after the "
            "first miss; ⚠️ Escalated at 14:32 to <!subteam^S0123>",
            id="expired",
        ),
    ],
)
def test_the_alert_line_carries_the_case(case: Case, line: str) -> None:
    link = "https://example.slack.com/archives/C1/p1"
    assert render(K.alert(case, ("<!here>",)), {}, link).text == f"{CALL} | {line}{LIVE}"
    assert case_line(case, ZoneInfo(K.TZ)) == line


def test_an_alert_without_a_case_is_as_before() -> None:
    assert render(K.alert(None, ("<!here>",)), {}, None).text == CALL


def test_the_thread_replies_in_plain_text() -> None:
    facts = [
        K.miss("c1", 0),
        K.miss("c2", 7, ("Johan | Voys",)),
        K.click(8, "claim"),
        K.tried(23, "Alice"),
        K.click(24, "release"),
        K.tried(40, "Bob", answered=True, story="o2"),
    ]
    case = K.case_of(facts, 60)
    lines = [render(K.step_content(case, i), {}, None).text for i in range(len(case.steps))]
    assert lines == [
        "14:09 📵 Missed again (rang Johan | Voys)",
        "14:10 📞 Alice is calling back",
        "14:25 🔁 Tried by Alice (no answer)",
        "14:26 ↩️ Released by Alice: nobody is calling back",
        "14:32 ⚠️ <!subteam^S0123> Still not called back: M. de Jong (+31 50 123 4567),"
        " waiting since 14:02 (30 min)",
        "14:42 ✅ Called back by Bob, 40 min after the first miss",
    ]


def test_an_escalation_names_the_number_to_call_once() -> None:
    """Read in the channel, away from the alert, the escalation gives the number to call; a
    caller known only by number is not named twice."""
    case = K.case_of([K.miss("c1", 0)], 40)
    [escalation] = [i for i, s in enumerate(case.steps) if s.kind == "escalated"]
    named = K.step_content(case, escalation)
    unnamed = replace(named, caller="+31501234567")
    texts = [render(c, {}, None).text for c in (named, unnamed)]
    assert "M. de Jong (+31 50 123 4567), waiting since 14:02" in texts[0]
    assert texts[1].endswith("Still not called back: +31 50 123 4567, waiting since 14:02 (30 min)")


def test_times_on_another_day_carry_their_date() -> None:
    facts = [K.miss("c1", 0), K.miss("c2", 1440 + 3), K.tried(1440 + 30, "Alice")]
    line = case_line(K.case_of(facts, 1440 + 40), ZoneInfo(K.TZ))
    assert line == (
        "callback case: ⏳ Waiting for a callback since 14:02; missed 2×: "
        "14:02 (rang Johan | Voys, Sanne de Vries), 2026-12-03 14:05 (rang Johan | Voys, "
        "Sanne de Vries); tried 1×: Alice 2026-12-03 14:32 (no answer); "
        "⚠️ Escalated at 14:32 to <!subteam^S0123>"
    )


def test_an_escalation_with_nobody_to_mention_says_overdue_not_escalated() -> None:
    nobody = K.case_of([replace(K.miss("c1", 0), escalate_to=())], 43)
    assert nobody.escalated_at == K.at(30)
    assert case_line(nobody, ZoneInfo(K.TZ)) == (
        "callback case: ⏳ Waiting for a callback since 14:02; "
        "⚠️ Overdue since 14:32: nobody to escalate to"
    )
    shown = case_view(nobody, ZoneInfo(K.TZ)).summary
    assert shown == "⏳ Waiting for a callback since 14:02 · overdue"
    assert case_view(K.escalated(), ZoneInfo(K.TZ)).summary.endswith(" · escalated")
