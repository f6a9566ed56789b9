# ruff: noqa: RUF001 (the issue writes "missed 3x" with the multiplication sign)
"""A callback case on its Teams alert card and in its thread: every state written out by hand.

The story is tests/render/cases.py's (14:02 in Amsterdam, Johan and Sanne rung). Teams shows
the same facts as Slack, as TextBlocks and a FactSet, without buttons (Universal Actions come
later) and without Slack's live "… ago" (a card is rendered once per change, with no clock).
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from bridge.core.cases import Answered, Case, Missed
from bridge.core.plan import MissedContent
from bridge.render.adaptivecard import MAX_CARD_BYTES, card_bytes
from bridge.render.message import OutgoingMessage
from bridge.render.teams import render
from tests.render import cases as K
from tests.support.fake_teams import card_texts

LINK = "https://teams.microsoft.com/l/message/19:abc/1"
CALL = [
    "Missed call from M. de Jong (+31 50 123 4567)",
    "Line: +31 50 800 9000",
    "When: 14:02",
    "Rang for: 30s",
    "Reason: not answered",
]
SUMMARY = "📵 Missed call from M. de Jong (+31 50 123 4567) on +31 50 800 9000 at 14:02, rang 30s"
RUNG = "Rang Johan | Voys, Sanne de Vries"
ESCALATED = "⚠️ Escalated at 14:32 to <at>oncall</at>"


def alert(case: Case) -> OutgoingMessage:
    content = MissedContent(call=K.first_call(), tz=K.TZ, case=case)
    return render(content, {}, LINK)


def escalating_to_a_upn(case_facts: list[Any], now: float) -> Case:
    """The same story with the escalation target a Teams user (UPN) instead of a Slack group."""
    facts = [
        msgspec.structs.replace(f, escalate_to=("oncall@corp.example",))
        if isinstance(f, Missed)
        else f
        for f in case_facts
    ]
    return K.case_of(facts, now)


STATES = [
    pytest.param(
        K.open_case(),
        ("📵 Missed call · waiting for a callback", "Attention"),
        [RUNG, "⏳ **Waiting for a callback** since 14:02"],
        " · ⏳ Waiting for a callback since 14:02",
        id="open",
    ),
    pytest.param(
        K.stacked(),
        ("📵 Missed call ×3 · waiting for a callback", "Attention"),
        [
            "Missed 3× · 14:02 · 14:09 · 14:21",
            "14:02: Rang Johan | Voys, Sanne de Vries",
            "14:09: Rang Johan | Voys",
            "14:21: Nobody's phone rang",
            "⏳ **Waiting for a callback** since 14:02",
        ],
        " · ⏳ Waiting for a callback since 14:02 · missed 3×",
        id="stacked",
    ),
    pytest.param(
        K.claimed(),
        ("📞 Missed call · Alice is calling back", "Warning"),
        [RUNG, "📞 Alice **is calling back** since 14:05"],
        " · 📞 Alice is calling back since 14:05",
        id="claimed",
    ),
    pytest.param(
        K.tried_twice(),
        ("📵 Missed call · waiting for a callback", "Attention"),
        [
            RUNG,
            "⏳ **Waiting for a callback** since 14:02",
            "Tried 2× · Alice 14:25 (no answer) · Bob 14:28 (no answer)",
        ],
        " · ⏳ Waiting for a callback since 14:02 · tried 2×",
        id="tried",
    ),
    pytest.param(
        escalating_to_a_upn([K.miss("c1", 0)], 43),
        ("📵 Missed call · waiting for a callback", "Attention"),
        [RUNG, "⏳ **Waiting for a callback** since 14:02", ESCALATED],
        " · ⏳ Waiting for a callback since 14:02 · escalated",
        id="escalated",
    ),
    pytest.param(
        escalating_to_a_upn([K.miss("c1", 0), Answered(story_id="a", at=K.at(38), by="Bob")], 60),
        ("✅ Missed call · got through", "Good"),
        [
            RUNG,
            "✅ **Got through**: answered by Bob at 14:40, 38 min after the first miss",
            ESCALATED,
        ],
        " · ✅ Got through: answered by Bob at 14:40, 38 min after the first miss · escalated",
        id="got-through",
    ),
    pytest.param(
        K.called_back(),
        ("✅ Missed call · called back", "Good"),
        [
            RUNG,
            "✅ **Called back** by Alice at 14:32, 30 min after the first miss",
            "Tried 1× · Alice 14:25 (no answer)",
        ],
        " · ✅ Called back by Alice at 14:32, 30 min after the first miss · tried 1×",
        id="called-back",
    ),
    pytest.param(
        K.done(),
        ("✅ Missed call · done", "Good"),
        [RUNG, "✅ **Closed** by Alice at 14:11 (marked done), 9 min after the first miss"],
        " · ✅ Closed by Alice at 14:11 (marked done), 9 min after the first miss",
        id="done",
    ),
    pytest.param(
        escalating_to_a_upn([K.miss("c1", 0)], 4 * 1440),
        ("⌛ Missed call · not called back", "Attention"),
        [
            RUNG,
            "⌛ **Not called back in time**: closed at 2026-12-05 14:02, 3 d after the first miss",
            ESCALATED,
        ],
        " · ⌛ Not called back in time: closed at 2026-12-05 14:02, 3 d after the first miss"
        " · escalated",
        id="expired",
    ),
]


@pytest.mark.parametrize(("case", "title", "case_texts", "summary_tail"), STATES)
def test_the_card_shows_the_case_state_at_a_glance(
    case: Case, title: tuple[str, str], case_texts: list[str], summary_tail: str
) -> None:
    message = alert(case)
    card = message.card
    assert card is not None
    heading = card["body"][0]
    assert (heading["text"], heading["color"], heading["weight"]) == (*title, "Bolder")
    # A case that went on to another day (expired three days on) dates its call's "When".
    when = "2026-12-02 14:02" if "not called back" in title[0] else "14:02"
    call = [f"When: {when}" if line == "When: 14:02" else line for line in CALL]
    assert card_texts(card) == [title[0], *call, *case_texts]
    assert message.text == SUMMARY.replace("at 14:02", f"at {when}") + summary_tail
    # without buttons (render's default: TEAMS_BUTTONS off): only the link to the live call
    assert card["actions"] == [
        {"type": "Action.OpenUrl", "title": "Open the live call thread", "url": LINK}
    ]


CLAIM_BUTTON = {
    "type": "Action.Execute",
    "title": "I'll call back",
    "verb": "callbridge_case_claim",
    "data": {"case": '["acme","+31501234567","c1"]'},
    "style": "positive",
}
RELEASE_BUTTON = {
    "type": "Action.Execute",
    "title": "Release",
    "verb": "callbridge_case_release",
    "data": {"case": '["acme","+31501234567","c1"]'},
}
DONE_BUTTON = {
    "type": "Action.ShowCard",
    "title": "Done",
    "card": {
        "type": "AdaptiveCard",
        "body": [
            {
                "type": "TextBlock",
                "text": "Nobody needs to call M. de Jong back any more? The case closes in "
                "your name.",
                "wrap": True,
            }
        ],
        "actions": [
            {
                "type": "Action.Execute",
                "title": "Close the case",
                "verb": "callbridge_case_done",
                "data": {"case": '["acme","+31501234567","c1"]'},
            }
        ],
    },
}
OPEN_LINK = {"type": "Action.OpenUrl", "title": "Open the live call thread", "url": LINK}


@pytest.mark.parametrize(
    ("case", "actions"),
    [
        pytest.param(K.open_case(), [CLAIM_BUTTON, DONE_BUTTON], id="open"),
        pytest.param(K.stacked(), [CLAIM_BUTTON, DONE_BUTTON], id="stacked"),
        pytest.param(K.claimed(), [RELEASE_BUTTON, DONE_BUTTON], id="claimed"),
        pytest.param(K.called_back(), [], id="closed"),
        pytest.param(K.done(), [], id="done"),
    ],
)
def test_with_buttons_an_open_cases_card_offers_them(case: Case, actions: list[Any]) -> None:
    content = MissedContent(call=K.first_call(), tz=K.TZ, case=case)
    card = render(content, {}, LINK, buttons=True).card
    assert card is not None
    assert card["actions"] == [*actions, OPEN_LINK]


def test_an_escalation_to_a_teams_user_mentions_them() -> None:
    card = alert(escalating_to_a_upn([K.miss("c1", 0)], 43)).card
    assert card is not None
    assert card["msteams"]["entities"] == [
        {
            "type": "mention",
            "text": "<at>oncall</at>",
            "mentioned": {"id": "oncall@corp.example", "name": "oncall"},
        }
    ]


def test_each_step_is_a_reply_card_with_its_time() -> None:
    case = escalating_to_a_upn(
        [K.miss("c1", 0), K.miss("c2", 7, ("Johan | Voys",)), K.tried(23, "Alice")], 60
    )
    told = [render(K.step_content(case, i), {}, None) for i in range(len(case.steps))]
    assert [card_texts(m.card) for m in told] == [
        ["14:09 · 📵 **Missed again** (rang Johan | Voys)"],
        ["14:25 · 🔁 Tried by Alice (no answer)"],
        [
            "14:32 · ⚠️ <at>oncall</at> **Still not called back**: M. de Jong (+31 50 123 4567),"
            " waiting since "
            "14:02 (30 min)"
        ],
    ]
    assert [m.text for m in told] == [
        "14:09 📵 Missed again (rang Johan | Voys)",
        "14:25 🔁 Tried by Alice (no answer)",
        "14:32 ⚠️ oncall@corp.example Still not called back: M. de Jong (+31 50 123 4567),"
        " waiting since 14:02 "
        "(30 min)",
    ]
    assert told[2].card is not None
    assert told[2].card["msteams"]["entities"][0]["mentioned"]["id"] == "oncall@corp.example"
    assert not any(m.broadcast for m in told)  # a Slack notion


def test_names_in_a_case_cannot_inject_markdown_or_mentions() -> None:
    evil = "[x](https://evil.example) **b** <at>Boss</at>"
    case = K.case_of([K.miss("c1", 0), K.miss("c2", 7, (evil,)), K.tried(9, evil)], 10)
    message = alert(case)
    texts = card_texts(message.card)
    escaped = r"\[x\](https://evil.example) \*\*b\*\* \<at\>Boss\</at\>"
    assert f"14:09: Rang {escaped}" in texts
    assert f"Tried 1× · {escaped} 14:11 (no answer)" in texts
    assert message.card is not None
    assert "entities" not in message.card["msteams"]


def test_a_case_with_hundreds_of_misses_and_attempts_stays_under_the_size_limit() -> None:
    group = tuple(f"Colleague {n} {'x' * 40}" for n in range(30))
    facts = [K.miss(f"c{n}", n * 2, group) for n in range(200)]
    facts += [K.tried(400 + n, "A" * 300 + str(n)) for n in range(150)]
    message = alert(K.case_of(facts, 600))
    assert message.card is not None
    assert card_bytes(message.card) <= MAX_CARD_BYTES
    texts = card_texts(message.card)
    assert texts[0] == "📵 Missed call ×200 · waiting for a callback"
    misses = next(t for t in texts if t.startswith("Missed 200× · 14:02 · 14:04"))
    assert misses.endswith(" more")  # the times left out are counted
    assert texts[texts.index(misses) + 1].startswith("14:02: Rang Colleague 0 ")
    assert any(t.startswith("… and ") and t.endswith(" more") for t in texts)  # and the rows
    assert any(t.startswith("Tried 150× · ") and t.endswith(" more") for t in texts)
    assert len(message.text) <= 500
