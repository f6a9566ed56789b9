"""A case's alert and thread replies over the wire: rendered by bridge.render.slack, sent by the
real SlackNotifier (slack-sdk) to the local fake Slack, which validates the blocks and records
``reply_broadcast``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from bridge.notify.slack import SlackNotifier
from bridge.render.message import OutgoingMessage
from bridge.render.slack import render
from bridge.secret import Secret
from tests.render import cases as K
from tests.support.fake_slack import FakeSlack, Limits

TOKEN = "xoxb-fake-token"


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(token=TOKEN, channels=["C1"], limits=Limits.loose()) as fake:
        yield fake


@pytest.fixture
async def notifier(slack: FakeSlack) -> AsyncIterator[SlackNotifier]:
    async with aiohttp.ClientSession() as session:
        yield SlackNotifier(token=Secret(TOKEN), session=session, base_url=slack.url, timeout=5.0)


async def test_the_escalation_reply_is_broadcast_to_the_channel_and_no_other(
    notifier: SlackNotifier, slack: FakeSlack
) -> None:
    case = K.got_through()  # escalated at 14:32, then Bob answered at 14:40
    alert = await notifier.post("C1", render(K.alert(case), {}, None, buttons=True))
    for i in range(len(case.steps)):
        await notifier.post("C1", render(K.step_content(case, i), {}, None), thread=alert)

    escalation, closing = slack.replies("C1", alert.ts_or_id)
    assert escalation.broadcast
    assert escalation.text.startswith("14:32 ⚠️ <!subteam^S0123> Still not called back")
    assert not closing.broadcast
    sent = [r.params for r in slack.requests if r.method == "chat.postMessage"]
    assert [p.get("reply_broadcast") for p in sent] == [None, True, None]


async def test_broadcast_is_only_ever_sent_for_a_thread_reply(
    notifier: SlackNotifier, slack: FakeSlack
) -> None:
    await notifier.post("C1", OutgoingMessage(text="not in a thread", broadcast=True))
    (root,) = slack.roots("C1")
    assert not root.broadcast
    assert "reply_broadcast" not in slack.requests[-1].params


async def test_an_open_case_alert_with_buttons_is_accepted_and_updated_without_them(
    notifier: SlackNotifier, slack: FakeSlack
) -> None:
    ref = await notifier.post("C1", render(K.alert(K.claimed()), {}, None, buttons=True))
    await notifier.update(ref, render(K.alert(K.done()), {}, None, buttons=True))
    (posted,) = slack.roots("C1")
    assert [b["type"] for b in posted.versions[0].blocks][-1] == "actions"
    assert "actions" not in [b["type"] for b in posted.blocks]  # closed: the buttons are gone
    assert posted.text.endswith(
        "✅ Closed by Alice at 14:11 (marked done), 9 min after the first miss"
    )
