"""Teams' case buttons end to end: a missed call's alert card in the fake Bot Connector offers
them, presses arrive at ``POST /teams/messages`` as Teams sends them (an ``invoke`` activity
with a Bot Framework token from the local stand-in's keys), the presser is answered with the
card as the press left it, and everyone's card follows through the normal reconciliation.
Requests Teams did not make change nothing."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import ClientResponse
from structlog.testing import capture_logs

from bridge.core.plan import MissedContent
from bridge.metrics import Metrics
from bridge.service.chat import chat_platforms
from bridge.service.settings import load
from bridge.store import StoreError
from bridge.store.postgres import PostgresStore
from tests.render import cases as K
from tests.store import pg
from tests.support.clicks_env import CALLER, callback_call
from tests.support.fake_botframework import APP, KeyServer, invoke, new_key
from tests.support.fake_teams import card_problem, card_texts
from tests.support.harness import (
    FakeClock,
    make_settings,
    running_bridge,
)
from tests.support.teams_env import (
    CARD,
    CHANNEL,
    MESSAGE,
    PATH,
    RULES,
    TEAMS_KEY,
    teams_bridge,
)
from tests.test_ha import require_postgres

ALICE = ("aad-alice", "Alice")
BOB = ("aad-bob", "Bob")
CLAIM, RELEASE, DONE = "callbridge_case_claim", "callbridge_case_release", "callbridge_case_done"


async def said(response: ClientResponse) -> str:
    """The message an invoke response shows the clicker."""
    assert response.status == 200, await response.text()
    body = await response.json()
    assert (body["statusCode"], body["type"]) == (200, MESSAGE), body
    return str(body["value"])


async def shown(response: ClientResponse) -> dict[str, Any]:
    """The card an invoke response shows the clicker in place of the one pressed."""
    assert response.status == 200, await response.text()
    body = await response.json()
    assert (body["statusCode"], body["type"]) == (200, CARD), body
    assert card_problem(body["value"]) is None  # Teams would show it
    return dict(body["value"])


def verbs(card: dict[str, Any]) -> list[str]:
    """The card's buttons: Action.Execute verbs, a ShowCard's by its title."""
    return [a.get("verb", a["title"]) for a in card.get("actions", [])]


def without_note(card: dict[str, Any]) -> dict[str, Any]:
    """``card`` as everyone sees it: the presser's note (its last TextBlock) taken off."""
    assert card["body"][-1]["text"].startswith("ⓘ ")
    return {**card, "body": card["body"][:-1]}


async def test_claim_refused_claim_and_done_through_the_cards_buttons(tmp_path: Path) -> None:
    async with teams_bridge(tmp_path) as world:
        await world.missed()
        alert = world.alert()
        assert alert.texts()[0] == "📵 Missed call · waiting for a callback"
        actions = (alert.card or {})["actions"]
        assert [(a["type"], a["title"]) for a in actions] == [
            ("Action.Execute", "I'll call back"),
            ("Action.ShowCard", "Done"),
        ]
        assert card_texts(actions[1]["card"]) == [
            "Nobody needs to call +31 50 123 4567 back any more? The case closes in your name."
        ]
        assert set(world.buttons()) == {CLAIM, DONE}

        # Alice sees her claim at once, in the card Teams shows her in place of the alert.
        claimed = await shown(await world.press(CLAIM, ALICE, "f:1"))
        assert card_texts(claimed)[0] == "📞 Missed call · Alice is calling back"
        assert "📞 Alice **is calling back** since 13:01" in card_texts(claimed)
        assert verbs(claimed) == [RELEASE, "Done"]
        assert world.alert().edits == 0  # everyone else's card: not yet
        await world.settle()
        alert = world.alert()
        assert alert.edits == 1
        assert alert.card == claimed  # the card everyone now has is the one Alice was shown
        assert set(world.buttons()) == {RELEASE, DONE}

        # Bob's card still offers the claim (Teams shows the card he loaded): refused, and
        # he is shown the card as it stands, with why at its foot for him alone.
        data = {"case": '["default","+31501234567","miss-1"]'}
        activity = invoke(
            world.teams.url,
            CLAIM,
            data,
            user=BOB,
            activity_id="f:2",
            conversation=alert.conversation,
            reply_to=alert.id,
        )
        refused = await shown(await world.post(activity))
        assert card_texts(refused)[-1] == "ⓘ Alice is already calling back (since 13:01)."
        assert without_note(refused) == alert.card

        world.clock.advance(timedelta(minutes=5))
        closing = await shown(await world.press(DONE, BOB, "f:3"))
        assert card_texts(closing)[0] == "✅ Missed call · done"
        assert card_texts(closing)[-1] == (
            "ⓘ You closed the case Alice had claimed (calling back since 13:01)."
        )
        assert verbs(closing) == []
        await world.settle()
        alert = world.alert()
        assert alert.card == without_note(closing)
        assert any(t.startswith("✅ **Closed** by Bob at 13:0") for t in alert.texts())
        assert world.buttons() == {}
        assert [(c.action, c.user_id, c.user) for c in await world.clicks()] == [
            ("claim", "aad-alice", "Alice"),
            ("claim", "aad-bob", "Bob"),
            ("done", "aad-bob", "Bob"),
        ]
        assert world.framework.fetches() == (1, 1)  # the keys were fetched once


async def test_the_signing_keys_are_fetched_at_start(tmp_path: Path) -> None:
    """The first press does not wait for them, and a blocked way to Bot Framework shows in
    the log at start (teams.keys_unavailable), not at someone's first click."""
    async with teams_bridge(tmp_path) as world:
        assert world.bridge.teams_keys is not None
        assert await world.bridge.teams_keys is True
        assert world.framework.fetches() == (1, 1)
    with capture_logs() as logs:
        async with teams_bridge(tmp_path, teams_openid_metadata="http://127.0.0.1:9/v1/x") as down:
            assert down.bridge.teams_keys is not None
            assert await down.bridge.teams_keys is False
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["teams.keys_unavailable"]


async def test_the_same_activity_twice_is_one_click(tmp_path: Path) -> None:
    async with teams_bridge(tmp_path) as world:
        await world.missed()
        first = await shown(await world.press(CLAIM, ALICE, "f:1"))
        # Teams sends it again when the answer was lost: the same card, nothing more.
        again = await shown(await world.press(CLAIM, ALICE, "f:1"))
        assert again == first
        assert card_texts(first)[0] == "📞 Missed call · Alice is calling back"
        assert len(await world.clicks()) == 1


async def test_a_callback_closes_the_case_and_takes_the_buttons_away(tmp_path: Path) -> None:
    async with teams_bridge(tmp_path) as world:
        await world.missed()
        await world.send(callback_call("back-1", world.clock.now, "0501234567", "Sanne"))
        await world.settle()
        assert world.alert().texts()[0] == "✅ Missed call · called back"
        assert any(t.startswith("✅ **Called back** by Sanne") for t in world.alert().texts())
        assert world.buttons() == {}
        # A press on a card loaded before (Teams does not refresh it at once) is answered
        # with the card as it is, and why nothing changed.
        data = {"case": f'["default","{CALLER}","miss-1"]'}
        late = await world.post(invoke(world.teams.url, CLAIM, data, activity_id="f:9"))
        card = await shown(late)
        assert card_texts(card)[-1].startswith("ⓘ This case is closed: called back by Sanne at ")
        assert without_note(card) == world.alert().card


async def test_the_answer_links_to_the_live_call_as_the_alert_does(tmp_path: Path) -> None:
    """With a live message in the same channel, the alert links to its thread: the card the
    presser is shown keeps that button (it is rendered as delivery renders it)."""
    rules = RULES.replace("    missed: sales", "    live: sales\n    missed: sales")
    async with teams_bridge(tmp_path, rules=rules) as world:
        await world.missed()
        links = [a for a in (world.alert().card or {})["actions"] if a["type"] == "Action.OpenUrl"]
        assert [a["title"] for a in links] == ["Open the live call thread"]
        assert links[0]["url"].startswith("https://teams.microsoft.com/l/message/")
        claimed = await shown(await world.press(CLAIM, ALICE, "f:1"))
        assert [a for a in claimed["actions"] if a["type"] == "Action.OpenUrl"] == links
        await world.settle()
        assert world.alert().card == claimed


async def test_odd_card_coordinates_cost_the_card_not_the_press(tmp_path: Path) -> None:
    """Teams names the pressed card's conversation and message; values of another shape do
    not refuse the press: the only alert of the case is the one pressed."""
    async with teams_bridge(tmp_path) as world:
        await world.missed()
        data = world.buttons()[CLAIM]["data"]
        odd = {**invoke(world.teams.url, CLAIM, data), "conversation": "19:x", "replyToId": 7}
        claimed = await shown(await world.post(odd))
        assert card_texts(claimed)[0] == "📞 Missed call · Alice is calling back"
        assert len(await world.clicks()) == 1


async def test_without_the_alert_the_answer_is_words(tmp_path: Path) -> None:
    """When the card cannot be had the press is still stored and answered in words: a case
    no longer kept, a store that cannot be read after the click was stored, a failure
    drawing the card."""
    async with teams_bridge(tmp_path) as world:
        await world.missed()
        gone = {"case": f'["default","{CALLER}","miss-9"]'}
        response = await world.post(invoke(world.teams.url, CLAIM, gone, activity_id="f:1"))
        assert (await said(response)).startswith("This callback case is no longer kept")

        store = world.bridge.store

        async def unreadable(story_id: str, platform: str) -> list[Any]:
            raise StoreError("database is locked")

        store.shown_alerts = unreadable  # type: ignore[method-assign]
        with capture_logs() as logs:
            response = await world.press(CLAIM, ALICE, "f:2")
        assert await said(response) == (
            "Noted: you are calling this customer back. The card shows it in a moment."
        )
        assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["teams.card_skipped"]
        del store.shown_alerts  # the class's own again

        actions = world.bridge.teams_actions
        assert actions is not None

        async def broken(content: Any, root: str | None) -> None:
            raise KeyError("a bug")

        actions.render = broken
        release = invoke(
            world.teams.url, RELEASE, world.buttons()[CLAIM]["data"], user=BOB, activity_id="f:3"
        )
        with capture_logs() as logs:
            response = await world.post(release)
        assert await said(response) == (
            "You released Alice's claim (Alice was calling back since 13:01): nobody is "
            "calling back now."
        )
        assert [e["event"] for e in logs if e["log_level"] == "error"] == ["teams.card_failed"]
        assert sorted((c.case_id, c.action, c.user) for c in await world.clicks()) == [
            ("miss-1", "claim", "Alice"),
            ("miss-1", "release", "Bob"),
            ("miss-9", "claim", "Alice"),  # stored, and folded to nothing
        ]


REFUSED = [
    pytest.param({}, "no Authorization", id="no-token"),
    pytest.param({"key": new_key()}, "the kid of Teams' key, signed by another", id="forged"),
    pytest.param({"aud": "another-bot"}, "for another bot", id="audience"),
    pytest.param({"iss": "https://evil.example"}, "another issuer", id="issuer"),
    pytest.param({"exp": 1_700_000_000}, "expired (2023)", id="expired"),
    pytest.param({"serviceurl": "https://evil.example/"}, "another service", id="service-url"),
]


@pytest.mark.parametrize(("claims", "why"), REFUSED)
async def test_requests_teams_did_not_sign_are_refused_and_change_nothing(
    tmp_path: Path, claims: dict[str, Any], why: str
) -> None:
    async with teams_bridge(tmp_path) as world:
        await world.missed()
        data = world.buttons()[CLAIM]["data"]
        activity = invoke(world.teams.url, CLAIM, data)
        if not claims:
            response = await world.client.post(PATH, json=activity)
        else:
            response = await world.post(activity, **claims)
        assert response.status == 401, why
        assert "error" in await response.json()
        await world.settle()
        assert await world.clicks() == []
        assert world.alert().edits == 0
        assert world.bridge.metrics.teams_clicks.labels("unknown", "refused")._value.get() == 1


async def test_other_activities_and_other_buttons(tmp_path: Path) -> None:
    async with teams_bridge(tmp_path) as world:
        await world.missed()
        added = {
            "type": "conversationUpdate",
            "channelId": "msteams",
            "serviceUrl": world.teams.url,
            "id": "f:10",
        }
        response = await world.post(added)
        assert (response.status, await response.read()) == (200, b"")

        data = world.buttons()[CLAIM]["data"]
        unknown = await world.post(invoke(world.teams.url, "callbridge_case_delete", data))
        assert unknown.status == 200
        body = await unknown.json()
        assert (body["statusCode"], body["type"]) == (400, "application/vnd.microsoft.error")
        assert "is not a case button" in body["value"]["message"]

        no_case = await world.post(invoke(world.teams.url, CLAIM, {"case": "[1,2]"}))
        assert (await no_case.json())["value"]["message"] == (
            "the button's data is not a case reference"
        )
        garbage = await world.client.post(
            PATH, data=b"{", headers={"Content-Type": "application/json"}
        )
        assert garbage.status == 400
        assert await world.clicks() == []


async def test_without_reachable_keys_teams_is_asked_to_retry(tmp_path: Path) -> None:
    async with teams_bridge(tmp_path, teams_openid_metadata="http://127.0.0.1:9/v1/x") as world:
        await world.missed()
        data = world.buttons()[CLAIM]["data"]
        response = await world.post(invoke(world.teams.url, CLAIM, data))
        assert response.status == 503
        assert response.headers["Retry-After"] == "5"
        assert await world.clicks() == []


@pytest.mark.parametrize("setting", ["on", "off"])
async def test_teams_buttons_decides_whether_the_real_teams_cards_offer_buttons(
    setting: str,
) -> None:
    settings = load(
        {
            "TEAMS_APP_ID": APP,
            "TEAMS_APP_PASSWORD": "teams-secret-value",
            "TEAMS_TENANT_ID": "11111111-2222-3333-4444-555555555555",
            "TEAMS_BUTTONS": setting,
        }
    )
    async with aiohttp.ClientSession() as session:
        platform = chat_platforms(settings, timeout=5)(session, Metrics())["teams"]
    content = MissedContent(call=K.first_call(), tz=K.TZ, case=K.open_case())
    card = platform.render(content, {}, None).card or {}
    kinds = [a["type"] for a in card.get("actions", [])]
    assert kinds == (["Action.Execute", "Action.ShowCard"] if setting == "on" else [])


@pytest.mark.parametrize("demo", [True, False])
async def test_the_dry_run_preview_draws_the_buttons_the_platforms_would_show(demo: bool) -> None:
    """The README demo (nothing real, the demo signing secret, TEAMS_BUTTONS=on) previews both
    platforms' buttons; without those settings, neither has any."""
    env = {"SLACK_SIGNING_SECRET": "demo-only", "TEAMS_BUTTONS": "on"} if demo else {}
    async with aiohttp.ClientSession() as session:
        platforms = chat_platforms(load(env))(session, Metrics())
    content = MissedContent(call=K.first_call(), tz=K.TZ, case=K.open_case())
    slack = platforms["slack"].render(content, {}, None).rich()
    teams = platforms["teams"].render(content, {}, None).rich()
    slack_buttons = [e["text"]["text"] for b in slack.blocks if b["type"] == "actions"
                     for e in b["elements"]]  # fmt: skip
    teams_buttons = [a["title"] for a in (teams.card or {}).get("actions", [])]
    if demo:
        assert (slack_buttons, teams_buttons) == (["I'll call back", "Done"],) * 2
    else:
        assert (slack_buttons, teams_buttons) == ([], [])


async def test_a_bridge_without_teams_has_no_bot_endpoint(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    async with running_bridge(settings) as (_bridge, client, _chat):
        response = await client.post(PATH, json={"type": "invoke"})
        assert response.status == 404
        assert "TEAMS_APP_ID" in (await response.json())["error"]


async def test_a_press_on_the_standby_is_folded_by_the_leader(tmp_path: Path) -> None:
    """Two instances on one PostgreSQL database (docs/ha.md: any instance takes any click):
    Teams' press reaches the standby, which stores it and answers; the leader's card shows it."""
    await require_postgres()
    clock = FakeClock()
    async with pg.fresh_database() as dsn, KeyServer([TEAMS_KEY]) as framework:

        def instance(name: str):  # type: ignore[no-untyped-def]
            folder = tmp_path / name
            folder.mkdir()
            return teams_bridge(
                folder, clock=clock, framework=framework, backend=PostgresStore(dsn), store=dsn
            )

        async with instance("a") as leader, instance("b") as standby:
            assert (leader.bridge.leading, standby.bridge.leading) == (True, False)
            await leader.missed()
            data, alert = leader.buttons()[CLAIM]["data"], leader.alert()
            claim = invoke(
                leader.teams.url, CLAIM, data, user=ALICE, activity_id="f:1", reply_to=alert.id
            )
            # The standby answers with the card from the shared store, as the leader will post.
            claimed = await shown(await standby.post(claim))
            assert card_texts(claimed)[0] == "📞 Missed call · Alice is calling back"
            assert await leader.bridge.store.dirty_stories() == ["miss-1"]
            await leader.bridge.dispatcher.resume()  # as its poller does every second
            await leader.settle()
            assert leader.alert().card == claimed
            assert standby.teams.threads(CHANNEL) == []  # a standby never posts
