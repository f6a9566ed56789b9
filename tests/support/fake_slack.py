"""A local fake Slack Web API (aiohttp on 127.0.0.1, port 0) for tests through the real client.

It speaks the wire format slack-sdk's ``AsyncWebClient`` sends: ``Authorization: Bearer``;
``chat.postMessage`` / ``chat.update`` as JSON bodies; ``conversations.history`` /
``conversations.replies`` / ``users.lookupByEmail`` as GET query strings; ``auth.test`` as a POST
with form or query parameters. It records every message with its full edit history, enforces
Slack's rate limits (answering ``429`` + ``Retry-After``) and the validations that matter to
callbridge, and fails on demand::

    clock = ManualClock()
    async with FakeSlack(channels=["C1"], clock=clock) as slack:   # slack.url ends in /api/
        slack.fail("chat.postMessage", Fault.http(503), times=2)
        ...                        # point SlackNotifier(base_url=slack.url) at it
        clock.advance(1.0)         # refills the rate-limit buckets by one second's worth
        assert [m.text for m in slack.roots("C1")] == [...]

Rate limits use ``clock`` (seconds, monotonic; default :func:`time.monotonic`): tests that
need deterministic limits pass a :class:`ManualClock` and ``advance`` it instead of sleeping.
Message ``ts`` values come from ``wall`` (default :func:`time.time`), strictly increasing.

Deliberate strictness: a reply to an unknown ``thread_ts`` answers ``thread_not_found``
(real Slack is laxer), so orphan replies fail loudly in tests. Note that aiohttp's client may
transparently repeat an idempotent GET once after a dropped keep-alive connection, so a
``drop`` fault on a GET method can be consumed twice by one client call.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support.fake_server import Fault as CommonFault
from tests.support.fake_server import (
    FaultQueue,
    LocalServer,
    ManualClock,  # noqa: F401  (tests import it from here)
    Only,
    TokenBucket,
)

Params = dict[str, Any]
KNOWN_BLOCKS = frozenset(
    {"section", "header", "context", "divider", "actions", "image", "rich_text", "markdown"}
)
SCOPE_FOR = {
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "chat.delete": "chat:write",
    "conversations.history": "channels:history",
    "conversations.replies": "channels:history",
    "users.lookupByEmail": "users:read.email",
}
ALL_SCOPES = frozenset(SCOPE_FOR.values()) | {"users:read"}


@dataclass(frozen=True)
class Limits:
    """Slack's published limits: chat.postMessage ~1/s per channel with short bursts,
    chat.update ~50/min per workspace (Tier 3). ``enforce=False`` turns limiting off."""

    post_per_second: float = 1.0
    post_burst: int = 3
    updates_per_minute: float = 50.0
    update_burst: int = 5
    enforce: bool = True
    # Seconds (of the fake's clock) a request may arrive later than the client paced it and
    # still be judged at its paced time (``TokenBucket.late``).
    late: float = 0.0

    @classmethod
    def strict(cls) -> Limits:
        """No burst allowance at all: exactly the rate."""
        return cls(post_burst=1, update_burst=1)

    @classmethod
    def loose(cls) -> Limits:
        return cls(enforce=False)


@dataclass(frozen=True)
class Fault(CommonFault):
    """One programmed failure: ``http``, ``hang``, ``drop``, ``ratelimit`` (see
    :class:`tests.support.fake_server.Fault`); ``error``: HTTP 200
    ``{"ok": false, "error": ...}``; ``lost_answer``: the request IS carried out, but the answer
    never comes (the client times out not knowing it succeeded: the case metadata lookups exist
    for)."""

    error: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def lost_answer(cls) -> Fault:
        return cls("lost_answer")

    @classmethod
    def slack_error(cls, error: str, **extra: Any) -> Fault:
        return cls("error", status=200, error=error, extra=extra)


@dataclass(frozen=True)
class Version:
    text: str
    blocks: tuple[Mapping[str, Any], ...]
    metadata: Mapping[str, Any] | None


@dataclass
class Message:
    """A posted message; ``versions[0]`` as posted, the last one as it reads now."""

    channel: str
    ts: str
    thread_ts: str | None
    versions: list[Version]
    broadcast: bool = False  # a thread reply also shown in the channel (``reply_broadcast``)

    @property
    def text(self) -> str:
        return self.versions[-1].text

    @property
    def blocks(self) -> tuple[Mapping[str, Any], ...]:
        return self.versions[-1].blocks

    @property
    def metadata(self) -> Mapping[str, Any] | None:
        return self.versions[-1].metadata

    @property
    def edits(self) -> int:
        return len(self.versions) - 1


@dataclass(frozen=True)
class Channel:
    id: str
    archived: bool = False
    member: bool = True


@dataclass(frozen=True)
class Recorded:
    """One request as it arrived: proves which wire format the client used."""

    method: str
    http_method: str
    content_type: str
    params: Params


class SlackFailure(Exception):
    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error, self.extra = error, extra


class FakeSlack(LocalServer):
    path = "/api/"

    def __init__(
        self,
        *,
        token: str = "xoxb-fake-token",
        channels: Iterable[str | Channel] = ("C0123456789",),
        users: Mapping[str, str] | None = None,
        scopes: Iterable[str] = ALL_SCOPES,
        limits: Limits | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        team: str = "Fake Workspace",
        bot: str = "callbridge",
    ) -> None:
        super().__init__()
        self.token = token
        self.channels = {
            c.id: c for c in (c if isinstance(c, Channel) else Channel(c) for c in channels)
        }
        self.users = {e.lower(): u for e, u in (users or {}).items()}
        self.scopes = set(scopes)
        self.limits = limits or Limits()
        self.team, self.bot = team, bot
        self.calls: Counter[str] = Counter()
        self.ratelimited: Counter[str] = Counter()
        self.requests: list[Recorded] = []
        self._clock, self._wall = clock, wall
        self._messages: list[Message] = []
        self._faults: FaultQueue[Fault] = FaultQueue()
        self._post_buckets: dict[str, TokenBucket] = {}
        self._update_bucket: TokenBucket | None = None
        self._last_us = 0
        self.deleted: list[Message] = []  # messages removed with chat.delete

    # -- lifecycle -----------------------------------------------------------------------------

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/api/{method}", self._handle)

    # -- test controls and views ---------------------------------------------------------------

    def fail(self, method: str, fault: Fault, times: int = 1, *, only: Only | None = None) -> None:
        """The next ``times`` calls of ``method`` fail with ``fault``, after earlier faults;
        ``only``: just the calls whose parameters it accepts (others pass untouched)."""
        self._faults.add(method, fault, times, only)

    def down(self, status: int = 503) -> None:
        """Every method fails with HTTP ``status`` until :meth:`recover` (an outage)."""
        for method in self._methods:
            self.fail(method, Fault.http(status), times=1_000_000)

    def recover(self) -> None:
        """Forget every programmed fault: the next calls succeed."""
        self._faults.clear()

    def pending_faults(self, method: str) -> int:
        return self._faults.pending(method)

    def messages(self, channel: str | None = None) -> list[Message]:
        return [m for m in self._messages if channel is None or m.channel == channel]

    def roots(self, channel: str) -> list[Message]:
        return [m for m in self.messages(channel) if m.thread_ts is None]

    def replies(self, channel: str, root_ts: str) -> list[Message]:
        return [m for m in self.messages(channel) if m.thread_ts == root_ts]

    def message(self, channel: str, ts: str) -> Message | None:
        return next((m for m in self.messages(channel) if m.ts == ts), None)

    # -- HTTP ----------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        self.calls[method] += 1
        try:
            params = await _params(request)
        except ValueError:
            return _answer({"ok": False, "error": "invalid_json"})
        self.requests.append(Recorded(method, request.method, request.content_type, params))
        fault = self._faults.take((method,), params)
        if fault is not None:
            if fault.kind == "lost_answer" and method in self._methods:
                self._methods[method](self, params)
                fault = Fault.hang()
            return await self._fault(request, fault)
        handler = self._methods.get(method)
        if handler is None:
            return _answer({"ok": False, "error": "unknown_method"}, status=404)
        try:
            self._authorize(request, method)
            wait = self._limit(method, params)
            if wait:
                self.ratelimited[method] += 1
                return _answer(
                    {"ok": False, "error": "ratelimited"},
                    status=429,
                    headers={"Retry-After": str(max(1, math.ceil(wait)))},
                )
            return _answer({"ok": True, **handler(self, params)})
        except SlackFailure as failure:
            return _answer({"ok": False, "error": failure.error, **failure.extra})

    async def _fault(self, request: web.Request, fault: Fault) -> web.StreamResponse:
        common = await self.common_fault(request, fault)
        if common is not None:
            return common
        if fault.kind == "ratelimit":
            self.ratelimited[request.match_info["method"]] += 1
            return _answer(
                {"ok": False, "error": "ratelimited"},
                status=429,
                headers={"Retry-After": str(fault.retry_after)},
            )
        return _answer({"ok": False, "error": fault.error, **fault.extra})

    def _authorize(self, request: web.Request, method: str) -> None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            raise SlackFailure("not_authed")
        if header.removeprefix("Bearer ") != self.token:
            raise SlackFailure("invalid_auth")
        needed = SCOPE_FOR.get(method)
        if needed and needed not in self.scopes:
            raise SlackFailure("missing_scope", needed=needed, provided=",".join(self.scopes))

    def _limit(self, method: str, params: Params) -> float:
        if not self.limits.enforce:
            return 0.0
        now, lim = self._clock(), self.limits
        if method == "chat.postMessage":
            key = str(params.get("channel", ""))
            if key not in self._post_buckets:
                self._post_buckets[key] = TokenBucket(
                    lim.post_per_second, lim.post_burst, now, lim.late
                )
            return self._post_buckets[key].take(now)
        if method in ("chat.update", "chat.delete"):
            if self._update_bucket is None:
                per_s = lim.updates_per_minute / 60
                self._update_bucket = TokenBucket(per_s, lim.update_burst, now, lim.late)
            return self._update_bucket.take(now)
        return 0.0

    # -- methods -------------------------------------------------------------------------------

    def _auth_test(self, params: Params) -> Params:
        return {"url": "https://fake.slack.test/", "team": self.team, "user": self.bot}

    def _post(self, params: Params) -> Params:
        channel = self._channel(params, writing=True)
        version = _content(params, previous=None)
        thread_ts = params.get("thread_ts") or None
        if thread_ts is not None and not any(m.ts == thread_ts for m in self.roots(channel)):
            raise SlackFailure("thread_not_found")
        broadcast = thread_ts is not None and _flag(params.get("reply_broadcast"))
        message = Message(channel, self._next_ts(), thread_ts, [version], broadcast)
        self._messages.append(message)
        return {"channel": channel, "ts": message.ts, "message": self._render(message, True)}

    def _update(self, params: Params) -> Params:
        channel = self._channel(params, writing=True)
        message = self.message(channel, str(params.get("ts", "")))
        if message is None:
            raise SlackFailure("message_not_found")
        message.versions.append(_content(params, previous=message.versions[-1]))
        return {"channel": channel, "ts": message.ts, "text": message.text}

    def _delete(self, params: Params) -> Params:
        channel = self._channel(params, writing=True)
        message = self.message(channel, str(params.get("ts", "")))
        if message is None:
            raise SlackFailure("message_not_found")
        self._messages.remove(message)
        self.deleted.append(message)
        return {"channel": channel, "ts": message.ts}

    def _history(self, params: Params) -> Params:
        channel = self._channel(params, writing=False)
        listed = [m for m in reversed(self.roots(channel)) if _in_range(m, params)]
        return self._page(listed, params)

    def _replies(self, params: Params) -> Params:
        channel = self._channel(params, writing=False)
        root = next((m for m in self.roots(channel) if m.ts == params.get("ts")), None)
        if root is None:
            raise SlackFailure("thread_not_found")
        listed = [root, *(m for m in self.replies(channel, root.ts) if _in_range(m, params))]
        return self._page(listed, params)

    def _lookup(self, params: Params) -> Params:
        user = self.users.get(str(params.get("email", "")).lower())
        if user is None:
            raise SlackFailure("users_not_found")
        return {"user": {"id": user, "profile": {"email": params["email"]}}}

    _methods: Mapping[str, Callable[[FakeSlack, Params], Params]] = {
        "auth.test": _auth_test,
        "chat.postMessage": _post,
        "chat.update": _update,
        "chat.delete": _delete,
        "conversations.history": _history,
        "conversations.replies": _replies,
        "users.lookupByEmail": _lookup,
    }

    # -- helpers -------------------------------------------------------------------------------

    def _channel(self, params: Params, *, writing: bool) -> str:
        channel = self.channels.get(str(params.get("channel", "")))
        if channel is None:
            raise SlackFailure("channel_not_found")
        if writing and channel.archived:
            raise SlackFailure("is_archived")
        if not channel.member:
            raise SlackFailure("not_in_channel")
        return channel.id

    def _next_ts(self) -> str:
        self._last_us = max(int(self._wall() * 1_000_000), self._last_us + 1)
        return f"{self._last_us // 1_000_000}.{self._last_us % 1_000_000:06d}"

    def _page(self, listed: list[Message], params: Params) -> Params:
        start = int(params.get("cursor") or 0)
        limit = int(params.get("limit") or 100)
        page = listed[start : start + limit]
        more = start + limit < len(listed)
        metadata = str(params.get("include_all_metadata", "")).lower() in {"1", "true"}
        return {
            "messages": [self._render(m, metadata) for m in page],
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    def _render(self, message: Message, metadata: bool) -> Params:
        out: Params = {"type": "message", "ts": message.ts, "text": message.text}
        out |= {"blocks": list(message.blocks), "bot_id": "B0FAKEBOT", "user": "U0FAKEBOT"}
        if message.thread_ts is not None:
            out["thread_ts"] = message.thread_ts
        elif self.replies(message.channel, message.ts):
            out["thread_ts"] = message.ts
            out["reply_count"] = len(self.replies(message.channel, message.ts))
        if metadata and message.metadata is not None:
            out["metadata"] = dict(message.metadata)
        return out


async def _params(request: web.Request) -> Params:
    params: Params = dict(request.query)
    if request.method == "POST" and request.can_read_body:
        if request.content_type == "application/json":
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("JSON body is not an object")
            params |= body
        else:
            params |= dict(await request.post())
    return params


def _flag(value: Any) -> bool:
    """A boolean argument as Slack reads it: JSON ``true`` or the form values ``true``/``1``."""
    return value is True or str(value).lower() in {"true", "1"}


def _answer(
    body: Params, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.json_response(body, status=status, headers=headers)


def _json_field(value: Any, error: str) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise SlackFailure(error) from None
    return value


def _content(params: Params, previous: Version | None) -> Version:
    """The message content a post/update sets, validated as Slack does."""
    text = params.get("text")
    blocks = _json_field(params["blocks"], "invalid_blocks") if "blocks" in params else None
    if not text and not blocks and previous is None:
        raise SlackFailure("no_text")
    if blocks is not None:
        problems = _block_problems(blocks)
        if problems:
            raise SlackFailure("invalid_blocks", response_metadata={"messages": problems})
    if text is not None and len(str(text)) > 40_000:
        raise SlackFailure("msg_too_long")
    metadata = _json_field(params.get("metadata"), "invalid_metadata_format")
    if metadata is not None and not (
        isinstance(metadata, dict)
        and isinstance(metadata.get("event_type"), str)
        and isinstance(metadata.get("event_payload", {}), dict)
    ):
        raise SlackFailure("invalid_metadata_format")
    if previous is not None:  # chat.update keeps what it is not given
        text = previous.text if text is None else text
        blocks = list(previous.blocks) if blocks is None else blocks
        metadata = previous.metadata if metadata is None else metadata
    return Version(str(text or ""), tuple(blocks or ()), metadata)


def _block_problems(blocks: Any) -> list[str]:
    if not isinstance(blocks, list):
        return ["[ERROR] must be an array [json-pointer:/blocks]"]
    problems = []
    if len(blocks) > 50:
        problems.append("[ERROR] no more than 50 items allowed [json-pointer:/blocks]")
    for i, block in enumerate(blocks):
        at = f"/blocks/{i}"
        if not isinstance(block, dict) or block.get("type") not in KNOWN_BLOCKS:
            problems.append(f"[ERROR] unknown or missing block type [json-pointer:{at}]")
            continue
        kind = block["type"]
        if kind == "header":
            problems += _text_problems(block.get("text"), f"{at}/text", 150, plain=True)
        elif kind == "section":
            fields = block.get("fields") or []
            if "text" not in block and not fields:
                problems.append(f"[ERROR] must provide text or fields [json-pointer:{at}]")
            if "text" in block:
                problems += _text_problems(block["text"], f"{at}/text", 3000)
            if len(fields) > 10:
                problems.append(f"[ERROR] no more than 10 items allowed [json-pointer:{at}/fields]")
            for j, item in enumerate(fields):
                problems += _text_problems(item, f"{at}/fields/{j}", 2000)
        elif kind == "context" and len(block.get("elements") or []) > 10:
            problems.append(f"[ERROR] no more than 10 items allowed [json-pointer:{at}/elements]")
    return problems


def _text_problems(obj: Any, at: str, limit: int, *, plain: bool = False) -> list[str]:
    allowed = {"plain_text"} if plain else {"plain_text", "mrkdwn"}
    if not isinstance(obj, dict) or obj.get("type") not in allowed:
        return [f"[ERROR] must be a text object of type {' or '.join(allowed)} [json-pointer:{at}]"]
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        return [f"[ERROR] must be more than 0 characters [json-pointer:{at}/text]"]
    if len(text) > limit:
        return [f"[ERROR] must be less than {limit + 1} characters [json-pointer:{at}/text]"]
    return []


def _in_range(message: Message, params: Params) -> bool:
    ts = float(message.ts)
    inclusive = str(params.get("inclusive", "")).lower() in {"1", "true"}
    oldest = float(params.get("oldest") or 0)
    latest = float(params.get("latest") or "inf")
    low_ok = ts >= oldest if inclusive else ts > oldest
    high_ok = ts <= latest if inclusive else ts < latest
    return low_ok and high_ok
