"""Slack Block Kit rendering: every message kind written out by hand, limits, injection.

The expected texts and blocks below are written from the specification (issue 4, "What users
see"), not copied from the renderer. T0 is 10:41:07 in Amsterdam; Johan has the Slack mention
<@UJOHAN>; Sanne has an e-mail but no Slack user; the customer is M. de Jong, +31501234567.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.core.calls import Call, fold
from bridge.core.events import Event, decode
from bridge.render import slack
from bridge.render.slack import SlackMessage
from bridge.render.view import CallView, view
from bridge.simulate import SCENARIOS, ScenarioContext
from tests.render import (
    AMS,
    CUSTOMER,
    JOHAN,
    LUCAS,
    PIETER,
    SANNE,
    T0,
    answered_call,
    call,
    ev,
    internal,
    ringing_call,
    warm_transfer_call,
)

MENTIONS = {"johan@example.com": "<@UJOHAN>"}
LATER = T0 + timedelta(hours=5)
TITLE = "*M. de Jong* (+31 50 123 4567) → +31 50 800 9000"
FROM = "M. de Jong (+31 50 123 4567) → +31 50 800 9000"
LINK = "https://example.slack.com/archives/C0123456789/p1709631667000100"


def cv(*events: Event, now: datetime | None = None) -> CallView:
    return view(call(*events, now=now), AMS, mentions=MENTIONS)


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def field(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


# --- the live root, one state at a time ----------------------------------------------------

ROOTS = [
    pytest.param(
        ringing_call(),
        None,
        SlackMessage(
            text=f"🔔 Ringing: {FROM} · Ringing Johan | Voys, Sanne de Vries",
            blocks=(
                section(f"🔔 *Ringing* · {TITLE}"),
                section("Ringing <@UJOHAN>, Sanne de Vries"),
                context("Inbound · 10:41"),
            ),
        ),
        id="ringing",
    ),
    pytest.param(
        answered_call(),
        None,
        SlackMessage(
            text=f"🟢 Answered: {FROM} · Answered by Johan | Voys",
            blocks=(
                section(f"🟢 *Answered* · {TITLE}"),
                section("Answered by <@UJOHAN>"),
                context("Inbound · 10:41 · rang 9s"),
            ),
        ),
        id="answered",
    ),
    pytest.param(
        warm_transfer_call(),
        None,
        SlackMessage(
            text=(
                f"🔀 Transferred: {FROM} · Answered by Johan | Voys, now talking to Sanne de Vries"
            ),
            blocks=(
                section(f"🔀 *Transferred* · {TITLE}"),
                section(
                    "Answered by <@UJOHAN>, now talking to Sanne de Vries\n"
                    "↪ <@UJOHAN> → Sanne de Vries (warm/attended)"
                ),
                context("Inbound · 10:41 · rang 9s"),
            ),
        ),
        id="transferred",
    ),
    pytest.param(
        [*answered_call(), ev("ended", 185, reason="completed")],
        None,
        SlackMessage(
            text=f"✅ Ended: {FROM} · Answered by Johan | Voys",
            blocks=(
                section(f"✅ *Ended* · {TITLE}"),
                section("Answered by <@UJOHAN>"),
                context("Inbound · 10:41 · rang 9s · talked 2m56s"),
            ),
        ),
        id="ended-answered",
    ),
    pytest.param(
        [*ringing_call(), ev("ended", 30, reason="no-answer")],
        None,
        SlackMessage(
            text=f"📵 Missed: {FROM} · Rang Johan | Voys, Sanne de Vries",
            blocks=(
                section(f"📵 *Missed* · {TITLE}"),
                section("Rang <@UJOHAN>, Sanne de Vries"),
                context("Inbound · 10:41 · rang 30s · not answered"),
            ),
        ),
        id="missed",
    ),
    pytest.param(
        ringing_call(),
        LATER,
        SlackMessage(
            text=f"❔ Closed (no end received): {FROM} · Rang Johan | Voys, Sanne de Vries",
            blocks=(
                section(f"❔ *Closed (no end received)* · {TITLE}"),
                section("Rang <@UJOHAN>, Sanne de Vries"),
                context("Inbound · 10:41 · no end received"),
            ),
        ),
        id="stale",
    ),
]


@pytest.mark.parametrize(("events", "now", "expected"), ROOTS)
def test_root(events: list[Event], now: datetime | None, expected: SlackMessage) -> None:
    assert slack.root(cv(*events, now=now)) == expected


def test_root_of_an_internal_call_mentions_the_calling_colleague() -> None:
    msg = slack.root(
        cv(
            ev(
                "ringing",
                0,
                direction="outbound",
                caller=internal(JOHAN),
                number="205",
                targets=[LUCAS],
            )
        )
    )
    assert msg.blocks[0] == section("🔔 *Ringing* · <@UJOHAN> → 205")
    assert msg.blocks[2] == context("Outbound · 10:41")
    # The fallback text notifies nobody: names, never mentions.
    assert msg.text == "🔔 Ringing: Johan | Voys (201) → 205 · Ringing Lucas Jansen"


# --- thread replies, one per step ----------------------------------------------------------


def reply_of(events: list[Event], index: int, now: datetime | None = None) -> SlackMessage:
    return slack.reply(cv(*events, now=now).steps[index])


def forwarding() -> list[Event]:
    return [
        ev("created", 0),
        ev("ringing", 0, targets=[JOHAN]),
        ev("ringing", 20, targets=[JOHAN, SANNE]),
    ]


def cold() -> list[Event]:
    return [
        *answered_call(),
        ev(
            "cold-transfer",
            35,
            number=PIETER["number"],
            targets=[PIETER],
            merged_id="c9",
            redirector=internal(JOHAN),
        ),
    ]


REPLIES = [
    (ringing_call(), 0, None, "10:41:07", "Call came in on +31 50 800 9000", None),
    (
        ringing_call(),
        1,
        None,
        "10:41:07",
        "Ringing Johan | Voys, Sanne de Vries",
        "Ringing <@UJOHAN>, Sanne de Vries",
    ),
    (forwarding(), 2, None, "10:41:27", "Also ringing Sanne de Vries", None),
    (answered_call(), 2, None, "10:41:16", "Answered by Johan | Voys", "Answered by <@UJOHAN>"),
    (
        [*ringing_call(), ev("in-progress", 11, target=LUCAS)],
        2,
        None,
        "10:41:18",
        "Picked up by Lucas Jansen",
        None,
    ),
    (warm_transfer_call(), 3, None, "10:41:47", "Consultation: ringing Sanne de Vries", None),
    (warm_transfer_call(), 4, None, "10:41:59", "Consultation: Sanne de Vries answered", None),
    (
        warm_transfer_call(),
        5,
        None,
        "10:41:59",
        "Johan | Voys transferred the call to Sanne de Vries (warm/attended)",
        "<@UJOHAN> transferred the call to Sanne de Vries (warm/attended)",
    ),
    (
        cold(),
        3,
        None,
        "10:41:42",
        "Johan | Voys transferred the call to Pieter Bakker (cold/blind)",
        "<@UJOHAN> transferred the call to Pieter Bakker (cold/blind)",
    ),
    (
        [*answered_call(), ev("ended", 185, reason="completed")],
        3,
        None,
        "10:44:12",
        "Call ended, talked 2m56s",
        None,
    ),
    (
        [*ringing_call(), ev("ended", 12, reason="cancelled")],
        2,
        None,
        "10:41:19",
        "Missed: caller hung up, rang 12s",
        None,
    ),
    ([ev("ended", 0, reason="busy")], 0, None, "10:41:07", "Missed: line busy", None),
    (ringing_call(), 2, LATER, "10:41:07", "Closed: no end received", None),
]


@pytest.mark.parametrize(
    ("events", "index", "now", "at", "plain_text", "markup"),
    REPLIES,
    ids=[
        "created",
        "ringing",
        "also-ringing",
        "answered",
        "picked-up",
        "consult-ringing",
        "consult-answered",
        "warm-transfer",
        "cold-transfer",
        "ended-answered",
        "ended-missed",
        "ended-busy",
        "stale",
    ],
)
def test_reply(
    events: list[Event],
    index: int,
    now: datetime | None,
    at: str,
    plain_text: str,
    markup: str | None,
) -> None:
    # markup: the mrkdwn when it differs from the plain text (mentions)
    expected = SlackMessage(
        text=f"{at} {plain_text}", blocks=(section(f"`{at}` {markup or plain_text}"),)
    )
    assert reply_of(events, index, now) == expected


# --- the missed-call alert -----------------------------------------------------------------


def test_missed_alert_with_route_mentions_and_live_link() -> None:
    v = cv(*ringing_call(), ev("ended", 30, reason="no-answer"))
    msg = slack.missed_alert(v, mentions=("<!subteam^S0123>", "<!here>"), live_link=LINK)
    assert msg == SlackMessage(
        # the route's mentions lead the text, so the notification reaches them
        text=(
            "<!subteam^S0123> <!here> 📵 Missed call from M. de Jong (+31 50 123 4567) "
            "on +31 50 800 9000 at 10:41, rang 30s"
        ),
        blocks=(
            {"type": "header", "text": {"type": "plain_text", "text": "📵 Missed call"}},
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": (
                        "<!subteam^S0123> <!here> Missed call from *M. de Jong* (+31 50 123 4567)"
                    ),
                },
                "fields": [
                    field("*Line*\n+31 50 800 9000"),
                    field("*When*\n10:41"),
                    field("*Rang for*\n30s"),
                    field("*Reason*\nnot answered"),
                ],
            },
            section("Rang <@UJOHAN>, Sanne de Vries"),
            context(f"<{LINK}|Open the live call thread>"),
        ),
    )


def test_missed_alert_for_a_busy_line_without_mentions_or_link() -> None:
    msg = slack.missed_alert(cv(ev("ended", 0, reason="busy")))
    assert msg == SlackMessage(
        text="📵 Missed call from M. de Jong (+31 50 123 4567) on +31 50 800 9000 at 10:41",
        blocks=(
            {"type": "header", "text": {"type": "plain_text", "text": "📵 Missed call"}},
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "Missed call from *M. de Jong* (+31 50 123 4567)",
                },
                "fields": [
                    field("*Line*\n+31 50 800 9000"),
                    field("*When*\n10:41"),
                    field("*Rang for*\nno phone rang"),
                    field("*Reason*\nline busy"),
                ],
            },
            section("Nobody's phone rang"),
        ),
    )


def test_missed_alert_for_a_stale_call_still_looks_like_an_alert() -> None:
    msg = slack.missed_alert(cv(*ringing_call(), now=LATER))
    assert msg.blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "📵 Missed call"},
    }
    assert msg.blocks[1]["fields"][2:] == [
        field("*Rang for*\nunknown"),  # phones rang, but for how long is not known
        field("*Reason*\nno end received"),
    ]
    assert (
        msg.text == "📵 Missed call from M. de Jong (+31 50 123 4567) on +31 50 800 9000 at 10:41"
    )


def test_live_link_with_query_is_escaped() -> None:
    link = "https://example.slack.com/archives/C1/p1?thread_ts=1709631667.000100&cid=C1"
    msg = slack.missed_alert(cv(ev("ended", 0, reason="busy")), live_link=link)
    assert msg.blocks[-1] == context(
        "<https://example.slack.com/archives/C1/p1?thread_ts=1709631667.000100&amp;cid=C1"
        "|Open the live call thread>"
    )


# --- the summary ---------------------------------------------------------------------------


def test_summary_of_a_warm_transfer() -> None:
    v = cv(*warm_transfer_call(), ev("ended", 300, reason="completed"))
    assert slack.summary(v) == SlackMessage(
        text=f"✅ Ended: {FROM} · Answered by Johan | Voys, talked to Sanne de Vries",
        blocks=(
            section(f"✅ *Ended* · {TITLE}"),
            section(
                "Answered by <@UJOHAN>, talked to Sanne de Vries\n"
                "↪ <@UJOHAN> → Sanne de Vries (warm/attended)"
            ),
            section(
                "`10:41:07` Call came in on +31 50 800 9000\n"
                "`10:41:07` Ringing <@UJOHAN>\n"
                "`10:41:16` Answered by <@UJOHAN>\n"
                "`10:41:47` Consultation: ringing Sanne de Vries\n"
                "`10:41:59` Consultation: Sanne de Vries answered\n"
                "`10:41:59` <@UJOHAN> transferred the call to Sanne de Vries (warm/attended)\n"
                "`10:46:07` Call ended, talked 4m51s"
            ),
            context("Inbound · 10:41 · rang 9s · talked 4m51s"),
        ),
    )


def test_summary_leads_with_the_route_mentions() -> None:
    v = cv(*warm_transfer_call(), ev("ended", 300, reason="completed"))
    message = slack.summary(v, mentions=("<!subteam^S0123ABCD>",))
    assert message.text.startswith("<!subteam^S0123ABCD> ✅ Ended: ")
    assert message.blocks[0] == section(f"<!subteam^S0123ABCD> ✅ *Ended* · {TITLE}")
    assert message.blocks[1:] == slack.summary(v).blocks[1:]


# --- injection -----------------------------------------------------------------------------

EVIL = "<!channel> & <https://evil|x>"
EVIL_ESCAPED = "&lt;!channel&gt; &amp; &lt;https://evil|x&gt;"


def evil_call() -> CallView:
    caller = {**CUSTOMER, "name": EVIL}
    johan = {**JOHAN, "name": EVIL, "user_emails": []}  # no mention: the name is shown
    return view(
        fold(
            [
                ev("created", 0, caller=caller, number="<!everyone>"),
                ev("ringing", 0, caller=caller, number="<!everyone>", targets=[johan]),
                ev("ended", 30, caller=caller, number="<!everyone>", reason="<@U666>"),
            ]
        ),
        AMS,
    )


def every_message(v: CallView) -> Iterator[SlackMessage]:
    yield slack.root(v)
    yield slack.summary(v)
    yield slack.missed_alert(v, mentions=("<!here>",), live_link=LINK)
    for step in v.steps:
        yield slack.reply(step)


def test_user_controlled_text_cannot_inject_mentions_or_links() -> None:
    v = evil_call()
    root = slack.root(v)
    assert root.blocks[0] == section(
        f"📵 *Missed* · *{EVIL_ESCAPED}* (+31 50 123 4567) → &lt;!everyone&gt;"
    )
    assert root.blocks[1] == section(f"Rang {EVIL_ESCAPED}")
    assert root.blocks[2] == context("Inbound · 10:41 · rang 30s · &lt;@U666&gt;")
    assert root.text.startswith(f"📵 Missed: {EVIL_ESCAPED} (+31 50 123 4567)")
    for msg in every_message(v):
        dumped = json.dumps([msg.text, msg.blocks], ensure_ascii=False)
        for raw in ("<!channel>", "<https://evil", "<!everyone>", "<@U666>"):
            assert raw not in dumped
        _assert_only_our_markup(msg, allowed={"<!here>", f"<{LINK}|Open the live call thread>"})


# --- limits and properties over realistic calls --------------------------------------------

MARKUP = re.compile(r"<[^<>]*>")
ENTITY = re.compile(r"&(?!amp;|lt;|gt;)")


def _texts(msg: SlackMessage) -> Iterator[tuple[str, str]]:
    """(kind, text) of every text object in the message."""
    yield "fallback", msg.text
    for block in msg.blocks:
        if block["type"] == "header":
            yield "header", block["text"]["text"]
        elif block["type"] == "section":
            yield "section", block["text"]["text"]
            for f in block.get("fields", []):
                yield "field", f["text"]
        elif block["type"] == "context":
            for element in block["elements"]:
                yield "context", element["text"]
        else:  # pragma: no cover - a new block type needs its limits checked here
            raise AssertionError(f"unexpected block type {block['type']!r}")


LIMITS = {"fallback": 40000, "header": 150, "section": 3000, "field": 2000, "context": 3000}


def _assert_within_limits(msg: SlackMessage) -> None:
    assert msg.text.strip()
    assert 1 <= len(msg.blocks) <= 50
    total = 0
    for kind, text in _texts(msg):
        assert text.strip(), kind
        assert len(text) <= LIMITS[kind], (kind, len(text))
        total += len(text)
    assert total <= 40000
    fields = [b.get("fields", []) for b in msg.blocks]
    assert all(len(f) <= 10 for f in fields)


def _assert_only_our_markup(msg: SlackMessage, allowed: set[str]) -> None:
    """Every <...> is a mention or link we produced, and every & starts an entity."""
    for kind, text in _texts(msg):
        if kind == "header":
            continue  # plain_text: Slack shows it literally
        for markup in MARKUP.findall(text):
            assert markup in allowed, (kind, markup)
        rest = MARKUP.sub("", text)
        assert "<" not in rest, (kind, text)
        assert ">" not in rest, (kind, text)
        assert not ENTITY.search(rest), (kind, text)


def _scenario_views() -> Iterator[tuple[str, CallView]]:
    """Every state every scenario passes through (each prefix of its events), with and
    without mentions, and closed as stale."""
    mentions = {"johan@example.com": "<@UJOHAN>", "sanne@example.com": "<@USANNE>"}
    for name, scenario in SCENARIOS.items():
        docs = scenario.build(ScenarioContext(seed=7))
        events = [decode(json.dumps(d).encode()) for d in docs]
        for n in range(1, len(events) + 1):
            folded: Call = fold(events[:n])
            yield f"{name}[{n}]", view(folded, AMS)
            yield f"{name}[{n}]+mentions", view(folded, AMS, mentions=mentions)
        stale = fold(events[:-1] or events, now=datetime.now(AMS) + timedelta(days=1))
        yield f"{name}-stale", view(stale, AMS, mentions=mentions)


ALLOWED = {
    "<@UJOHAN>",
    "<@USANNE>",
    "<!subteam^S0123>",
    "<!here>",
    f"<{LINK}|Open the live call thread>",
}


def test_every_scenario_state_renders_within_limits_with_only_our_markup() -> None:
    seen = 0
    for name, v in _scenario_views():
        messages = [
            slack.root(v),
            slack.summary(v),
            slack.missed_alert(v, mentions=("<!subteam^S0123>", "<!here>"), live_link=LINK),
            *(slack.reply(s) for s in v.steps),
        ]
        for msg in messages:
            try:
                _assert_within_limits(msg)
                _assert_only_our_markup(msg, ALLOWED)
            except AssertionError as err:
                raise AssertionError(f"{name}: {err}") from err
            seen += 1
    assert seen > 300  # every scenario contributed


def big_group(size: int, *, mentioned: bool) -> tuple[CallView, dict[str, str]]:
    people = [
        {
            "number": f"+3150800{i:04d}",
            "name": f"Colleague {i:03d}",
            "account_number": 1000 + i,
            "user_numbers": [str(1000 + i)],
            "user_emails": [f"c{i}@example.com"],
        }
        for i in range(size)
    ]
    mentions = {f"c{i}@example.com": f"<@U{i:05d}>" for i in range(size)} if mentioned else {}
    events = [
        ev("created", 0),
        ev("ringing", 0, targets=people),
        ev("ended", 45, reason="no-answer"),
    ]
    return view(fold(events), AMS, mentions=mentions), mentions


@pytest.mark.parametrize("mentioned", [True, False], ids=["mentions", "names"])
def test_a_call_group_of_300_is_cut_with_a_count_not_an_error(mentioned: bool) -> None:
    v, mentions = big_group(300, mentioned=mentioned)
    allowed = set(mentions.values()) | {"<!here>", f"<{LINK}|Open the live call thread>"}
    for msg in every_message(v):
        _assert_within_limits(msg)
        _assert_only_our_markup(msg, allowed)
    who = slack.root(v).blocks[1]["text"]["text"]
    match = re.fullmatch(r"Rang (?P<shown>.*)… and (?P<more>\d+) more", who, flags=re.DOTALL)
    assert match, who[-80:]
    shown = [p for p in match["shown"].split(", ") if p]
    # People are shown whole (never "Colleague 1…") and the rest are counted.
    expected = [
        mentions[f"c{i}@example.com"] if mentioned else f"Colleague {i:03d}" for i in range(300)
    ]
    assert shown == expected[: len(shown)]
    assert len(shown) + int(match["more"]) == 300
    assert len(shown) > 150  # the room is used, not thrown away


def test_a_name_longer_than_a_section_is_cut_with_an_ellipsis() -> None:
    caller = {**CUSTOMER, "name": "Bakkerij & Zn " * 400}  # 5600 characters
    msg = slack.root(view(fold([ev("created", 0, caller=caller)]), AMS))
    _assert_within_limits(msg)
    _assert_only_our_markup(msg, set())
    title = msg.blocks[0]["text"]["text"]
    assert title.startswith("📞 *New call* · *Bakkerij &amp; Zn Bakkerij &amp; Zn")
    assert title.endswith("…")
    # cut at the limit, or up to four characters earlier so as not to split an "&amp;"
    assert 2995 <= len(title) <= 3000


def test_summary_of_a_very_long_story_counts_the_steps_left_out() -> None:
    events = [ev("created", 0)]
    events += [
        ev(
            "ringing",
            i,
            targets=[{**PIETER, "account_number": 3000 + i, "name": f"Agent {i} " + "x" * 60}],
        )
        for i in range(1, 80)
    ]
    v = view(fold(events), AMS)
    msg = slack.summary(v)
    _assert_within_limits(msg)
    timeline = msg.blocks[2]["text"]["text"]
    match = re.search(r"\n… and (\d+) more steps$", timeline)
    assert match
    assert timeline.count("\n`") + 1 + int(match[1]) == 80  # 1 created + 79 ringing steps


text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)  # JSON-encodable
names = st.one_of(st.none(), text, st.sampled_from([EVIL, "<@U1>", "&amp;", "a > b < c"]))


@settings(max_examples=150, deadline=None)
@given(caller=names, target=names, redirector=names, number=text)
def test_any_names_render_within_limits_and_escaped(
    caller: str | None, target: str | None, redirector: str | None, number: str
) -> None:
    who = {**CUSTOMER, "name": caller, "number": number}
    to = {**SANNE, "name": target}
    by = {**internal(JOHAN), "name": redirector}
    events = [
        ev("ringing", 0, caller=who, targets=[to]),
        ev("in-progress", 5, caller=who, target=to),
        ev("cold-transfer", 9, caller=who, targets=[to], merged_id="c7", redirector=by),
        ev("ended", 20, caller=who, reason="completed"),
    ]
    v = view(fold(events), AMS, mentions={"sanne@example.com": "<@USANNE>"})
    for msg in every_message(v):
        _assert_within_limits(msg)
        _assert_only_our_markup(msg, ALLOWED)
