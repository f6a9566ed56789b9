"""The fake Slack Web API itself: limits, validation, recording, faults, wire format.

Driven with plain aiohttp requests shaped like slack-sdk's (Bearer header, JSON bodies for chat.*,
query strings for reads), and once through the real AsyncWebClient to pin that wire format.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from tests.support.fake_slack import Channel, FakeSlack, Fault, Limits, ManualClock

TOKEN = "xoxb-test-0123456789"
T0 = 1_700_000_000.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def slack(clock: ManualClock) -> AsyncIterator[FakeSlack]:
    async with FakeSlack(
        token=TOKEN,
        channels=["C1", "C2", Channel("CARCH", archived=True), Channel("COUT", member=False)],
        users={"Ann@Example.com": "U0ANN"},
        clock=clock,
        wall=ManualClock(T0),
    ) as fake:
        yield fake


class Api:
    """Requests as slack-sdk sends them."""

    def __init__(self, session: aiohttp.ClientSession, fake: FakeSlack) -> None:
        self.session, self.fake = session, fake

    async def call(
        self, method: str, token: str | None = TOKEN, **params: Any
    ) -> tuple[int, dict[str, Any], Any]:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        if method.startswith("chat."):
            req = self.session.post(self.fake.url + method, json=params, headers=headers)
        else:
            query = {k: str(v) for k, v in params.items()}
            req = self.session.get(self.fake.url + method, params=query, headers=headers)
        async with req as r:
            body = await r.json() if r.content_type == "application/json" else await r.text()
            return r.status, dict(r.headers), body

    async def ok(self, method: str, **params: Any) -> dict[str, Any]:
        status, _, body = await self.call(method, **params)
        assert status == 200
        assert body["ok"] is True, body
        return body  # type: ignore[no-any-return]

    async def error(self, method: str, **params: Any) -> str:
        status, _, body = await self.call(method, **params)
        assert status == 200
        assert body["ok"] is False
        return str(body["error"])


@pytest.fixture
def api(session: aiohttp.ClientSession, slack: FakeSlack) -> Api:
    return Api(session, slack)


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


# -- rate limits -------------------------------------------------------------------------------


async def test_posts_allow_a_burst_of_three_per_channel_then_429_until_a_second_passes(
    api: Api, slack: FakeSlack, clock: ManualClock
) -> None:
    for i in range(3):
        await api.ok("chat.postMessage", channel="C1", text=f"m{i}")
    status, headers, body = await api.call("chat.postMessage", channel="C1", text="m3")
    assert (status, headers["Retry-After"], body["error"]) == (429, "1", "ratelimited")
    await api.ok("chat.postMessage", channel="C2", text="other channel has its own budget")
    clock.advance(1.0)
    await api.ok("chat.postMessage", channel="C1", text="m3 again")
    status, _, _ = await api.call("chat.postMessage", channel="C1", text="m4")
    assert status == 429
    assert slack.ratelimited["chat.postMessage"] == 2
    assert slack.calls["chat.postMessage"] == 7
    assert [m.text for m in slack.roots("C1")] == ["m0", "m1", "m2", "m3 again"]


async def test_updates_share_one_workspace_budget_of_50_per_minute(
    api: Api, slack: FakeSlack, clock: ManualClock
) -> None:
    ts = [(await api.ok("chat.postMessage", channel=c, text="x"))["ts"] for c in ("C1", "C2")]
    for i in range(5):
        await api.ok("chat.update", channel=("C1", "C2")[i % 2], ts=ts[i % 2], text=f"v{i}")
    status, headers, _ = await api.call("chat.update", channel="C1", ts=ts[0], text="v5")
    # one token refills every 60/50 = 1.2 s: Retry-After is that, rounded up to whole seconds
    assert (status, headers["Retry-After"]) == (429, "2")
    clock.advance(1.21)  # just past the refill (1.2 exactly is at float rounding's mercy)
    await api.ok("chat.update", channel="C1", ts=ts[0], text="v5")
    assert slack.ratelimited["chat.update"] == 1
    assert slack.message("C1", ts[0]) is not None
    assert slack.message("C1", ts[0]).text == "v5"  # type: ignore[union-attr]


async def test_strict_limits_have_no_burst_and_loose_limits_none_at_all(
    session: aiohttp.ClientSession,
) -> None:
    async with FakeSlack(token=TOKEN, channels=["C1"], limits=Limits.strict()) as strict:
        api = Api(session, strict)
        await api.ok("chat.postMessage", channel="C1", text="first")
        status, _, _ = await api.call("chat.postMessage", channel="C1", text="second")
        assert status == 429
    async with FakeSlack(token=TOKEN, channels=["C1"], limits=Limits.loose()) as loose:
        api = Api(session, loose)
        for i in range(20):
            await api.ok("chat.postMessage", channel="C1", text=str(i))
        assert loose.ratelimited.total() == 0
        assert len(loose.roots("C1")) == 20


# -- validation --------------------------------------------------------------------------------


async def test_limits_are_accepted_exactly_at_the_edge(api: Api, slack: FakeSlack) -> None:
    header = {"type": "header", "text": {"type": "plain_text", "text": "h" * 150}}
    blocks = [header, section("s" * 3000), *([{"type": "divider"}] * 48)]
    await api.ok("chat.postMessage", channel="C1", text="t" * 40_000, blocks=blocks)
    assert len(slack.roots("C1")[0].blocks) == 50


@pytest.mark.parametrize(
    ("params", "error", "detail"),
    [
        ({}, "no_text", None),
        ({"text": "t" * 40_001}, "msg_too_long", None),
        ({"text": "x", "blocks": [{"type": "divider"}] * 51}, "invalid_blocks", "50 items"),
        ({"text": "x", "blocks": [section("s" * 3001)]}, "invalid_blocks", "/blocks/0/text"),
        ({"text": "x", "blocks": [section("")]}, "invalid_blocks", "more than 0"),
        (
            {
                "text": "x",
                "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
            },
            "invalid_blocks",
            "less than 151",
        ),
        (
            {
                "text": "x",
                "blocks": [{"type": "header", "text": {"type": "mrkdwn", "text": "*h*"}}],
            },
            "invalid_blocks",
            "plain_text",
        ),
        ({"text": "x", "blocks": [{"type": "sektion"}]}, "invalid_blocks", "block type"),
        ({"text": "x", "metadata": {"event_payload": {}}}, "invalid_metadata_format", None),
        ({"text": "x", "thread_ts": "1.000001"}, "thread_not_found", None),
    ],
)
async def test_post_rejects_what_slack_rejects(
    session: aiohttp.ClientSession,
    slack: FakeSlack,
    params: dict[str, Any],
    error: str,
    detail: str | None,
) -> None:
    status, _, body = await Api(session, slack).call("chat.postMessage", channel="C1", **params)
    assert (status, body["ok"], body["error"]) == (200, False, error)
    if detail is not None:
        assert detail in " ".join(body["response_metadata"]["messages"])
    assert slack.messages() == []


@pytest.mark.parametrize(
    ("token", "channel", "error"),
    [
        (None, "C1", "not_authed"),
        ("xoxb-wrong", "C1", "invalid_auth"),
        (TOKEN, "C404", "channel_not_found"),
        (TOKEN, "CARCH", "is_archived"),
        (TOKEN, "COUT", "not_in_channel"),
    ],
)
async def test_post_checks_token_and_channel(
    api: Api, slack: FakeSlack, token: str | None, channel: str, error: str
) -> None:
    _, _, body = await api.call("chat.postMessage", token=token, channel=channel, text="x")
    assert body["error"] == error
    assert slack.messages() == []


async def test_missing_scope_names_the_needed_scope(session: aiohttp.ClientSession) -> None:
    async with FakeSlack(token=TOKEN, channels=["C1"], scopes={"chat:write"}) as fake:
        _, _, body = await Api(session, fake).call("conversations.history", channel="C1")
        assert (body["error"], body["needed"]) == ("missing_scope", "channels:history")


async def test_update_of_unknown_message_is_message_not_found(api: Api) -> None:
    assert await api.error("chat.update", channel="C1", ts="1.000001", text="x") == (
        "message_not_found"
    )


# -- recording ---------------------------------------------------------------------------------


async def test_edits_are_recorded_and_update_keeps_what_it_is_not_given(
    api: Api, slack: FakeSlack
) -> None:
    meta = {"event_type": "cb", "event_payload": {"story": "s1"}}
    root = await api.ok(
        "chat.postMessage", channel="C1", text="v0", blocks=[section("b0")], metadata=meta
    )
    reply = await api.ok("chat.postMessage", channel="C1", text="r", thread_ts=root["ts"])
    await api.ok("chat.update", channel="C1", ts=root["ts"], text="v1")
    await api.ok("chat.update", channel="C1", ts=root["ts"], text="v2", blocks=[])
    [message] = slack.roots("C1")
    assert [v.text for v in message.versions] == ["v0", "v1", "v2"]
    assert [v.blocks for v in message.versions] == [(section("b0"),), (section("b0"),), ()]
    assert message.metadata == meta
    assert message.edits == 2
    assert [m.ts for m in slack.replies("C1", root["ts"])] == [reply["ts"]]
    assert slack.replies("C1", root["ts"])[0].thread_ts == root["ts"]


async def test_history_is_newest_first_filtered_by_oldest_and_paged(
    api: Api, clock: ManualClock
) -> None:
    meta = {"event_type": "cb", "event_payload": {"k": "v"}}
    ts = [
        (await api.ok("chat.postMessage", channel="C2", text=str(i), metadata=meta))["ts"]
        for i in range(3)
    ]
    clock.advance(1.0)  # the fourth post in a second would exceed the burst
    await api.ok("chat.postMessage", channel="C2", text="reply", thread_ts=ts[0])
    # wall clock starts at T0 and each message takes the next microsecond
    assert ts == ["1700000000.000000", "1700000000.000001", "1700000000.000002"]
    page1 = await api.ok(
        "conversations.history", channel="C2", limit=2, oldest=ts[0], inclusive="1"
    )
    assert [m["ts"] for m in page1["messages"]] == [ts[2], ts[1]]
    assert all("metadata" not in m for m in page1["messages"])  # only with include_all_metadata
    cursor = page1["response_metadata"]["next_cursor"]
    assert page1["has_more"] is True
    page2 = await api.ok(
        "conversations.history",
        channel="C2",
        limit=2,
        cursor=cursor,
        oldest=ts[0],
        inclusive="1",
        include_all_metadata="1",
    )
    assert [m["ts"] for m in page2["messages"]] == [ts[0]]
    assert page2["messages"][0]["metadata"] == meta
    assert page2["messages"][0]["reply_count"] == 1
    assert page2["has_more"] is False
    exclusive = await api.ok("conversations.history", channel="C2", oldest=ts[1])
    assert [m["ts"] for m in exclusive["messages"]] == [ts[2]]
    thread = await api.ok("conversations.replies", channel="C2", ts=ts[0])
    assert [m["text"] for m in thread["messages"]] == ["0", "reply"]


async def test_lookup_by_email_ignores_case(api: Api) -> None:
    assert (await api.ok("users.lookupByEmail", email="ann@example.COM"))["user"]["id"] == "U0ANN"
    assert await api.error("users.lookupByEmail", email="bob@example.com") == "users_not_found"


# -- faults ------------------------------------------------------------------------------------


async def test_faults_apply_in_order_to_their_method_only(api: Api, slack: FakeSlack) -> None:
    slack.fail("chat.postMessage", Fault.http(503), times=2)
    slack.fail("chat.postMessage", Fault.ratelimit(retry_after=7))
    slack.fail("chat.postMessage", Fault.slack_error("invalid_blocks"))
    assert slack.pending_faults("chat.postMessage") == 4
    await api.ok("auth.test")  # other methods unaffected
    for _ in range(2):
        status, headers, _ = await api.call("chat.postMessage", channel="C1", text="x")
        assert status == 503
        assert headers["Content-Type"].startswith("text/html")
    status, headers, _ = await api.call("chat.postMessage", channel="C1", text="x")
    assert (status, headers["Retry-After"]) == (429, "7")
    assert await api.error("chat.postMessage", channel="C1", text="x") == "invalid_blocks"
    await api.ok("chat.postMessage", channel="C1", text="recovered")
    assert slack.calls["chat.postMessage"] == 5
    assert slack.ratelimited["chat.postMessage"] == 1
    assert [m.text for m in slack.messages()] == ["recovered"]


async def test_drop_closes_the_connection_without_an_answer(api: Api, slack: FakeSlack) -> None:
    slack.fail("chat.postMessage", Fault.drop())
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await api.call("chat.postMessage", channel="C1", text="x")
    assert slack.messages() == []


async def test_hang_holds_the_request_until_the_client_gives_up(
    session: aiohttp.ClientSession, slack: FakeSlack
) -> None:
    slack.fail("chat.update", Fault.hang())
    with pytest.raises(TimeoutError):
        async with session.post(
            slack.url + "chat.update",
            json={"channel": "C1", "ts": "1.0", "text": "x"},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=aiohttp.ClientTimeout(total=0.2),
        ):
            pass
    assert slack.calls["chat.update"] == 1


# -- wire format of the real client ------------------------------------------------------------


async def test_real_client_wire_format_is_what_the_fake_parses(
    session: aiohttp.ClientSession, slack: FakeSlack
) -> None:
    client = AsyncWebClient(token=TOKEN, base_url=slack.url, session=session, retry_handlers=[])
    client.proxy = None  # slack-sdk would otherwise take HTTPS_PROXY from the environment
    posted = await client.chat_postMessage(
        channel="C1",
        text="hi",
        blocks=[section("b")],
        metadata={"event_type": "e", "event_payload": {"a": "1"}},
    )
    await client.chat_update(channel="C1", ts=posted["ts"], text="hi2")
    await client.conversations_history(channel="C1", include_all_metadata=True)
    await client.users_lookupByEmail(email="ann@example.com")
    await client.auth_test()
    formats = [(r.method, r.http_method, r.content_type) for r in slack.requests]
    assert formats == [
        ("chat.postMessage", "POST", "application/json"),
        ("chat.update", "POST", "application/json"),
        # slack-sdk sends its form Content-Type even on GETs without a body
        ("conversations.history", "GET", "application/x-www-form-urlencoded"),
        ("users.lookupByEmail", "GET", "application/x-www-form-urlencoded"),
        ("auth.test", "POST", "application/x-www-form-urlencoded"),
    ]
    assert slack.requests[2].params["include_all_metadata"] == "1"
    assert slack.roots("C1")[0].metadata == {"event_type": "e", "event_payload": {"a": "1"}}
