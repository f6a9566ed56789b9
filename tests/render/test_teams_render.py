"""Adaptive Cards for Teams: content, escaping, mentions, size and version (pure)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from bridge.core.calls import fold
from bridge.core.events import decode
from bridge.core.plan import MissedContent, RootContent
from bridge.render.adaptivecard import MAX_CARD_BYTES, card_bytes, escape
from bridge.render.teams import render
from bridge.simulate import SCENARIOS, ScenarioContext
from tests.support.fake_teams import card_texts

TZ = "Europe/Amsterdam"
LINK = re.compile(r"(?<!\\)\[[^\]]*(?<!\\)\]\(")


def call_of(scenario: str, seed: int = 7, **caller: object):
    docs = SCENARIOS[scenario].build(
        ScenarioContext(datetime(2026, 3, 5, 9, 41, tzinfo=UTC), seed=seed)
    )
    for doc in docs:
        doc["caller"] = {**doc["caller"], **caller}
    return fold([decode(json.dumps(d).encode()) for d in docs])


def test_root_card_is_adaptive_card_1_5_with_a_plain_summary():
    message = render(RootContent(call=call_of("answered", name="M. de Jong"), tz=TZ), {}, None)
    card = message.card
    assert card is not None
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.5")
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert card_texts(card)[0].startswith("✅ Ended · M. de Jong (")
    assert message.text.startswith("✅ Ended: M. de Jong (")
    assert "<at>" not in message.text


def test_user_text_cannot_inject_links_or_formatting_or_mentions():
    evil = "[click me](https://evil.example) **bold** _it_ <at>Boss</at>"
    message = render(RootContent(call=call_of("answered", name=evil), tz=TZ), {}, None)
    texts = card_texts(message.card)
    assert not any(LINK.search(t) for t in texts)
    assert r"\[click me\](https://evil.example) \*\*bold\*\* \_it\_ \<at\>Boss\</at\>" in texts[0]
    assert "msteams" not in message.card or "entities" not in message.card["msteams"]


def test_escape_leaves_ordinary_names_alone():
    assert escape("Johan | Voys") == "Johan | Voys"
    assert escape("Bakkerij (de Zon) #1") == "Bakkerij (de Zon) #1"
    assert escape("a_b*c") == r"a\_b\*c"


def test_people_with_a_known_upn_are_mentioned_with_matching_entities():
    call = call_of("answered")
    message = render(
        RootContent(call=call, tz=TZ), {"johan@example.com": "johan@corp.example"}, None
    )
    entities = message.card["msteams"]["entities"]
    assert entities == [
        {
            "type": "mention",
            "text": "<at>Johan | Voys</at>",
            "mentioned": {"id": "johan@corp.example", "name": "Johan | Voys"},
        }
    ]
    assert any("Answered by <at>Johan | Voys</at>" in t for t in card_texts(message.card))


def test_missed_alert_with_route_mentions_and_live_link():
    call = call_of("no-answer")
    content = MissedContent(call=call, tz=TZ, mentions=("<at>support@corp.example</at>", "Sales"))
    message = render(content, {}, "https://teams.microsoft.com/l/message/x/1")
    texts = card_texts(message.card)
    assert texts[0] == "📵 Missed call"
    assert texts[1].startswith("<at>support</at> @Sales Missed call from ")
    assert message.card["msteams"]["entities"][0]["mentioned"]["id"] == "support@corp.example"
    assert "Line: +31 50 800 9000" in texts
    assert message.card["actions"] == [
        {
            "type": "Action.OpenUrl",
            "title": "Open the live call thread",
            "url": "https://teams.microsoft.com/l/message/x/1",
        }
    ]


def test_huge_names_and_groups_stay_well_under_the_size_limit():
    call = call_of("call-group", name="名" * 20_000)
    for content in (RootContent(call=call, tz=TZ), MissedContent(call=call, tz=TZ)):
        message = render(content, {}, None)
        assert card_bytes(message.card) <= MAX_CARD_BYTES
        assert len(json.dumps(message.card).encode()) < 28 * 1024
        assert len(message.text) <= 500


def test_every_scenario_renders_valid_small_cards():
    for name in SCENARIOS:
        call = call_of(name)
        message = render(RootContent(call=call, tz=TZ), {}, None)
        assert message.card["version"] == "1.5"
        assert card_bytes(message.card) < 8_000, name
        assert message.text.strip(), name
