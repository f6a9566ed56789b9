"""Slack as a :class:`bridge.notify.Notifier`: thin, on slack-sdk's ``AsyncWebClient``.

Builds requests, calls once, classifies the outcome. It never retries (slack-sdk's own retry
handlers are switched off: delivery is the one retry layer) and never renders.

Timeouts: slack-sdk applies its ``timeout`` only to sessions it creates itself, so with the
shared session each call is bounded here with :func:`asyncio.timeout`.
Proxies: the shared session decides (``trust_env``); slack-sdk's own reading of
``HTTPS_PROXY`` is overridden so one setting governs all HTTP.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, Literal, Protocol, TypeVar

import aiohttp
import msgspec
import structlog
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bridge.notify import MessageMetadata, MessageRef, OutgoingMessage
from bridge.notify.errors import (
    AuthError,
    NotifyError,
    PermanentError,
    RetryableError,
    transport_error,
)
from bridge.settings import Secret

log = structlog.get_logger("bridge.notify.slack")

PLATFORM = "slack"
DEFAULT_API_URL = "https://slack.com/api/"

CallResult = Literal["ok", "not_found", "ratelimited", "retryable", "permanent", "auth"]


class CallObserver(Protocol):
    """Told about every API call's outcome (e.g. to count it in Prometheus)."""

    def __call__(self, method: str, result: CallResult) -> None: ...


def _ignore_call(method: str, result: CallResult) -> None:
    return None


# Slack error strings that mean "try again later" even with HTTP 200.
RETRYABLE_CODES = frozenset(
    {"ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable"}
    | {"request_timeout", "team_added_to_org"}
)
AUTH_CODES = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"}
    | {"missing_scope", "no_permission", "not_allowed_token_type", "ekm_access_denied"}
    | {"team_access_not_granted", "org_login_required"}
)
_RENDER_BUG = (
    "the rendered message was rejected; this is a callbridge rendering bug, "
    "please report it with this log line"
)
_HINTS: Mapping[str, str] = {
    "channel_not_found": (
        "the channel does not exist or the app cannot see it (private channel?): check the "
        "channel id in the rules file and invite the app to the channel"
    ),
    "not_in_channel": "the app is not a member of the channel: invite it with /invite @app",
    "is_archived": "the channel is archived: unarchive it or point the rules file elsewhere",
    "message_not_found": "the message was deleted or never existed; a new one will be needed",
    "cant_update_message": "the message was not posted by this app and cannot be edited",
    "thread_not_found": "the thread's first message was deleted or never existed",
    "invalid_blocks": _RENDER_BUG,
    "invalid_blocks_format": _RENDER_BUG,
    "msg_too_long": _RENDER_BUG,
    "no_text": _RENDER_BUG,
    "invalid_arguments": _RENDER_BUG,
    "invalid_metadata_format": _RENDER_BUG,
    "invalid_metadata_schema": _RENDER_BUG,
}
_AUTH_HINT = (
    "the Slack bot token is invalid, revoked or its app was removed: set SLACK_BOT_TOKEN "
    "(or the slack-bot-token credential) to the app's current xoxb- token"
)


# -- the parts of Slack's answers that we read -----------------------------------------------


class _Posted(msgspec.Struct):
    channel: str
    ts: str


class _Metadata(msgspec.Struct):
    event_type: str = ""
    event_payload: dict[str, Any] = msgspec.field(default_factory=dict)


class _Message(msgspec.Struct):
    ts: str
    thread_ts: str | None = None
    metadata: _Metadata | None = None


class _Cursor(msgspec.Struct):
    next_cursor: str = ""


class _History(msgspec.Struct):
    messages: list[_Message] = msgspec.field(default_factory=list)
    has_more: bool = False
    response_metadata: _Cursor | None = None


class _User(msgspec.Struct):
    id: str


class _UserFound(msgspec.Struct):
    user: _User


class _AuthTest(msgspec.Struct):
    user: str = "?"
    team: str = "?"
    url: str = ""


_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class _CachedUser:
    user_id: str | None
    expires: float


class SlackNotifier:
    """Slack Web API calls for the delivery layer. One instance per token; cheap to create."""

    platform = PLATFORM

    def __init__(
        self,
        *,
        token: Secret,
        session: aiohttp.ClientSession,
        base_url: str = DEFAULT_API_URL,
        timeout: float = 10.0,
        on_call: CallObserver = _ignore_call,
        clock: Callable[[], float] = time.monotonic,
        user_ttl: float = 3600.0,
        missing_user_ttl: float = 600.0,
        history_pages: int = 3,
        history_page_size: int = 200,
    ) -> None:
        self._client = AsyncWebClient(
            token=token.reveal(),
            base_url=base_url,
            session=session,
            timeout=math.ceil(timeout),
            retry_handlers=[],
        )
        self._client.proxy = None  # the shared session's settings decide
        self._timeout = timeout
        self._on_call = on_call
        self._clock = clock
        self._user_ttl = user_ttl
        self._missing_user_ttl = missing_user_ttl
        self._history_pages = history_pages
        self._history_page_size = history_page_size
        self._users: dict[str, _CachedUser] = {}
        self._cannot: set[str] = set()  # methods whose scope the token lacks
        self._workspace_url = ""  # from auth.test, for permalinks

    # -- Notifier ------------------------------------------------------------------------------

    async def post(
        self, channel: str, message: OutgoingMessage, *, thread: MessageRef | None = None
    ) -> MessageRef:
        thread_ts = None if thread is None else (thread.thread or thread.ts_or_id)
        data = await self._call(
            "chat.postMessage",
            lambda: self._client.chat_postMessage(
                channel=channel,
                text=message.text,
                blocks=[dict(b) for b in message.blocks] or None,
                metadata=_metadata(message.metadata),
                thread_ts=thread_ts,
                unfurl_links=False,
                unfurl_media=False,
            ),
            where=f" in channel {channel}",
        )
        posted = _parse(data, _Posted, "chat.postMessage")
        return MessageRef(PLATFORM, posted.channel, posted.ts, thread_ts)

    async def update(self, ref: MessageRef, message: OutgoingMessage) -> None:
        await self._call(
            "chat.update",
            lambda: self._client.chat_update(
                channel=ref.channel,
                ts=ref.ts_or_id,
                text=message.text,
                blocks=[dict(b) for b in message.blocks],  # [] clears old blocks
                metadata=_metadata(message.metadata),
            ),
            where=f" for message {ref.ts_or_id} in channel {ref.channel}",
        )

    async def delete(self, ref: MessageRef) -> None:
        try:
            await self._call(
                "chat.delete",
                lambda: self._client.chat_delete(channel=ref.channel, ts=ref.ts_or_id),
                where=f" for message {ref.ts_or_id} in channel {ref.channel}",
                not_found="message_not_found",
            )
        except PermanentError as err:
            if err.code != "message_not_found":
                raise

    def link(self, ref: MessageRef) -> str | None:
        """The message's permalink (known once :meth:`verify` has seen the workspace URL)."""
        if not self._workspace_url:
            return None
        path = f"archives/{ref.channel}/p{ref.ts_or_id.replace('.', '')}"
        if ref.thread:
            path += f"?thread_ts={ref.thread}&cid={ref.channel}"
        return self._workspace_url + path

    async def find(
        self,
        channel: str,
        event_type: str,
        key: Mapping[str, str],
        oldest: datetime,
        *,
        thread: MessageRef | None = None,
    ) -> MessageRef | None:
        if oldest.tzinfo is None:
            raise ValueError("find(oldest=...) needs a time-zone aware datetime")
        method = "conversations.history" if thread is None else "conversations.replies"
        if method in self._cannot:
            return None
        root = None if thread is None else (thread.thread or thread.ts_or_id)
        cursor: str | None = None
        for _ in range(self._history_pages):
            try:
                data = await self._call(
                    method,
                    partial(self._history, channel, root, oldest, cursor),
                    where=f" in channel {channel}",
                )
            except AuthError as err:
                if err.code != "missing_scope":
                    raise
                self._cannot_use(method, err)
                return None
            except PermanentError as err:
                if err.code == "thread_not_found":
                    return None  # no root, so no reply either
                raise
            page = _parse(data, _History, method)
            matches = [m for m in page.messages if _matches(m, event_type, key, root)]
            if matches:
                found = max(matches, key=lambda m: float(m.ts))
                return MessageRef(PLATFORM, channel, found.ts, root)
            cursor = page.response_metadata.next_cursor if page.response_metadata else ""
            if not page.has_more or not cursor:
                return None
        log.warning(
            "slack.find_gave_up",
            channel=channel,
            event_type=event_type,
            pages=self._history_pages,
            hint="more messages since `oldest` than searched; a duplicate post is possible",
        )
        return None

    async def lookup_user(self, email: str) -> str | None:
        address = email.strip().lower()
        now = self._clock()
        cached = self._users.get(address)
        if cached is not None and cached.expires > now:
            return cached.user_id
        if "users.lookupByEmail" in self._cannot:
            return None
        try:
            data = await self._call(
                "users.lookupByEmail",
                lambda: self._client.users_lookupByEmail(email=address),
                not_found="users_not_found",
            )
        except PermanentError as err:
            if err.code != "users_not_found":
                raise
            self._remember(address, None, now + self._missing_user_ttl)
            return None
        except AuthError as err:
            if err.code != "missing_scope":
                raise
            self._cannot_use("users.lookupByEmail", err)
            return None
        user_id = _parse(data, _UserFound, "users.lookupByEmail").user.id
        self._remember(address, user_id, now + self._user_ttl)
        return user_id

    async def verify(self) -> str:
        data = await self._call("auth.test", self._client.auth_test)
        who = _parse(data, _AuthTest, "auth.test")
        if who.url.startswith("https://") or who.url.startswith("http://"):
            self._workspace_url = who.url if who.url.endswith("/") else who.url + "/"
        return f"slack: bot @{who.user} in workspace {who.team}"

    # -- one call, classified ------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        send: Callable[[], Awaitable[AsyncSlackResponse]],
        *,
        where: str = "",
        not_found: str | None = None,
    ) -> dict[str, Any]:
        try:
            async with asyncio.timeout(self._timeout):
                response = await send()
        except SlackApiError as exc:
            err = classify(method, exc.response, where)
            self._observe(method, err, not_found)
            raise err from None  # the SDK's error holds the request, token included
        except (TimeoutError, aiohttp.ClientError) as exc:
            self._on_call(method, "retryable")
            raise transport_error(
                exc,
                platform=PLATFORM,
                method=method,
                timeout=self._timeout,
                where=where,
                service="the Slack API",
                setting="SLACK_API_URL",
            ) from None
        self._on_call(method, "ok")
        data = response.data
        if not isinstance(data, dict):
            raise PermanentError(
                f"Slack {method} answered with a non-JSON body{where}",
                platform=PLATFORM,
                method=method,
                code="unexpected_response",
            )
        return data

    def _observe(self, method: str, err: NotifyError, not_found: str | None) -> None:
        if isinstance(err, RetryableError):
            self._on_call(method, "ratelimited" if err.code == "ratelimited" else "retryable")
        elif isinstance(err, AuthError):
            self._on_call(method, "auth")
        else:
            self._on_call(method, "not_found" if err.code == not_found else "permanent")

    def _history(
        self, channel: str, root: str | None, oldest: datetime, cursor: str | None
    ) -> Awaitable[AsyncSlackResponse]:
        since = f"{oldest.timestamp():.6f}"
        if root is None:
            return self._client.conversations_history(
                channel=channel,
                oldest=since,
                inclusive=True,
                include_all_metadata=True,
                limit=self._history_page_size,
                cursor=cursor,
            )
        return self._client.conversations_replies(
            channel=channel,
            ts=root,
            oldest=since,
            inclusive=True,
            include_all_metadata=True,
            limit=self._history_page_size,
            cursor=cursor,
        )

    def _cannot_use(self, method: str, err: AuthError) -> None:
        if method not in self._cannot:
            self._cannot.add(method)
            log.warning(
                "slack.method_unavailable",
                method=method,
                needed=err.needed,
                hint=f"add the {err.needed or 'missing'} scope to the Slack app and reinstall "
                "it; until then this lookup is skipped",
            )

    def _remember(self, address: str, user_id: str | None, expires: float) -> None:
        if len(self._users) >= 10_000:
            now = self._clock()
            self._users = {k: v for k, v in self._users.items() if v.expires > now}
        self._users[address] = _CachedUser(user_id, expires)


def classify(method: str, response: Any, where: str = "") -> NotifyError:
    """Turn a failed Slack answer (an ``AsyncSlackResponse``, or the raw aiohttp response when
    the body was not JSON) into the typed error the delivery layer acts on."""
    status = getattr(response, "status_code", None) or getattr(response, "status", 0) or 0
    raw = getattr(response, "data", None)
    body: Mapping[str, Any] = raw if isinstance(raw, dict) else {}
    code = str(body.get("error") or f"http_{status}")
    if status == 429 or code in {"ratelimited", "rate_limited"}:
        headers = getattr(response, "headers", None) or {}
        retry_after = _seconds(headers.get("Retry-After"))
        wait = "" if retry_after is None else f" (Retry-After: {retry_after:g} s)"
        return RetryableError(
            f"Slack rate-limited {method}{where}{wait}; will retry",
            platform=PLATFORM,
            method=method,
            code="ratelimited",
            retry_after=retry_after,
        )
    if status >= 500 or code in RETRYABLE_CODES:
        return RetryableError(
            f"Slack {method} failed{where}: {code} (HTTP {status}), a problem on Slack's side; "
            "will retry",
            platform=PLATFORM,
            method=method,
            code=code,
        )
    if code in AUTH_CODES:
        needed = body.get("needed")
        needed = needed if isinstance(needed, str) else None
        hint = (
            f"the Slack app lacks the {needed or 'required'} scope: add it under OAuth & "
            "Permissions and reinstall the app"
            if code == "missing_scope"
            else _AUTH_HINT
        )
        return AuthError(
            f"Slack {method} refused the credentials{where}: {code}; {hint}",
            platform=PLATFORM,
            method=method,
            code=code,
            needed=needed,
        )
    meta = body.get("response_metadata")
    details = meta.get("messages") if isinstance(meta, dict) else None
    said = f" (Slack says: {'; '.join(map(str, details))})" if details else ""
    hint = _HINTS.get(code, "Slack will reject this request again; not retrying")
    return PermanentError(
        f"Slack {method} rejected the request{where}: {code}{said}; {hint}",
        platform=PLATFORM,
        method=method,
        code=code,
    )


def _seconds(value: object) -> float | None:
    try:
        seconds = float(str(value))
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _metadata(meta: MessageMetadata | None) -> dict[str, Any] | None:
    if meta is None:
        return None
    return {"event_type": meta.event_type, "event_payload": dict(meta.payload)}


def _matches(message: _Message, event_type: str, key: Mapping[str, str], root: str | None) -> bool:
    if root is not None and message.ts == root:
        return False  # conversations.replies lists the root first
    meta = message.metadata
    if meta is None or meta.event_type != event_type:
        return False
    return all(meta.event_payload.get(k) == v for k, v in key.items())


def _parse(data: dict[str, Any], into: type[_T], method: str) -> _T:
    try:
        return msgspec.convert(data, type=into)
    except msgspec.ValidationError as exc:
        raise PermanentError(
            f"Slack {method} answered in an unexpected shape ({exc}); is SLACK_API_URL a "
            "Slack Web API?",
            platform=PLATFORM,
            method=method,
            code="unexpected_response",
        ) from None
