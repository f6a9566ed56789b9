"""SlackNotifier through the real slack-sdk AsyncWebClient against the local fake Slack."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from bridge.notify import (
    AuthError,
    CallResult,
    MessageMetadata,
    MessageRef,
    NotifyError,
    OutgoingMessage,
    PermanentError,
    RetryableError,
)
from bridge.notify import slack as slack_module
from bridge.notify.slack import SlackNotifier
from bridge.secret import Secret
from tests.support.fake_slack import FakeSlack, Fault, Limits, ManualClock

TOKEN = "xoxb-1111-2222-SECRETSECRET"
T0 = 1_700_000_000.0
START = datetime.fromtimestamp(T0, UTC)


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def root_message(text: str, story: str = "s1") -> OutgoingMessage:
    meta = MessageMetadata("callbridge_root", {"story": story, "slot": "live"})
    return OutgoingMessage(text=text, blocks=(section(text),), metadata=meta)


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
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(
        token=TOKEN,
        channels=["C1"],
        users={"ann@example.com": "U0ANN"},
        limits=Limits.loose(),
        wall=ManualClock(T0),
    ) as fake:
        yield fake


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def notifier(
    session: aiohttp.ClientSession, slack: FakeSlack, calls: Calls, clock: ManualClock
) -> SlackNotifier:
    return make(session, slack, on_call=calls, clock=clock)


def make(session: aiohttp.ClientSession, slack: FakeSlack, **options: Any) -> SlackNotifier:
    options.setdefault("timeout", 5.0)
    return SlackNotifier(token=Secret(TOKEN), session=session, base_url=slack.url, **options)


def assert_no_token(err: BaseException) -> None:
    seen: BaseException | None = err
    while seen is not None:
        assert TOKEN not in str(seen)
        assert TOKEN not in repr(seen)
        assert "SECRETSECRET" not in str(seen.args)
        seen = seen.__cause__ or seen.__context__


# -- the happy path ----------------------------------------------------------------------------


async def test_post_reply_update_round_trip(notifier: SlackNotifier, slack: FakeSlack) -> None:
    root = await notifier.post("C1", root_message("ringing"))
    assert root == MessageRef("slack", "C1", "1700000000.000000", None)
    reply = await notifier.post("C1", OutgoingMessage(text="Ann answered"), thread=root)
    assert reply == MessageRef("slack", "C1", "1700000000.000001", root.ts_or_id)
    # a reply to a reply lands in the same thread, not a new one
    nested = await notifier.post("C1", OutgoingMessage(text="ended"), thread=reply)
    assert nested.thread == root.ts_or_id
    await notifier.update(root, root_message("answered by Ann"))

    [posted] = slack.roots("C1")
    assert [v.text for v in posted.versions] == ["ringing", "answered by Ann"]
    assert posted.blocks == (section("answered by Ann"),)
    assert posted.metadata == {
        "event_type": "callbridge_root",
        "event_payload": {"story": "s1", "slot": "live"},
    }
    assert [m.text for m in slack.replies("C1", root.ts_or_id)] == ["Ann answered", "ended"]
    sent = slack.requests[0].params
    assert (sent["unfurl_links"], sent["unfurl_media"], sent["text"]) == (False, False, "ringing")


async def test_update_without_blocks_clears_the_old_blocks(
    notifier: SlackNotifier, slack: FakeSlack
) -> None:
    root = await notifier.post("C1", root_message("with blocks"))
    await notifier.update(root, OutgoingMessage(text="plain now"))
    assert slack.roots("C1")[0].blocks == ()


async def test_verify_names_bot_and_workspace(notifier: SlackNotifier) -> None:
    assert await notifier.verify() == "slack: bot @callbridge in workspace Fake Workspace"


# -- finding a message again after a crash -----------------------------------------------------


async def test_a_new_instance_finds_the_message_by_metadata(
    session: aiohttp.ClientSession, notifier: SlackNotifier, slack: FakeSlack
) -> None:
    await notifier.post("C1", root_message("other call", story="s0"))
    root = await notifier.post("C1", root_message("ringing", story="s1"))
    reply_meta = MessageMetadata("callbridge_reply", {"story": "s1", "slot": "3"})
    reply = await notifier.post("C1", OutgoingMessage("r", metadata=reply_meta), thread=root)
    await notifier.post("C1", OutgoingMessage("no metadata"))

    after_restart = make(session, slack)
    key = {"story": "s1", "slot": "live"}
    assert await after_restart.find("C1", "callbridge_root", key, START) == root
    assert await after_restart.find("C1", "callbridge_root", {"story": "s9"}, START) is None
    assert await after_restart.find("C1", "other_type", key, START) is None
    later = START + timedelta(seconds=1)
    assert await after_restart.find("C1", "callbridge_root", key, later) is None
    found = await after_restart.find(
        "C1", "callbridge_reply", {"story": "s1", "slot": "3"}, START, thread=root
    )
    assert found == reply
    assert slack.requests[-1].params["include_all_metadata"] == "1"


async def test_find_stops_after_the_configured_number_of_pages(
    session: aiohttp.ClientSession, slack: FakeSlack
) -> None:
    notifier = make(session, slack, history_pages=2, history_page_size=2)
    for i in range(5):
        await notifier.post("C1", root_message(f"m{i}", story=f"s{i}"))
    # newest first, two per page: pages hold s4 s3 | s2 s1 | s0
    assert (await notifier.find("C1", "callbridge_root", {"story": "s1"}, START)) is not None
    assert slack.calls["conversations.history"] == 2
    assert await notifier.find("C1", "callbridge_root", {"story": "s0"}, START) is None
    assert slack.calls["conversations.history"] == 4


async def test_missing_history_scope_means_cannot_look_up(
    session: aiohttp.ClientSession, calls: Calls
) -> None:
    async with FakeSlack(token=TOKEN, channels=["C1"], scopes={"chat:write"}) as slack:
        notifier = make(session, slack, on_call=calls)
        await notifier.post("C1", root_message("x"))
        key = {"story": "s1"}
        assert await notifier.find("C1", "callbridge_root", key, START) is None
        assert await notifier.find("C1", "callbridge_root", key, START) is None
        assert slack.calls["conversations.history"] == 1  # remembered, not asked again
        assert ("conversations.history", "auth") in calls.seen
        assert await notifier.lookup_user("ann@example.com") is None
        assert await notifier.lookup_user("ann@example.com") is None
        assert slack.calls["users.lookupByEmail"] == 1


async def test_find_rejects_a_naive_datetime(notifier: SlackNotifier) -> None:
    with pytest.raises(ValueError, match="time-zone aware"):
        await notifier.find("C1", "e", {}, datetime(2026, 1, 1))


# -- user lookup cache -------------------------------------------------------------------------


async def test_lookup_cache_hits_until_the_ttl_passes(
    session: aiohttp.ClientSession, slack: FakeSlack, clock: ManualClock
) -> None:
    notifier = make(session, slack, clock=clock, user_ttl=100.0, missing_user_ttl=10.0)
    assert await notifier.lookup_user("Ann@Example.com") == "U0ANN"
    assert await notifier.lookup_user("ann@example.com") == "U0ANN"
    assert slack.calls["users.lookupByEmail"] == 1
    assert await notifier.lookup_user("bob@example.com") is None
    assert await notifier.lookup_user("bob@example.com") is None
    assert slack.calls["users.lookupByEmail"] == 2

    slack.users["bob@example.com"] = "U0BOB"
    clock.advance(10.5)  # past the negative TTL only
    assert await notifier.lookup_user("bob@example.com") == "U0BOB"
    assert await notifier.lookup_user("ann@example.com") == "U0ANN"
    assert slack.calls["users.lookupByEmail"] == 3

    del slack.users["ann@example.com"]
    clock.advance(90.0)  # now 100.5 s after Ann's lookup
    assert await notifier.lookup_user("ann@example.com") is None
    assert slack.calls["users.lookupByEmail"] == 4


async def test_lookup_cache_stays_bounded_when_every_entry_is_fresh(
    session: aiohttp.ClientSession,
    slack: FakeSlack,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Full of addresses that are all still fresh, the cache forgets the oldest remembered
    (before, it only dropped expired ones and then grew past its bound)."""
    monkeypatch.setattr(slack_module, "USER_CACHE_MAX", 3)
    notifier = make(session, slack, clock=clock, user_ttl=3600.0, missing_user_ttl=3600.0)
    people = [f"p{n}@example.com" for n in range(5)]
    for address in people:
        await notifier.lookup_user(address)
    assert slack.calls["users.lookupByEmail"] == 5
    for address in people[2:]:  # the newest three are remembered
        await notifier.lookup_user(address)
    assert slack.calls["users.lookupByEmail"] == 5
    await notifier.lookup_user(people[0])  # the oldest was forgotten: asked again
    assert slack.calls["users.lookupByEmail"] == 6


async def test_lookup_errors_are_not_cached(
    session: aiohttp.ClientSession, slack: FakeSlack, clock: ManualClock
) -> None:
    notifier = make(session, slack, clock=clock)
    slack.fail("users.lookupByEmail", Fault.http(503))
    with pytest.raises(RetryableError):
        await notifier.lookup_user("ann@example.com")
    assert await notifier.lookup_user("ann@example.com") == "U0ANN"


# -- every failure, classified -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "code", "retry_after", "result"),
    [
        (Fault.ratelimit(retry_after=7), "ratelimited", 7.0, "ratelimited"),
        (Fault.http(500), "http_500", None, "retryable"),
        (Fault.http(503), "http_503", None, "retryable"),
        (Fault.slack_error("internal_error"), "internal_error", None, "retryable"),
        (Fault.slack_error("fatal_error"), "fatal_error", None, "retryable"),
        (Fault.drop(), "connection", None, "retryable"),
    ],
)
async def test_transient_failures_are_retryable_and_not_retried_by_the_sdk(
    notifier: SlackNotifier,
    slack: FakeSlack,
    calls: Calls,
    fault: Fault,
    code: str,
    retry_after: float | None,
    result: CallResult,
) -> None:
    slack.fail("chat.postMessage", fault)
    with pytest.raises(RetryableError) as caught:
        await notifier.post("C1", root_message("x"))
    assert (caught.value.code, caught.value.retry_after) == (code, retry_after)
    assert (caught.value.platform, caught.value.method) == ("slack", "chat.postMessage")
    assert "will retry" in caught.value.message
    assert slack.calls["chat.postMessage"] == 1  # slack-sdk's own retry handlers are off
    assert calls.seen == [("chat.postMessage", result)]
    assert_no_token(caught.value)
    assert slack.messages() == []


async def test_a_hung_request_times_out_as_retryable(
    session: aiohttp.ClientSession, slack: FakeSlack
) -> None:
    notifier = make(session, slack, timeout=0.2)
    root = await notifier.post("C1", root_message("x"))
    slack.fail("chat.update", Fault.hang())
    with pytest.raises(RetryableError) as caught:
        await notifier.update(root, root_message("y"))
    assert caught.value.code == "timeout"
    assert "0.2 s" in caught.value.message


async def test_an_unreachable_api_is_retryable(session: aiohttp.ClientSession) -> None:
    async with FakeSlack(token=TOKEN) as gone:
        url = gone.url
    notifier = SlackNotifier(token=Secret(TOKEN), session=session, base_url=url, timeout=5.0)
    with pytest.raises(RetryableError) as caught:
        await notifier.verify()
    assert caught.value.code == "connection"
    assert_no_token(caught.value)


async def test_the_fakes_rate_limit_surfaces_as_retry_after(
    session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    async with FakeSlack(token=TOKEN, channels=["C1"], clock=clock) as slack:
        notifier = make(session, slack)
        for i in range(3):
            await notifier.post("C1", OutgoingMessage(text=str(i)))
        with pytest.raises(RetryableError) as caught:
            await notifier.post("C1", OutgoingMessage(text="3"))
        assert caught.value.retry_after == 1.0
        clock.advance(1.0)
        await notifier.post("C1", OutgoingMessage(text="3"))
        assert [m.text for m in slack.roots("C1")] == ["0", "1", "2", "3"]
        assert slack.ratelimited["chat.postMessage"] == 1


@pytest.mark.parametrize(
    ("channel", "message", "code", "hint"),
    [
        ("C404", OutgoingMessage(text="x"), "channel_not_found", "invite the app"),
        ("C1", OutgoingMessage(text="t" * 40_001), "msg_too_long", "rendering bug"),
        (
            "C1",
            OutgoingMessage(text="x", blocks=(section("s" * 3001),)),
            "invalid_blocks",
            "less than 3001 characters [json-pointer:/blocks/0/text/text]",
        ),
    ],
)
async def test_rejected_requests_are_permanent(
    notifier: SlackNotifier,
    calls: Calls,
    channel: str,
    message: OutgoingMessage,
    code: str,
    hint: str,
) -> None:
    with pytest.raises(PermanentError) as caught:
        await notifier.post(channel, message)
    assert caught.value.code == code
    assert f"in channel {channel}" in caught.value.message
    assert hint in caught.value.message
    assert calls.seen == [("chat.postMessage", "permanent")]
    assert_no_token(caught.value)


async def test_updating_a_vanished_message_is_permanent(notifier: SlackNotifier) -> None:
    with pytest.raises(PermanentError) as caught:
        await notifier.update(MessageRef("slack", "C1", "1.000001"), OutgoingMessage(text="x"))
    assert caught.value.code == "message_not_found"
    assert "1.000001" in caught.value.message


async def test_a_wrong_token_is_an_auth_error_that_does_not_show_the_token(
    session: aiohttp.ClientSession, slack: FakeSlack
) -> None:
    slack.token = "xoxb-the-right-one"
    with pytest.raises(AuthError) as caught:
        await make(session, slack).verify()
    assert caught.value.code == "invalid_auth"
    assert "SLACK_BOT_TOKEN" in caught.value.message
    assert_no_token(caught.value)


async def test_a_missing_scope_on_posting_names_the_scope(session: aiohttp.ClientSession) -> None:
    async with FakeSlack(token=TOKEN, channels=["C1"], scopes={"users:read"}) as slack:
        with pytest.raises(AuthError) as caught:
            await make(session, slack).post("C1", OutgoingMessage(text="x"))
    assert (caught.value.code, caught.value.needed) == ("missing_scope", "chat:write")
    assert "chat:write scope" in caught.value.message


def test_every_error_class_is_a_notify_error() -> None:
    for cls in (RetryableError, PermanentError, AuthError):
        assert issubclass(cls, NotifyError)
