"""Microsoft Teams as a :class:`bridge.notify.Notifier`: the Bot Connector REST API, on aiohttp.

Builds requests, calls once, classifies the outcome; never retries (delivery is the one retry
layer) and never renders (``bridge/render/teams.py`` builds the Adaptive Card). No SDK: the
four requests are plain JSON over the shared session with a bearer token from a
:class:`~bridge.notify.teams_auth.TokenProvider`.

- New thread (root message, missed alert, summary):
  ``POST {serviceUrl}/v3/conversations`` with ``isGroup``, ``channelData.channel.id`` and the
  ``activity``; Teams answers the new thread's conversation ``id``
  (``19:…@thread.tacv2;messageid=…``) and the root's ``activityId``.
- Reply: ``POST {serviceUrl}/v3/conversations/{thread conversation}/activities/{root id}``.
- Update: ``PUT {serviceUrl}/v3/conversations/{conversation}/activities/{activity id}``.
- Delete: ``DELETE`` the same URL (an activity that is already gone counts as deleted).

:class:`~bridge.notify.MessageRef` for Teams: ``channel`` is the *thread's* conversation id
(prefixed with ``"<service_url> "`` when the destination names its own service URL),
``ts_or_id`` the activity id, and ``thread`` the root's activity id for a reply (else None).
A slot's channel is the rules' ``conversation`` (the channel id), or
``"<service_url> <conversation>"`` for a destination with its own ``service_url``.

The Bot Connector cannot search a channel, so :meth:`TeamsNotifier.find` always answers None:
a crash between Teams' answer and the store's commit can leave a duplicate message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final
from urllib.parse import quote, urlencode

import aiohttp
import structlog

from bridge.notify import CallObserver, MessageRef, OutgoingMessage, ignore_call
from bridge.notify.calls import Calls
from bridge.notify.errors import (
    NotifyError,
    PermanentError,
)
from bridge.notify.teams_api import (
    PLATFORM,
    Created,
    Resource,
    activity_of,
    activity_url,
    classify,
    json_or_empty,
    message_id,
    parse,
    slash,
    split_channel,
)
from bridge.notify.teams_auth import TokenProvider

log = structlog.get_logger("bridge.notify.teams")

DEFAULT_SERVICE_URL: Final = "https://smba.trafficmanager.net/teams/"
NOT_FOUND: Final = "not_found"  # the code of a 404 (teams_api.classify)
_EMAIL: Final = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


class TeamsNotifier:
    """Bot Connector calls for the delivery layer. One instance per bot; cheap to create.

    ``service_url`` is the default Bot Connector endpoint (``TEAMS_SERVICE_URL``);
    ``tenant_id`` goes into new conversations and deep links; ``mention_emails``: treat the
    provider's ``user_emails`` as Microsoft Entra user principal names for ``<at>`` mentions
    (see :meth:`lookup_user`).
    """

    platform = PLATFORM

    def __init__(
        self,
        token_provider: TokenProvider,
        session: aiohttp.ClientSession,
        service_url: str = DEFAULT_SERVICE_URL,
        *,
        app_id: str = "",
        tenant_id: str | None = None,
        timeout: float = 10.0,
        on_call: CallObserver = ignore_call,
        mention_emails: bool = True,
    ) -> None:
        self._tokens = token_provider
        self._session = session
        self._service_url = slash(service_url)
        self._app_id = app_id
        self._tenant_id = tenant_id
        self._calls = Calls(
            platform=PLATFORM,
            on_call=on_call,
            timeout=timeout,
            service="the Bot Connector",
            setting="TEAMS_SERVICE_URL",
        )
        self._mention_emails = mention_emails

    # -- Notifier ------------------------------------------------------------------------------

    async def post(
        self, channel: str, message: OutgoingMessage, *, thread: MessageRef | None = None
    ) -> MessageRef:
        if thread is not None:
            return await self._reply(thread, message)
        service, conversation = self._split(channel)
        channel_data: dict[str, Any] = {"channel": {"id": conversation}}
        body: dict[str, Any] = {"isGroup": True, "channelData": channel_data}
        if self._tenant_id:
            channel_data["tenant"] = {"id": self._tenant_id}
            body["tenantId"] = self._tenant_id
        body["activity"] = activity_of(message)
        data = await self._call(
            "conversations.create",
            "POST",
            f"{service}v3/conversations",
            body,
            where=f" in channel {conversation}",
        )
        created = parse(data, Created, "conversations.create")
        activity = created.activityId or message_id(created.id)
        if not activity:
            raise PermanentError(
                "Teams conversations.create answered without an activity id; is "
                "TEAMS_SERVICE_URL a Bot Connector endpoint?",
                platform=PLATFORM,
                method="conversations.create",
                code="unexpected_response",
            )
        return MessageRef(PLATFORM, self._join(service, created.id), activity, None)

    async def update(self, ref: MessageRef, message: OutgoingMessage) -> None:
        service, conversation = self._split(ref.channel)
        body = activity_of(message) | {"id": ref.ts_or_id}
        await self._call(
            "activities.update",
            "PUT",
            activity_url(service, conversation, ref.ts_or_id),
            body,
            where=f" for message {ref.ts_or_id} in {conversation}",
        )

    async def delete(self, ref: MessageRef) -> None:
        service, conversation = self._split(ref.channel)
        try:
            await self._call(
                "activities.delete",
                "DELETE",
                activity_url(service, conversation, ref.ts_or_id),
                None,
                where=f" for message {ref.ts_or_id} in {conversation}",
            )
        except PermanentError as err:
            if err.code != "not_found":
                raise

    def link(self, ref: MessageRef) -> str | None:
        """A deep link that opens the thread (the root message) in Teams.

        Teams documents more query parameters (``groupId``, ``teamName``...); the channel id,
        message id, ``parentMessageId`` and ``tenantId`` are what we know and what it needs to
        find the message for a member of the team.
        """
        _service, conversation = self._split(ref.channel)
        channel_id = conversation.split(";", 1)[0]
        root = ref.thread or ref.ts_or_id
        if not channel_id or not root.isdigit():
            return None
        query = {"parentMessageId": root}
        if self._tenant_id:
            query["tenantId"] = self._tenant_id
        return (
            f"https://teams.microsoft.com/l/message/{quote(channel_id, safe='')}/"
            f"{quote(ref.ts_or_id, safe='')}?{urlencode(query)}"
        )

    async def find(
        self,
        channel: str,
        event_type: str,
        key: Mapping[str, str],
        oldest: datetime,
        *,
        thread: MessageRef | None = None,
    ) -> MessageRef | None:
        """Always None: the Bot Connector cannot list a channel's messages."""
        return None

    async def lookup_user(self, email: str) -> str | None:
        """The address itself, used as the user principal name of an ``<at>`` mention.

        Teams resolves a card mention by Entra object id or UPN; there is no lookup an app-only
        bot token may call, so this assumes people's e-mail addresses are their UPNs (true for
        most organisations). With ``mention_emails=False`` people are shown by name.
        """
        address = email.strip()
        if not self._mention_emails or not _EMAIL.match(address):
            return None
        return address

    async def verify(self) -> str:
        try:
            await self._tokens.token()
        except NotifyError as err:
            raise self._calls.failed("token", err, NOT_FOUND) from None
        self._calls.ok("token")
        who = f"bot {self._app_id}" if self._app_id else "bot"
        tenant = f" in tenant {self._tenant_id}" if self._tenant_id else ""
        return f"teams: {who}{tenant} (token OK)"

    # -- one call, classified ------------------------------------------------------------------

    async def _reply(self, thread: MessageRef, message: OutgoingMessage) -> MessageRef:
        service, conversation = self._split(thread.channel)
        root = thread.thread or thread.ts_or_id
        body = activity_of(message) | {"replyToId": root}
        data = await self._call(
            "activities.reply",
            "POST",
            activity_url(service, conversation, root),
            body,
            where=f" in thread {root} of {conversation}",
        )
        reply = parse(data, Resource, "activities.reply")
        if not reply.id:
            raise PermanentError(
                "Teams activities.reply answered without an id; is TEAMS_SERVICE_URL a Bot "
                "Connector endpoint?",
                platform=PLATFORM,
                method="activities.reply",
                code="unexpected_response",
            )
        return MessageRef(PLATFORM, thread.channel, reply.id, root)

    async def _call(
        self,
        method: str,
        http_method: str,
        url: str,
        body: Mapping[str, Any] | None,
        *,
        where: str,
    ) -> Any:
        try:
            token = await self._tokens.token()
        except NotifyError as err:
            raise self._calls.failed(method, err, NOT_FOUND) from None
        headers = {"Authorization": f"Bearer {token}"}
        async with (
            self._calls.attempt(method, where),
            self._session.request(http_method, url, json=body, headers=headers) as response,
        ):
            status = response.status
            text = await response.text()
            retry_after = response.headers.get("Retry-After")
        if 200 <= status < 300:
            self._calls.ok(method)
            return json_or_empty(text)
        failure = classify(method, status, text, retry_after, where)
        raise self._calls.failed(method, failure, NOT_FOUND)

    def _split(self, channel: str) -> tuple[str, str]:
        """``"<service_url> <conversation>"`` or ``"<conversation>"`` -> (service, conversation)."""
        service, conversation = split_channel(channel)
        return (slash(service) if service else self._service_url), conversation

    def _join(self, service: str, conversation: str) -> str:
        return conversation if service == self._service_url else f"{service} {conversation}"
