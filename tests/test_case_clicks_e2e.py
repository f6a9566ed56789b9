"""Button clicks end to end: through the fake Slack Web API (the real slack-sdk client), and
across a restart between a click and its fold."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp import ClientResponse
from structlog.testing import capture_logs

from bridge.core.cases import ACTION_PREFIX, CaseRef, Click, decode_ref, encode_ref, fold
from bridge.secret import Secret
from tests.support.clicks_env import KEY, REF, callback_call, clicks_bridge, missed_call
from tests.support.fake_slack import Message
from tests.support.harness import FakeClock
from tests.support.slack_clicks import (
    PATH,
    SIGNING_SECRET,
    ResponseUrls,
    block_actions,
    form,
    signed_headers,
)
from tests.support.slack_env import ONCALL, SUPPORT, Env, slack_bridge


def alert(env: Env, channel: str) -> Message:
    [message] = [m for (story, slot), ms in env.by_slot(channel).items() for m in ms
                 if story == REF.case_id and slot == "missed"]  # fmt: skip
    return message


def buttons(message: Message) -> dict[str, Mapping[str, Any]]:
    """The alert's buttons by action_id."""
    return {
        element["action_id"]: element
        for block in message.blocks
        if block["type"] == "actions"
        for element in block["elements"]
    }


def thread(env: Env, message: Message) -> list[str]:
    return [m.text for m in env.slack.replies(message.channel, message.ts)]


async def click(
    env: Env, responses: ResponseUrls, action: str, user_id: str, user: str
) -> ClientResponse:
    """A press of the alert's ``action`` button as Slack sends it: the button's own action_id
    and value, taken from the alert in the fake Slack (or, once the buttons are gone with
    the case closed, as an alert still open in someone's client would carry them)."""
    shown = buttons(alert(env, SUPPORT)).get(ACTION_PREFIX + action)
    value = str(shown["value"]) if shown else encode_ref(REF)
    payload = block_actions(
        action, None, value=value, user_id=user_id, user=user, response_url=responses.url()
    )
    body = form(payload)
    return await env.client.post(PATH, data=body, headers=signed_headers(body, env.time.wall()))


@asynccontextmanager
async def clickable_bridge(tmp_path: Path) -> AsyncIterator[tuple[ResponseUrls, Env]]:
    """A bridge posting to the fake Slack whose button presses it verifies, and a local
    stand-in for Slack's response_urls."""
    async with (
        ResponseUrls() as responses,
        slack_bridge(
            tmp_path,
            settings_extra={"slack_signing_secret": Secret(SIGNING_SECRET)},
            slack_response_base=responses.base,
        ) as env,
    ):
        yield responses, env


async def test_a_claim_through_slack_updates_the_alert_and_names_the_claimer(
    tmp_path: Path,
) -> None:
    async with clickable_bridge(tmp_path) as (responses, env):
        assert env.bridge.settings.slack_interactivity
        for event in missed_call(REF.case_id, env.time.wall()):
            await env.send(event)
        await env.settle()
        before = {channel: alert(env, channel) for channel in (SUPPORT, ONCALL)}
        versions = {channel: len(m.versions) for channel, m in before.items()}
        offered = buttons(before[SUPPORT])
        assert set(offered) == {ACTION_PREFIX + "claim", ACTION_PREFIX + "done"}
        assert decode_ref(str(offered[ACTION_PREFIX + "claim"]["value"])) == REF

        response = await click(env, responses, "claim", "U0ALICE", "alice")
        assert response.status == 200
        [stored] = [
            f for f in (await env.bridge.store.case_facts([KEY]))[KEY].facts if isinstance(f, Click)
        ]
        assert (stored.action, stored.user) == ("claim", "alice")
        await env.settle()

        for channel in (SUPPORT, ONCALL):
            now = alert(env, channel)
            assert now.ts == before[channel].ts  # edited in place, not posted again
            assert len(now.versions) == versions[channel] + 1, channel
            claims = [t for t in thread(env, now) if "alice is calling back" in t]
            assert len(claims) == 1, (channel, thread(env, now))
            # The alert itself names the claimer, and offers Release instead of the claim.
            assert "alice is calling back" in now.text
            assert set(buttons(now)) == {ACTION_PREFIX + "release", ACTION_PREFIX + "done"}

        # A colleague's claim is refused to them alone; Slack's messages do not change.
        posted = len(env.slack.messages())
        refused = await click(env, responses, "claim", "U0BOB", "bob")
        assert refused.status == 200
        await env.settle()
        [answer] = responses.texts()
        assert answer.startswith("alice is already calling back (since ")
        assert len(env.slack.messages()) == posted

        # Alice calls back; then Bob's click finds the case closed.
        at = env.time.wall()
        for event in callback_call("back-1", at, "0501234567", "Alice"):
            await env.send(event)
        await env.settle()
        [case] = fold(KEY, (await env.bridge.store.case_facts([KEY]))[KEY].facts, env.time.wall())
        assert case.closing is not None
        assert (case.closing.how, case.closing.by) == ("called_back", "Alice")
        closed = [t for t in thread(env, alert(env, SUPPORT)) if "alled back" in t]
        assert len(closed) == 1
        assert "Alice" in closed[0]
        assert buttons(alert(env, SUPPORT)) == {}  # a closed case offers no buttons
        again = await click(env, responses, "claim", "U0BOB", "bob")
        assert again.status == 200
        await env.settle()
        assert responses.texts()[1].startswith("This case is closed: called back by Alice at ")


async def test_a_click_stored_before_a_restart_is_folded_after_it(tmp_path: Path) -> None:
    clock = FakeClock()
    async with ResponseUrls() as responses:
        async with clicks_bridge(tmp_path, clock=clock, responses=responses) as first:
            ref = await first.missed()
            # The process dies after the click's commit, before the dispatcher folds it.
            await first.bridge.dispatcher.stop()
            clock.advance(timedelta(minutes=4))
            press = {"user_id": "U0ALICE", "user": "alice", "action_ts": "1700000000.123456"}
            assert (await first.click("claim", ref, **press)).status == 200
            assert await first.bridge.store.dirty_stories() == [ref.case_id]
            assert not [s for s in first.chat.sent if "calling back" in s.text]

        async with clicks_bridge(tmp_path, clock=clock, responses=responses) as second:
            await second.settle()
            replies = [s for s in second.chat.sent if s.slot.startswith("alert:")]
            assert [s.action for s in replies] == ["post"]
            assert "alice is calling back" in replies[0].text
            assert [s.action for s in second.chat.sent if s.slot == "missed"] == ["update"]
            # The same press signed anew after the restart (a retry) changes nothing.
            sent = len(second.chat.sent)
            clock.advance(timedelta(seconds=1))
            assert (await second.click("claim", ref, **press)).status == 200
            await second.settle()
            assert len(second.chat.sent) == sent
            clicks = await second.clicks()
            assert len(clicks) == 1
            assert clicks[0].case_id == ref.case_id
            assert responses.answers == []


async def test_a_click_on_another_number_touches_nothing_of_this_case(tmp_path: Path) -> None:
    async with clicks_bridge(tmp_path) as world:
        await world.missed()
        sent = len(world.chat.sent)
        other = CaseRef("default", "+31201234567", "miss-1")  # the case id of another number
        assert (await world.click("done", other, user_id="U0BOB", user="bob")).status == 200
        await world.settle()
        assert len(world.chat.sent) == sent
        [case] = fold(KEY, (await world.bridge.store.case_facts([KEY]))[KEY].facts, world.clock())
        assert case.open
        assert world.responses.texts() == [
            "This callback case is no longer kept (retention removed it, or its call was "
            "merged into another): nothing changed."
        ]


async def test_a_press_without_a_response_url_is_not_a_warning(tmp_path: Path) -> None:
    """Slack sends a response_url with every press; a press without one is simulated (the
    README demo's `callbridge simulate`), with nobody to answer: logged at info, not as a
    warning that an answer was impossible. One whose response_url is not Slack's is refused
    on arrival (a warning), and not answered either."""
    async with clickable_bridge(tmp_path) as (responses, env):
        for event in missed_call(REF.case_id, env.time.wall()):
            await env.send(event)
        await env.settle()
        assert (await click(env, responses, "claim", "U0ALICE", "alice")).status == 200
        await env.settle()

        async def second_claim(response_url: str | None) -> None:
            payload = block_actions(
                "claim",
                None,
                value=encode_ref(REF),
                user_id="U0BOB",
                user="bob",
                response_url=response_url,
            )
            body = form(payload)
            headers = signed_headers(body, env.time.wall())
            assert (await env.client.post(PATH, data=body, headers=headers)).status == 200
            await env.settle()

        with capture_logs() as logged:
            await second_claim(None)
        events = [(e["event"], e["log_level"]) for e in logged if "answer" in e["event"]]
        assert events == [("slack.answer_not_sent", "info")]

        with capture_logs() as logged:
            await second_claim("https://example.invalid/not-slack")
        refused = [e for e in logged if e.get("reason") == "response_url"]
        assert [e["log_level"] for e in refused] == ["warning"]
        assert responses.texts() == []  # nobody was answered either time
