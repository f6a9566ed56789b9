"""Slack as a :class:`bridge.notify.Notifier`: thin, on slack-sdk's ``AsyncWebClient``.

Builds requests, calls once, classifies the outcome (the answers' shapes and the
classification are in :mod:`bridge.notify.slack_api`). It never retries (slack-sdk's own retry
handlers are switched off: delivery is the one retry layer) and never renders.

Timeouts: slack-sdk applies its ``timeout`` only to sessions it creates itself, so with the
shared session each call is bounded here with :func:`asyncio.timeout`.
Proxies: the shared session decides (``trust_env``); slack-sdk's own reading of
``HTTPS_PROXY`` is overridden so one setting governs all HTTP.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import aiohttp
import structlog
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bridge.notify import CallObserver, MessageRef, OutgoingMessage, ignore_call
from bridge.notify.calls import Calls
from bridge.notify.errors import (
    AuthError,
    PermanentError,
)
from bridge.notify.slack_api import (
    PLATFORM,
    AuthTest,
    History,
    Posted,
    UserFound,
    classify,
    message_matches,
    metadata_of,
    parse,
)
from bridge.secret import Secret

log = structlog.get_logger("bridge.notify.slack")

DEFAULT_API_URL = "https://slack.com/api/"
USER_CACHE_MAX = 10_000  # e-mail addresses whose Slack user id (or absence) is remembered


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
        on_call: CallObserver = ignore_call,
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
        self._calls = Calls(
            platform=PLATFORM,
            on_call=on_call,
            timeout=timeout,
            service="the Slack API",
            setting="SLACK_API_URL",
        )
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
                metadata=metadata_of(message.metadata),
                thread_ts=thread_ts,
                reply_broadcast=True if message.broadcast and thread_ts else None,
                unfurl_links=False,
                unfurl_media=False,
            ),
            where=f" in channel {channel}",
        )
        posted = parse(data, Posted, "chat.postMessage")
        return MessageRef(PLATFORM, posted.channel, posted.ts, thread_ts)

    async def update(self, ref: MessageRef, message: OutgoingMessage) -> None:
        await self._call(
            "chat.update",
            lambda: self._client.chat_update(
                channel=ref.channel,
                ts=ref.ts_or_id,
                text=message.text,
                blocks=[dict(b) for b in message.blocks],  # [] clears old blocks
                metadata=metadata_of(message.metadata),
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
            page = parse(data, History, method)
            matches = [m for m in page.messages if message_matches(m, event_type, key, root)]
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
        user_id = parse(data, UserFound, "users.lookupByEmail").user.id
        self._remember(address, user_id, now + self._user_ttl)
        return user_id

    async def verify(self) -> str:
        data = await self._call("auth.test", self._client.auth_test)
        who = parse(data, AuthTest, "auth.test")
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
            async with self._calls.attempt(method, where):
                response = await send()
        except SlackApiError as exc:
            err = classify(method, exc.response, where)
            # `from None`: the SDK's error holds the request, token included
            raise self._calls.failed(method, err, not_found) from None
        self._calls.ok(method)
        data = response.data
        if not isinstance(data, dict):
            raise PermanentError(
                f"Slack {method} answered with a non-JSON body{where}",
                platform=PLATFORM,
                method=method,
                code="unexpected_response",
            )
        return data

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
        """Bounded at ``USER_CACHE_MAX`` addresses: when full, the expired ones go, then (all
        still fresh: many people in one hour) the oldest remembered."""
        if len(self._users) >= USER_CACHE_MAX:
            now = self._clock()
            self._users = {k: v for k, v in self._users.items() if v.expires > now}
            over = len(self._users) - USER_CACHE_MAX + 1
            for oldest in list(itertools.islice(self._users, max(over, 0))):
                del self._users[oldest]
        self._users.pop(address, None)  # remembered anew: the newest
        self._users[address] = _CachedUser(user_id, expires)
