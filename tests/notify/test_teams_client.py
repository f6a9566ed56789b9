"""TeamsNotifier over real HTTP against the local fake Bot Connector."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from bridge.notify import (
    AuthError,
    CallResult,
    MessageRef,
    OutgoingMessage,
    PermanentError,
    RetryableError,
)
from bridge.notify.teams import TeamsNotifier
from tests.support.fake_teams import FakeTeams, FakeTokens, Fault, ManualClock

CHANNEL = "19:abc@thread.tacv2"
TOKEN = "bot-bearer-token-SECRET"
TENANT = "11111111-2222-3333-4444-555555555555"


def card(text: str) -> dict[str, Any]:
    return {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.5",
        "body": [{"type": "TextBlock", "text": text, "wrap": True}],
    }


def message(text: str) -> OutgoingMessage:
    return OutgoingMessage(text=f"summary: {text}", card=card(text))


class Calls:
    def __init__(self) -> None:
        self.seen: list[tuple[str, CallResult]] = []

    def __call__(self, method: str, result: CallResult) -> None:
        self.seen.append((method, result))


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def teams(clock: ManualClock) -> AsyncIterator[FakeTeams]:
    async with FakeTeams(token=TOKEN, channels=[CHANNEL], clock=clock) as fake:
        yield fake


@pytest.fixture
def tokens() -> FakeTokens:
    return FakeTokens(TOKEN)


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
def notifier(session, teams, tokens, calls) -> TeamsNotifier:
    return TeamsNotifier(
        tokens, session, teams.url, app_id="app-1", tenant_id=TENANT, timeout=2, on_call=calls
    )


async def test_post_creates_a_thread_in_the_channel(notifier, teams, calls):
    ref = await notifier.post(CHANNEL, message("ringing"))

    [thread] = teams.threads(CHANNEL)
    assert ref == MessageRef("teams", thread.conversation, thread.root.id, None)
    assert thread.conversation == f"{CHANNEL};messageid={thread.root.id}"
    assert thread.root.texts() == ["ringing"]
    assert thread.root.summary == "summary: ringing"
    assert "text" not in thread.root.activity  # Teams would show it above the card
    assert calls.seen == [("conversations.create", "ok")]


async def test_reply_goes_into_the_thread_and_update_replaces_the_root(notifier, teams):
    root = await notifier.post(CHANNEL, message("ringing"))
    reply = await notifier.post(CHANNEL, message("answered by Ann"), thread=root)
    await notifier.update(root, message("answered"))

    [thread] = teams.threads(CHANNEL)
    assert reply == MessageRef("teams", root.channel, thread.replies[0].id, root.ts_or_id)
    assert [r.texts() for r in thread.replies] == [["answered by Ann"]]
    assert [v["summary"] for v in thread.root.versions] == ["summary: ringing", "summary: answered"]


async def test_reply_to_a_reply_ref_still_goes_to_the_root(notifier, teams):
    root = await notifier.post(CHANNEL, message("root"))
    first = await notifier.post(CHANNEL, message("one"), thread=root)
    await notifier.post(CHANNEL, message("two"), thread=first)

    [thread] = teams.threads(CHANNEL)
    assert [r.texts() for r in thread.replies] == [["one"], ["two"]]


async def test_delete_removes_and_a_missing_message_counts_as_deleted(notifier, teams, calls):
    root = await notifier.post(CHANNEL, message("consult call"))
    await notifier.delete(root)
    await notifier.delete(root)  # already gone: no error

    assert teams.threads(CHANNEL) == []
    assert [m.id for m in teams.deleted()] == [root.ts_or_id]
    assert calls.seen[-1] == ("activities.delete", "not_found")


async def test_custom_service_url_travels_in_the_refs(session, teams, tokens):
    notifier = TeamsNotifier(tokens, session, "https://unused.invalid/teams/")
    root = await notifier.post(f"{teams.url} {CHANNEL}", message("gov cloud"))
    reply = await notifier.post("ignored", message("step"), thread=root)
    await notifier.update(root, message("gov cloud, ended"))

    [thread] = teams.threads(CHANNEL)
    assert root.channel == f"{teams.url} {thread.conversation}"
    assert reply.channel == root.channel
    assert thread.root.edits == 1


async def test_new_thread_is_a_group_conversation_in_the_channel_and_tenant(notifier, teams):
    await notifier.post(CHANNEL, message("x"))

    [sent] = teams.requests
    assert (sent.kind, sent.http_method, sent.path) == ("create", "POST", "/teams/v3/conversations")
    assert sent.body["isGroup"] is True
    assert sent.body["channelData"] == {"channel": {"id": CHANNEL}, "tenant": {"id": TENANT}}


@pytest.mark.parametrize(
    ("fault", "code", "retry_after"),
    [
        (Fault.http(503), "http_503", None),
        (Fault.http(502), "http_502", None),
        (Fault.http(504, retry_after=7), "http_504", 7.0),
        (Fault.http(412), "http_412", None),
        (Fault.ratelimit(retry_after=3), "ratelimited", 3.0),
        (Fault.http(500), "http_500", None),
    ],
)
async def test_transient_failures_are_retryable(notifier, teams, fault, code, retry_after):
    teams.fail("create", fault)

    with pytest.raises(RetryableError) as caught:
        await notifier.post(CHANNEL, message("x"))

    assert caught.value.code == code
    assert caught.value.retry_after == retry_after
    assert teams.threads(CHANNEL) == []


async def test_a_dropped_connection_is_retryable(notifier, teams):
    teams.fail("create", Fault.drop())
    with pytest.raises(RetryableError) as caught:
        await notifier.post(CHANNEL, message("x"))
    assert caught.value.code == "connection"


async def test_no_answer_is_a_timeout(session, teams, tokens):
    notifier = TeamsNotifier(tokens, session, teams.url, timeout=0.2)
    teams.fail("create", Fault.hang())
    with pytest.raises(RetryableError) as caught:
        await notifier.post(CHANNEL, message("x"))
    assert caught.value.code == "timeout"


async def test_the_fakes_rate_limit_is_answered_with_retry_after(notifier, teams, clock, calls):
    root = await notifier.post(CHANNEL, message("root"))
    for n in range(6):  # 7 per second per conversation, the root counted
        await notifier.post(CHANNEL, message(f"r{n}"), thread=root)

    with pytest.raises(RetryableError) as caught:
        await notifier.post(CHANNEL, message("one too many"), thread=root)
    assert caught.value.code == "ratelimited"
    assert caught.value.retry_after == 1.0
    assert calls.seen[-1] == ("activities.reply", "ratelimited")

    clock.advance(1.0)
    await notifier.post(CHANNEL, message("after a second"), thread=root)
    assert len(teams.threads(CHANNEL)[0].replies) == 7


async def test_401_is_an_auth_error_with_hints(notifier, teams, tokens, calls):
    tokens.recover("a-revoked-token")
    with pytest.raises(AuthError) as caught:
        await notifier.post(CHANNEL, message("x"))

    assert caught.value.code == "unauthorized"
    assert "TEAMS_APP_ID" in caught.value.message
    assert "a-revoked-token" not in caught.value.message
    assert calls.seen == [("conversations.create", "auth")]


async def test_bot_not_in_the_team_fails_that_channel_saying_install_it(session, tokens):
    # Permanent for that conversation, not an AuthError: the token is fine (that is a 401),
    # and pausing all of Teams would hold back every other destination.
    async with FakeTeams(token=TOKEN, channels=[], not_installed=[CHANNEL]) as teams:
        notifier = TeamsNotifier(tokens, session, teams.url)
        with pytest.raises(PermanentError) as caught:
            await notifier.post(CHANNEL, message("x"))
    assert caught.value.code == "forbidden"
    assert "install the Teams app" in caught.value.message
    assert "BotNotInConversationRoster" in caught.value.message


async def test_unknown_channel_is_permanent(notifier):
    with pytest.raises(PermanentError) as caught:
        await notifier.post("19:nope@thread.tacv2", message("x"))
    assert caught.value.code == "not_found"
    assert "19:nope@thread.tacv2" in caught.value.message


async def test_a_rejected_card_is_permanent_and_says_so(notifier, teams):
    bad = OutgoingMessage(text="x", card={**card("x"), "version": "1.6"})
    with pytest.raises(PermanentError) as caught:
        await notifier.post(CHANNEL, bad)
    assert caught.value.code == "BadArgument"
    assert "1.6" in caught.value.message
    assert "rendering bug" in caught.value.message


async def test_update_of_a_vanished_message_is_permanent(notifier, teams):
    root = await notifier.post(CHANNEL, message("x"))
    gone = MessageRef("teams", root.channel, "999", None)
    with pytest.raises(PermanentError) as caught:
        await notifier.update(gone, message("y"))
    assert caught.value.code == "not_found"


async def test_token_errors_pass_through_and_are_counted(notifier, tokens, calls):
    tokens.fail_with(AuthError("bad secret", platform="teams", method="token", code="x"))
    with pytest.raises(AuthError):
        await notifier.post(CHANNEL, message("x"))
    with pytest.raises(AuthError):
        await notifier.verify()
    assert calls.seen == [("conversations.create", "auth"), ("token", "auth")]


async def test_verify_reports_the_bot(notifier, calls):
    assert await notifier.verify() == f"teams: bot app-1 in tenant {TENANT} (token OK)"
    assert calls.seen == [("token", "ok")]


async def test_find_cannot_search_and_lookup_uses_the_address_as_upn(notifier, session, tokens):
    since = datetime(2026, 1, 1, tzinfo=UTC)
    assert await notifier.find(CHANNEL, "callbridge_message", {"story": "s"}, since) is None
    assert await notifier.lookup_user(" ann@example.com ") == "ann@example.com"
    assert await notifier.lookup_user("not an address") is None
    plain = TeamsNotifier(tokens, session, mention_emails=False)
    assert await plain.lookup_user("ann@example.com") is None


def test_link_opens_the_thread_root(notifier):
    conversation = f"{CHANNEL};messageid=1700000000001"
    root = MessageRef("teams", conversation, "1700000000001")
    assert notifier.link(root) == (
        "https://teams.microsoft.com/l/message/19%3Aabc%40thread.tacv2/1700000000001"
        f"?parentMessageId=1700000000001&tenantId={TENANT}"
    )
