"""The card a Teams button press is answered with (bridge/ingest/teams_card.py): which alert
was pressed, its case folded again with the press, the presser's note; and the card the Teams
platform, dry run included, renders for it (bridge/service/chat.py)."""

from __future__ import annotations

import aiohttp

from bridge.core import plan
from bridge.core.cases import CaseRef
from bridge.core.plan import RootContent
from bridge.ingest.teams_card import Pressed, refreshed, shown_on, with_note
from bridge.metrics import Metrics
from bridge.notify import MessageRef, encode_ref
from bridge.service.chat import chat_platforms, teams_card
from bridge.service.settings import load
from bridge.store import ShownAlert
from tests.render import cases as K
from tests.support.fake_teams import card_texts

SALES, SUPPORT = "19:sales@thread.tacv2", "19:support@thread.tacv2"
REF = CaseRef(K.KEY.scope, K.KEY.number, "c1")


def shown(destination: str, channel: str, message_id: str | None) -> ShownAlert:
    posted = None if message_id is None else MessageRef("teams", channel, message_id)
    content = plan.encode(K.alert(K.open_case()))
    return ShownAlert(destination, channel, content, posted and encode_ref(posted), None)


SALES_ALERT = shown("sales", SALES, "1700000000001")
SUPPORT_ALERT = shown("support", f"https://smba.example/emea/ {SUPPORT}", "1700000000002")


def test_the_pressed_alert_is_the_message_holding_the_card() -> None:
    alerts = [SALES_ALERT, SUPPORT_ALERT]
    pressed = Pressed(f"{SALES};messageid=1700000000001", "1700000000002")
    assert shown_on(alerts, pressed) is SUPPORT_ALERT  # the message id decides


def test_without_a_known_message_the_conversation_tells_the_alert() -> None:
    alerts = [SALES_ALERT, SUPPORT_ALERT]
    # A channel's conversation id carries the thread (";messageid=…"); a destination's
    # channel may be prefixed with its service URL.
    assert shown_on(alerts, Pressed(f"{SUPPORT};messageid=9", None)) is SUPPORT_ALERT
    assert shown_on(alerts, Pressed(SALES, "unknown")) is SALES_ALERT
    assert shown_on(alerts, Pressed("19:other@thread.tacv2", None)) is None  # cannot tell
    assert shown_on([SALES_ALERT], Pressed("19:other@thread.tacv2", None)) is SALES_ALERT
    assert shown_on([], Pressed(SALES, "1700000000001")) is None
    not_posted = shown("sales", SALES, None)
    assert shown_on([not_posted], Pressed(SALES, "1700000000001")) is not_posted


def test_the_alert_shows_its_case_folded_again_with_the_press() -> None:
    facts = [K.miss("c1", 0), K.click(3, "claim")]
    content = refreshed(SALES_ALERT.content, REF, facts, K.at(4))
    assert content is not None
    assert content.case is not None
    assert content.case.claim is not None
    assert (content.case.claim.user, content.case.claim.at) == ("Alice", K.at(3))
    assert content.call == K.first_call()  # the rest is the alert as stored
    assert content.mentions == ()


def test_the_refreshed_card_mentions_only_whom_teams_can_as_delivery_does() -> None:
    # The case escalates (30 min) to a Slack group: not a mention Teams can show.
    content = refreshed(SALES_ALERT.content, REF, [K.miss("c1", 0)], K.at(40))
    assert content is not None
    assert content.case is not None
    assert content.case.escalated_at == K.at(30)
    assert content.case.first.escalate_to == ()
    assert [(s.kind, s.mentions) for s in content.case.steps] == [("escalated", ())]


def test_no_card_for_what_is_not_an_alert_of_that_case() -> None:
    facts = [K.miss("c1", 0), K.click(3, "claim")]
    assert refreshed(None, REF, facts, K.at(4)) is None  # to be retracted
    other = CaseRef(K.KEY.scope, K.KEY.number, "c9")
    assert refreshed(SALES_ALERT.content, other, facts, K.at(4)) is None
    elsewhere = CaseRef("another-scope", K.KEY.number, "c1")  # the case's id, not its number
    assert refreshed(SALES_ALERT.content, elsewhere, facts, K.at(4)) is None
    root = plan.encode(RootContent(call=K.first_call(), tz=K.TZ))
    assert refreshed(root, REF, facts, K.at(4)) is None
    assert refreshed(plan.encode(K.alert(None)), REF, facts, K.at(4)) is None  # no case
    assert refreshed(SALES_ALERT.content, REF, [], K.at(4)) is None  # no longer kept


def test_the_note_closes_the_body_escaped_and_the_card_is_left_alone() -> None:
    card = {"type": "AdaptiveCard", "body": [{"type": "TextBlock", "text": "Missed"}]}
    noted = with_note(card, "Ann *Marie* is already calling back (since 14:05).")
    assert card_texts(noted) == [
        "Missed",
        r"ⓘ Ann \*Marie\* is already calling back (since 14:05).",
    ]
    assert noted["body"][-1]["separator"] is True
    assert card == {"type": "AdaptiveCard", "body": [{"type": "TextBlock", "text": "Missed"}]}


async def test_the_teams_platform_renders_the_card_dry_run_included() -> None:
    content = K.alert(K.claimed())
    async with aiohttp.ClientSession() as session:
        dry = chat_platforms(load({"TEAMS_BUTTONS": "on"}))(session, Metrics())
        card = await teams_card(dry, content, None)
        assert card is not None
        assert card_texts(card)[0] == "📞 Missed call · Alice is calling back"
        assert [a["title"] for a in card["actions"]] == ["Release", "Done"]
        assert await teams_card({}, content, None) is None  # no Teams at all
