# ruff: noqa: RUF001, RUF002 (the issue writes "missed 3x" with the multiplication sign)
"""A callback case on its Slack alert and in its thread: every state written out by hand.

The story is tests/render/cases.py's: M. de Jong misses the support line at 14:02
(Amsterdam), Johan (Slack <@UJOHAN>) and Sanne are rung; escalation to <!subteam^S0123> after
30 minutes; Alice is Slack user UALICE. Expected texts come from issue 16 ("missed 3×, 14:02 ·
14:09 · 14:21", "got through, answered by Bob at 14:40", "called back by Alice at 14:32, 30 min
after the first miss", "tried by Alice at 14:25 (no answer)", "Alice is calling back since
14:05"), never from the renderer.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from bridge.core.cases import ACTION_PREFIX, Answered, Case, CaseKey, CaseRef, decode_ref, fold
from bridge.core.plan import MissedContent
from bridge.render.message import OutgoingMessage
from bridge.render.slack import render
from tests.render import cases as K

USERS = {"johan@example.com": "UJOHAN"}
LINK = "https://example.slack.com/archives/C1/p1796216550000100"
FIRST_UNIX = int(datetime(2026, 12, 2, 13, 2, tzinfo=UTC).timestamp())  # 14:02 in Amsterdam
LIVE_SINCE = f"<!date^{FIRST_UNIX}^{{time}} ({{ago}})|14:02>"
REF = '["acme","+31501234567","c1"]'
CALL_TEXT = (
    "<!here> 📵 Missed call from M. de Jong (+31 50 123 4567) on +31 50 800 9000 at 14:02, rang 30s"
)
RUNG = "Rang <@UJOHAN>, Sanne de Vries"


def header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": text}}


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def md(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


CALLER = {
    "type": "section",
    "text": md("<!here> Missed call from *M. de Jong* (+31 50 123 4567)"),
    "fields": [
        md("*Line*\n+31 50 800 9000"),
        md("*When*\n14:02"),
        md("*Rang for*\n30s"),
        md("*Reason*\nnot answered"),
    ],
}
LIVE = {"type": "context", "elements": [md(f"<{LINK}|Open the live call thread>")]}


def plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


CLAIM = {
    "type": "button",
    "action_id": "callbridge_case_claim",
    "text": plain("I'll call back"),
    "value": REF,
    "style": "primary",
}
RELEASE = {
    "type": "button",
    "action_id": "callbridge_case_release",
    "text": plain("Release"),
    "value": REF,
}
DONE = {
    "type": "button",
    "action_id": "callbridge_case_done",
    "text": plain("Done"),
    "value": REF,
    "confirm": {
        "title": plain("Close this callback?"),
        "text": plain(
            "Nobody needs to call M. de Jong back any more? The case closes in your name."
        ),
        "confirm": plain("Done"),
        "deny": plain("Cancel"),
    },
}


def actions(*buttons: dict[str, Any]) -> dict[str, Any]:
    return {"type": "actions", "elements": list(buttons)}


def alert(case: Case, *, buttons: bool = True) -> OutgoingMessage:
    return render(K.alert(case, ("<!here>",)), USERS, LINK, buttons=buttons)


STATES = [
    pytest.param(
        K.open_case,
        "📵 Missed call · waiting for a callback",
        [section(RUNG), section(f"⏳ *Waiting for a callback* since {LIVE_SINCE}")],
        [CLAIM, DONE],
        " · ⏳ Waiting for a callback since 14:02",
        id="open",
    ),
    pytest.param(
        K.stacked,
        "📵 Missed call ×3 · waiting for a callback",
        [
            section(
                "*Missed 3×* · 14:02 · 14:09 · 14:21\n"
                "`14:02` Rang <@UJOHAN>, Sanne de Vries\n"
                "`14:09` Rang Johan | Voys\n"
                "`14:21` Nobody's phone rang"
            ),
            section(f"⏳ *Waiting for a callback* since {LIVE_SINCE}"),
        ],
        [CLAIM, DONE],
        " · ⏳ Waiting for a callback since 14:02 · missed 3×",
        id="stacked",
    ),
    pytest.param(
        K.claimed,
        "📞 Missed call · Alice is calling back",
        [section(RUNG), section("📞 <@UALICE> *is calling back* since 14:05")],
        [RELEASE, DONE],
        " · 📞 Alice is calling back since 14:05",
        id="claimed",
    ),
    pytest.param(
        K.tried_twice,
        "📵 Missed call · waiting for a callback",
        [
            section(RUNG),
            section(
                f"⏳ *Waiting for a callback* since {LIVE_SINCE}\n"
                "Tried 2× · Alice 14:25 (no answer) · Bob 14:28 (no answer)"
            ),
        ],
        [CLAIM, DONE],
        " · ⏳ Waiting for a callback since 14:02 · tried 2×",
        id="tried",
    ),
    pytest.param(
        K.escalated,
        "📵 Missed call · waiting for a callback",
        [
            section(RUNG),
            section(
                f"⏳ *Waiting for a callback* since {LIVE_SINCE}\n"
                "⚠️ Escalated at 14:32 to <!subteam^S0123>"
            ),
        ],
        [CLAIM, DONE],
        " · ⏳ Waiting for a callback since 14:02 · escalated",
        id="escalated",
    ),
    pytest.param(
        K.got_through,
        "✅ Missed call · got through",
        [
            section(RUNG),
            section(
                "✅ *Got through*: answered by Bob at 14:40, 38 min after the first miss\n"
                "⚠️ Escalated at 14:32 to <!subteam^S0123>"
            ),
        ],
        None,
        " · ✅ Got through: answered by Bob at 14:40, 38 min after the first miss · escalated",
        id="got-through",
    ),
    pytest.param(
        K.called_back,
        "✅ Missed call · called back",
        [
            section(RUNG),
            section(
                "✅ *Called back* by Alice at 14:32, 30 min after the first miss\n"
                "Tried 1× · Alice 14:25 (no answer)"
            ),
        ],
        None,
        " · ✅ Called back by Alice at 14:32, 30 min after the first miss · tried 1×",
        id="called-back",
    ),
    pytest.param(
        K.done,
        "✅ Missed call · done",
        [
            section(RUNG),
            section("✅ *Closed* by <@UALICE> at 14:11 (marked done), 9 min after the first miss"),
        ],
        None,
        " · ✅ Closed by Alice at 14:11 (marked done), 9 min after the first miss",
        id="done",
    ),
    pytest.param(
        K.expired,
        "⌛ Missed call · not called back",
        [
            section(RUNG),
            section(
                "⌛ *Not called back in time*: closed at 2026-12-05 14:02, "
                "3 d after the first miss\n"
                "⚠️ Escalated at 14:32 to <!subteam^S0123>"
            ),
        ],
        None,
        " · ⌛ Not called back in time: closed at 2026-12-05 14:02, 3 d after the first miss"
        " · escalated",
        id="expired",
    ),
]


@pytest.mark.parametrize(("build", "title", "case_blocks", "buttons", "text_tail"), STATES)
def test_the_alert_shows_the_case_state_at_a_glance(
    build: Any,
    title: str,
    case_blocks: list[dict[str, Any]],
    buttons: list[dict[str, Any]] | None,
    text_tail: str,
) -> None:
    message = alert(build())
    # A case that went on to another day (expired three days on) dates its call's "When".
    when = "2026-12-02 14:02" if build is K.expired else "14:02"
    caller = {**CALLER, "fields": [md(f"*When*\n{when}") if f == md("*When*\n14:02") else f
                                   for f in CALLER["fields"]]}  # fmt: skip
    expected = [header(title), caller, *case_blocks]
    if buttons is not None:
        expected.append(actions(*buttons))
    expected.append(LIVE)
    assert list(message.blocks) == expected
    assert message.text == CALL_TEXT.replace("at 14:02", f"at {when}") + text_tail
    assert not message.broadcast


@pytest.mark.parametrize("build", [p.values[0] for p in STATES])
def test_without_interactivity_the_alert_has_no_buttons(build: Any) -> None:
    message = alert(build(), buttons=False)
    assert [b for b in message.blocks if b["type"] == "actions"] == []
    assert message.blocks == tuple(b for b in alert(build()).blocks if b["type"] != "actions")


def test_an_alert_without_a_case_is_as_before_and_never_has_buttons() -> None:
    message = render(K.alert(None, ("<!here>",)), USERS, LINK, buttons=True)
    assert list(message.blocks) == [header("📵 Missed call"), CALLER, section(RUNG), LIVE]
    assert message.text == CALL_TEXT


def test_the_buttons_carry_the_case_back() -> None:
    for build in (K.open_case, K.claimed, K.stacked):
        case = build()
        (block,) = [b for b in alert(case).blocks if b["type"] == "actions"]
        for button in block["elements"]:
            assert button["action_id"].startswith(ACTION_PREFIX)
            assert button["action_id"].removeprefix(ACTION_PREFIX) in ("claim", "release", "done")
            assert decode_ref(button["value"]) == CaseRef("acme", "+31501234567", "c1")
            assert decode_ref(button["value"]).key == case.key


def test_a_later_case_of_the_same_number_carries_its_own_id() -> None:
    first = K.miss("c1", 0)
    later = K.miss("c9", 200)
    callback = K.tried(60, "Alice", answered=True)
    _, second = fold(K.KEY, [first, callback, later], K.at(201))
    (block,) = [b for b in alert(second).blocks if b["type"] == "actions"]
    assert {decode_ref(b["value"]) for b in block["elements"]} == {
        CaseRef("acme", "+31501234567", "c9")
    }


def test_a_claim_without_a_slack_user_id_names_the_claimer() -> None:
    claim = msgspec.structs.replace(K.click(3, "claim"), user_id="")
    case = K.case_of([K.miss("c1", 0), claim], 10)
    assert alert(case).blocks[3] == section("📞 Alice *is calling back* since 14:05")


# -- the thread replies -----------------------------------------------------------------------


def replies(case: Case) -> list[OutgoingMessage]:
    return [render(K.step_content(case, i), USERS, None) for i in range(len(case.steps))]


def test_each_step_is_a_reply_with_its_time() -> None:
    told = [
        *replies(K.stacked()),
        *replies(K.called_back()),
        *replies(K.done()),
        *replies(K.got_through()),
    ]
    assert [m.blocks[0]["text"]["text"] for m in told] == [
        "`14:09` 📵 *Missed again* (rang Johan | Voys)",
        "`14:21` 📵 *Missed again*",
        "`14:25` 🔁 Tried by Alice (no answer)",
        "`14:32` ✅ *Called back* by Alice, 30 min after the first miss",
        "`14:05` 📞 Alice is calling back",
        "`14:11` ✅ *Closed* by Alice (marked done), 9 min after the first miss",
        "`14:32` ⚠️ <!subteam^S0123> *Still not called back*: M. de Jong (+31 50 123 4567),"
        " waiting since 14:02 "
        "(30 min)",
        "`14:40` ✅ *Got through*: answered by Bob, 38 min after the first miss",
    ]
    assert [m.text for m in told[:2]] == [
        "14:09 📵 Missed again (rang Johan | Voys)",
        "14:21 📵 Missed again",
    ]


def test_only_the_escalation_is_broadcast_and_its_text_mentions_the_target() -> None:
    case = K.got_through()
    escalation, closing = replies(case)
    assert escalation.broadcast
    assert escalation.text == (
        "14:32 ⚠️ <!subteam^S0123> Still not called back: M. de Jong (+31 50 123 4567),"
        " waiting since 14:02 (30 min)"
    )
    assert not closing.broadcast
    for step in (*replies(K.stacked()), *replies(K.done()), *replies(K.called_back())):
        assert not step.broadcast


def test_a_release_and_an_expiry_are_told_too() -> None:
    facts = [K.miss("c1", 0), K.click(3, "claim"), K.click(50, "release", "Bob")]
    released = K.case_of(facts, 60)
    texts = [m.blocks[0]["text"]["text"] for m in replies(released)]
    assert texts == [
        "`14:05` 📞 Alice is calling back",
        "`14:52` ↩️ Released by Bob: nobody is calling back",
        # released after the deadline: nobody is on it, so it escalates at once
        "`14:52` ⚠️ <!subteam^S0123> *Still not called back*: M. de Jong (+31 50 123 4567),"
        " waiting since 14:02 "
        "(50 min)",
    ]
    expiry = replies(K.expired())[-1]
    assert expiry.blocks[0]["text"]["text"] == (
        "`2026-12-05 14:02` ⌛ *Not called back in time*, 3 d after the first miss"
    )


# -- injection and limits ---------------------------------------------------------------------

EVIL = "<!channel> & <https://evil|x>"
EVIL_ESCAPED = "&lt;!channel&gt; &amp; &lt;https://evil|x&gt;"


def test_names_in_a_case_cannot_inject_mentions_or_links() -> None:
    evil_miss = K.miss("c2", 7, (EVIL,))
    facts = [
        K.miss("c1", 0),
        evil_miss,
        K.tried(9, EVIL),
        K.click(10, "claim", EVIL.replace(" ", "")),  # not a Slack id: named, escaped
        Answered(story_id="a1", at=K.at(40), by=EVIL),
    ]
    case = K.case_of(facts, 60)
    messages = [alert(case), *replies(case)]
    dumped = json.dumps([[m.text, m.blocks] for m in messages], ensure_ascii=False)
    for raw in ("<!channel>", "<https://evil"):
        assert raw not in dumped
    assert EVIL_ESCAPED in dumped
    assert f"answered by {EVIL_ESCAPED} at 14:42" in alert(case).blocks[3]["text"]["text"]


MARKUP = re.compile(r"<[^<>]*>")


def many() -> Case:
    """200 misses (each ringing a call group of 30), 150 attempts and a claim, with long
    names: far beyond what one message may hold."""
    group = tuple(f"Colleague {n} {'x' * 40}" for n in range(30))
    facts = [K.miss(f"c{n}", n * 2, group if n else K.BOTH) for n in range(200)]
    facts += [K.tried(400 + n, "A" * 300 + str(n)) for n in range(150)]
    facts.append(K.click(1, "claim", "B" * 500, case="c0"))
    return K.case_of(facts, 600)


def _texts(message: OutgoingMessage) -> list[tuple[str, str, int]]:
    """(where, text, limit) of every text in the message, with Slack's published limits."""
    out = [("text", message.text, 40_000)]
    for block in message.blocks:
        kind = block["type"]
        if kind == "header":
            out.append(("header", block["text"]["text"], 150))
        elif kind == "section":
            out.append(("section", block["text"]["text"], 3000))
            out += [("field", f["text"], 2000) for f in block.get("fields", [])]
        elif kind == "context":
            out += [("context", e["text"], 3000) for e in block["elements"]]
        elif kind == "actions":
            assert len(block["elements"]) <= 25
            for button in block["elements"]:
                out.append(("button", button["text"]["text"], 75))
                out.append(("value", button["value"], 2000))
                out.append(("action_id", button["action_id"], 255))
                confirm = button.get("confirm")
                if confirm:
                    out.append(("confirm title", confirm["title"]["text"], 100))
                    out.append(("confirm text", confirm["text"]["text"], 300))
                    out.append(("confirm", confirm["confirm"]["text"], 30))
                    out.append(("deny", confirm["deny"]["text"], 30))
        else:  # pragma: no cover - a new block type needs its limits checked here
            raise AssertionError(f"unexpected block {kind}")
    return out


def test_a_case_with_hundreds_of_misses_and_attempts_stays_within_slacks_limits() -> None:
    case = many()
    message = render(
        MissedContent(call=K.first_call(), tz=K.TZ, mentions=("<!here>",), case=case),
        USERS,
        LINK,
        buttons=True,
    )
    assert len(message.blocks) <= 50
    for where, text, limit in _texts(message):
        assert text.strip(), where
        assert len(text) <= limit, (where, len(text))
        for markup in MARKUP.findall(text):  # never cut inside a mention, date or link
            assert markup in (
                "<@UJOHAN>",
                f"<@U{'B' * 500}>",  # the claimer
                "<!here>",
                f"<{LINK}|Open the live call thread>",
            ) or markup.startswith("<!date^"), (where, markup)
    misses, state = message.blocks[2]["text"]["text"], message.blocks[3]["text"]["text"]
    assert misses.startswith("*Missed 200×* · 14:02 · 14:04 · 14:06")
    assert re.search(r"… and \d+ more\n", misses)  # the times left out are counted
    assert re.search(r"\n… and \d+ more$", misses)  # and so are the lines
    assert state.startswith("📞 <@UB")  # the claimer's id, not cut
    assert re.search(r"Tried 150× · A+0 .*… and \d+ more$", state)
    assert message.blocks[-2]["type"] == "actions"


def test_a_reference_too_long_for_a_button_drops_the_buttons_not_the_alert() -> None:
    (case,) = fold(CaseKey("s" * 2100, "+31501234567"), [K.miss("c1", 0)], K.at(5))
    message = alert(case)
    kinds = [b["type"] for b in message.blocks]
    assert kinds == ["header", "section", "section", "section", "context"]
