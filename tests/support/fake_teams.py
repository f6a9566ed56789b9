"""A local fake Microsoft Teams Bot Connector (aiohttp on 127.0.0.1, port 0), a fake
:class:`~bridge.notify.teams_auth.TokenProvider`, and a fake Microsoft Entra token endpoint for
msal's ``http_client`` hook (answered in-process: msal never opens a socket).

The Bot Connector fake speaks the four requests callbridge sends (create a channel thread,
reply in it, replace an activity, delete one), checks the bearer token, validates activities
as Teams does for what matters here (a ``summary``, Adaptive Card version <= 1.5, the whole
activity under 28 KB, mention entities that match their ``<at>`` text), records threads,
replies and every edit, enforces Teams' per-conversation limits (7 per second, 60 per 30 s,
1800 per hour; 429 with ``Retry-After``) on an injectable clock, and fails on demand::

    async with FakeTeams(channels=["19:abc@thread.tacv2"], clock=clock) as teams:
        teams.fail("create", Fault.http(503), times=2)
        ...     # TeamsNotifier(FakeTokens(teams.token), session, teams.url)
        assert [t.root.card for t in teams.threads("19:abc@thread.tacv2")] == [...]
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from aiohttp import web

from bridge.notify.errors import NotifyError
from tests.support.fake_server import Fault as CommonFault
from tests.support.fake_server import (
    FaultQueue,
    LocalServer,
    ManualClock,  # noqa: F401  (tests import it from here)
    SlidingWindows,
)

Kind = Literal["create", "reply", "update", "delete"]
MAX_ACTIVITY_BYTES = 28 * 1024
WINDOWS = ((1.0, 7), (30.0, 60), (3600.0, 1800))  # (seconds, requests) per conversation


@dataclass(frozen=True)
class Fault(CommonFault):
    """One programmed failure: ``http``, ``ratelimit``, ``hang``, ``drop`` (see
    :class:`tests.support.fake_server.Fault`), ``unauthorized`` (401 as if the token were bad)."""

    @classmethod
    def unauthorized(cls) -> Fault:
        return cls("unauthorized", status=401)


@dataclass
class Message:
    """A posted activity; ``versions[0]`` as posted, the last one as it reads now."""

    conversation: str  # the thread's conversation id (19:...;messageid=ROOT)
    id: str
    reply_to: str | None  # the root's activity id for a reply
    versions: list[Mapping[str, Any]]
    deleted: bool = False

    @property
    def activity(self) -> Mapping[str, Any]:
        return self.versions[-1]

    @property
    def card(self) -> Mapping[str, Any] | None:
        attachments = self.activity.get("attachments") or []
        return attachments[0]["content"] if attachments else None

    @property
    def summary(self) -> str:
        return str(self.activity.get("summary", ""))

    @property
    def edits(self) -> int:
        return len(self.versions) - 1

    def texts(self) -> list[str]:
        """Every TextBlock text and fact of the current card, in order."""
        return card_texts(self.card)


@dataclass
class Thread:
    channel: str
    root: Message
    replies: list[Message] = field(default_factory=list)

    @property
    def conversation(self) -> str:
        return self.root.conversation


@dataclass(frozen=True)
class Recorded:
    kind: str
    http_method: str
    path: str
    status: int
    body: Any = None


class FakeTeams(LocalServer):
    path = "/teams/"

    def __init__(
        self,
        *,
        token: str = "fake-bot-token",
        channels: Iterable[str] = ("19:abc@thread.tacv2",),
        not_installed: Iterable[str] = (),
        enforce_limits: bool = True,
        clock: Callable[[], float] = time.monotonic,
        first_id: int = 1_700_000_000_000,
    ) -> None:
        super().__init__()
        self.token = token
        self.channels = set(channels)
        self.not_installed = set(not_installed)
        self.enforce_limits = enforce_limits
        self.calls: Counter[str] = Counter()
        self.ratelimited: Counter[str] = Counter()
        self.requests: list[Recorded] = []
        self.rejected: list[str] = []  # validation problems answered with 400
        self._clock = clock
        self._next_id = first_id
        self._threads: list[Thread] = []
        self._faults: FaultQueue[Fault] = FaultQueue()
        self._windows: defaultdict[str, SlidingWindows] = defaultdict(
            lambda: SlidingWindows(WINDOWS)
        )

    # -- lifecycle -----------------------------------------------------------------------------

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/teams/v3/conversations", self._create)
        route = "/teams/v3/conversations/{conversation}/activities/{activity}"
        app.router.add_post(route, self._reply)
        app.router.add_put(route, self._update)
        app.router.add_delete(route, self._delete)

    # -- test controls and views ---------------------------------------------------------------

    def fail(self, kind: Kind | Literal["*"], fault: Fault, times: int = 1) -> None:
        """The next ``times`` requests of ``kind`` (or of any kind: ``"*"``) fail."""
        self._faults.add(kind, fault, times)

    def clear_faults(self) -> None:
        self._faults.clear()

    def pending_faults(self, kind: str) -> int:
        return self._faults.pending(kind)

    def threads(self, channel: str | None = None) -> list[Thread]:
        return [
            t
            for t in self._threads
            if (channel is None or t.channel == channel) and not t.root.deleted
        ]

    def deleted(self) -> list[Message]:
        return [m for t in self._threads for m in (t.root, *t.replies) if m.deleted]

    # -- HTTP ----------------------------------------------------------------------------------

    async def _create(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, "create")

    async def _reply(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, "reply")

    async def _update(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, "update")

    async def _delete(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, "delete")

    async def _handle(self, request: web.Request, kind: Kind) -> web.StreamResponse:
        self.calls[kind] += 1
        response = await self._answer(request, kind)
        try:
            body = json.loads(await request.read() or b"null")
        except ValueError:
            body = None
        self.requests.append(Recorded(kind, request.method, request.path, response.status, body))
        return response

    async def _answer(self, request: web.Request, kind: Kind) -> web.StreamResponse:
        raw = await request.read()
        fault = self._faults.take((kind, "*"))
        if fault is not None:
            return await self._fault(request, kind, fault)
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return _error(401, "", "Authorization has been denied for this request.")
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return _error(400, "BadSyntax", "the request body is not JSON")
        conversation = request.match_info.get("conversation", "")
        activity_id = request.match_info.get("activity", "")
        try:
            if kind == "create":
                channel = self._channel_of_create(body)
            else:
                channel = conversation.split(";", 1)[0]
                self._known_channel(channel)
            wait = self._limit(channel)
            if wait:
                self.ratelimited[kind] += 1
                return _error(429, "TooManyRequests", "rate limited", retry_after=wait)
            if kind == "create":
                return web.json_response(self._do_create(channel, body))
            if kind == "reply":
                return web.json_response(self._do_reply(conversation, activity_id, body))
            if kind == "update":
                return web.json_response(self._do_update(conversation, activity_id, body))
            self._do_delete(conversation, activity_id)
            return web.Response(status=200)
        except _Failure as failure:
            if failure.status == 400:
                self.rejected.append(failure.message)
            return _error(failure.status, failure.code, failure.message)

    async def _fault(self, request: web.Request, kind: str, fault: Fault) -> web.StreamResponse:
        common = await self.common_fault(request, fault)
        if common is not None:
            return common
        if fault.kind == "unauthorized":
            return _error(401, "", "Authorization has been denied for this request.")
        self.ratelimited[kind] += 1  # the one kind left: ratelimit
        return _error(429, "TooManyRequests", "rate limited", retry_after=fault.retry_after)

    # -- the methods ---------------------------------------------------------------------------

    def _channel_of_create(self, body: Any) -> str:
        if not isinstance(body, dict) or body.get("isGroup") is not True:
            raise _Failure(400, "BadArgument", "a channel thread needs isGroup: true")
        channel = (body.get("channelData") or {}).get("channel", {}).get("id")
        if not isinstance(channel, str):
            raise _Failure(400, "BadArgument", "channelData.channel.id is required")
        self._known_channel(channel)
        return channel

    def _known_channel(self, channel: str) -> None:
        if channel in self.not_installed:
            raise _Failure(403, "BotNotInConversationRoster", "The bot is not part of the team")
        if channel not in self.channels:
            raise _Failure(404, "ConversationNotFound", "Conversation not found.")

    def _do_create(self, channel: str, body: Mapping[str, Any]) -> dict[str, Any]:
        activity = _valid_activity(body.get("activity"))
        message_id = self._new_id()
        conversation = f"{channel};messageid={message_id}"
        self._threads.append(Thread(channel, Message(conversation, message_id, None, [activity])))
        return {"id": conversation, "activityId": message_id}

    def _do_reply(self, conversation: str, root_id: str, body: Any) -> dict[str, Any]:
        thread = self._thread(conversation)
        if thread.root.id != root_id:
            raise _Failure(404, "NotFound", "the activity to reply to was not found")
        reply = Message(conversation, self._new_id(), root_id, [_valid_activity(body)])
        thread.replies.append(reply)
        return {"id": reply.id}

    def _do_update(self, conversation: str, activity_id: str, body: Any) -> dict[str, Any]:
        message = self._message(conversation, activity_id)
        message.versions.append(_valid_activity(body))
        return {"id": activity_id}

    def _do_delete(self, conversation: str, activity_id: str) -> None:
        self._message(conversation, activity_id).deleted = True

    # -- helpers -------------------------------------------------------------------------------

    def _thread(self, conversation: str) -> Thread:
        for thread in self._threads:
            if thread.conversation == conversation and not thread.root.deleted:
                return thread
        raise _Failure(404, "ConversationNotFound", "Conversation not found.")

    def _message(self, conversation: str, activity_id: str) -> Message:
        channel = conversation.split(";", 1)[0]
        for thread in self._threads:
            if thread.channel != channel:
                continue
            for message in (thread.root, *thread.replies):
                if message.id == activity_id and not message.deleted:
                    return message
        raise _Failure(404, "NotFound", "Activity not found.")

    def _new_id(self) -> str:
        self._next_id += 1
        return str(self._next_id)

    def _limit(self, conversation: str) -> float:
        """0 when allowed (and counted), else the seconds until a request would be."""
        if not self.enforce_limits:
            return 0.0
        return self._windows[conversation].take(self._clock())


class _Failure(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _error(
    status: int, code: str, message: str, *, retry_after: float | None = None
) -> web.Response:
    headers = {}
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    body: dict[str, Any] = (
        {"error": {"code": code, "message": message}} if code else {"message": message}
    )
    return web.json_response(body, status=status, headers=headers)


def _valid_activity(activity: Any) -> Mapping[str, Any]:
    """The activity if Teams would accept it, else a 400 naming the problem."""
    if not isinstance(activity, dict) or activity.get("type") != "message":
        raise _Failure(400, "BadArgument", "activity.type must be 'message'")
    size = len(json.dumps(activity).encode())
    if size > MAX_ACTIVITY_BYTES:
        raise _Failure(413, "MessageSizeTooBig", f"activity is {size} bytes")
    if not isinstance(activity.get("summary"), str) or not activity["summary"].strip():
        raise _Failure(400, "BadArgument", "activity.summary is missing")
    attachments = activity.get("attachments") or []
    if not attachments and not activity.get("text"):
        raise _Failure(400, "BadArgument", "activity has neither text nor attachments")
    for attachment in attachments:
        problem = _card_problem(attachment)
        if problem:
            raise _Failure(400, "BadArgument", problem)
    return activity


def card_problem(card: Any) -> str | None:
    """Why Teams would refuse ``card`` as an Adaptive Card (None: it would take it), as in a
    posted activity or a bot's answer to an ``Action.Execute``."""
    return _card_problem(
        {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
    )


def _card_problem(attachment: Any) -> str | None:
    if not isinstance(attachment, dict):
        return "attachment is not an object"
    if attachment.get("contentType") != "application/vnd.microsoft.card.adaptive":
        return f"unexpected contentType {attachment.get('contentType')!r}"
    card = attachment.get("content")
    if not isinstance(card, dict) or card.get("type") != "AdaptiveCard":
        return "content.type must be 'AdaptiveCard'"
    try:
        version = tuple(int(x) for x in str(card.get("version", "")).split("."))
    except ValueError:
        return f"card version {card.get('version')!r} is not a version"
    if version > (1, 5):
        return f"card version {card.get('version')} is newer than Teams renders (1.5)"
    if not isinstance(card.get("body"), list) or not card["body"]:
        return "card body is empty"
    texts = "\n".join(card_texts(card))
    for entity in (card.get("msteams") or {}).get("entities") or []:
        mentioned = entity.get("mentioned") or {}
        if entity.get("type") != "mention" or not mentioned.get("id"):
            return "a mention entity needs type 'mention' and mentioned.id"
        if entity.get("text") not in texts:
            return f"mention text {entity.get('text')!r} does not occur in the card"
    return None


def card_texts(card: Mapping[str, Any] | None) -> list[str]:
    """Every TextBlock text and FactSet fact (``title: value``) of a card, in order."""
    out: list[str] = []
    for element in (card or {}).get("body") or []:
        if element.get("type") == "TextBlock":
            out.append(str(element.get("text", "")))
        elif element.get("type") == "FactSet":
            out += [f"{f.get('title')}: {f.get('value')}" for f in element.get("facts", [])]
    return out


# -- tokens ------------------------------------------------------------------------------------


class FakeTokens:
    """A :class:`~bridge.notify.teams_auth.TokenProvider` answering ``token``, or raising the
    error set with :meth:`fail_with` (until :meth:`recover`)."""

    def __init__(self, token: str = "fake-bot-token") -> None:
        self.current = token
        self.calls = 0
        self.error: NotifyError | None = None

    async def token(self) -> str:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return self.current

    def fail_with(self, error: NotifyError) -> None:
        self.error = error

    def recover(self, token: str | None = None) -> None:
        self.error = None
        if token is not None:
            self.current = token


@dataclass
class HttpAnswer:
    """What msal reads from an ``http_client`` answer."""

    status_code: int
    text: str
    headers: dict[str, str] = field(default_factory=dict)

    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            raise OSError(f"HTTP {self.status_code}")


INSTANCE_METADATA = {
    "tenant_discovery_endpoint": (
        "https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration"
    ),
    "api-version": "1.1",
    "metadata": [
        {
            "preferred_network": "login.microsoftonline.com",
            "preferred_cache": "login.windows.net",
            "aliases": ["login.microsoftonline.com", "login.windows.net", "login.microsoft.com"],
        }
    ],
}


class FakeEntra:
    """Microsoft Entra ID for msal's ``http_client`` hook: tenant discovery and the
    client-credentials token endpoint, answered in-process (no socket, no network).

    ``answers`` queues special answers for the token endpoint (an :class:`HttpAnswer`, or an
    exception to raise as if the network failed); otherwise a request with the right client
    id and secret gets a fresh token valid ``expires_in`` seconds.
    """

    HOST = "https://login.microsoftonline.com"

    def __init__(
        self,
        *,
        tenant: str,
        client_id: str,
        secret: str,
        expires_in: int = 3599,
    ) -> None:
        self.tenant, self.client_id, self.secret = tenant, client_id, secret
        self.expires_in = expires_in
        self.answers: deque[HttpAnswer | Exception] = deque()
        self.token_requests: list[dict[str, str]] = []
        self.discovery_requests = 0
        self.instance_requests = 0
        self.issued: list[str] = []

    def get(self, url: str, **kwargs: Any) -> HttpAnswer:
        parts = urlsplit(url)
        tenant = parts.path.strip("/").split("/")[0]
        if parts.path == "/common/discovery/instance":
            self.instance_requests += 1
            return _json_answer(200, INSTANCE_METADATA)
        if not parts.path.endswith("/.well-known/openid-configuration"):
            return HttpAnswer(404, "{}")
        self.discovery_requests += 1
        if tenant != self.tenant:
            return _json_answer(
                400,
                {
                    "error": "invalid_tenant",
                    "error_description": f"AADSTS90002: Tenant '{tenant}' not found.",
                },
            )
        base = f"{self.HOST}/{tenant}"
        return _json_answer(
            200,
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "issuer": f"https://login.microsoftonline.com/{tenant}/v2.0",
            },
        )

    def post(self, url: str, **kwargs: Any) -> HttpAnswer:
        data = kwargs.get("data") or {}
        if isinstance(data, (bytes, str)):
            parsed = parse_qs(data if isinstance(data, str) else data.decode())
            data = {k: v[0] for k, v in parsed.items()}
        self.token_requests.append({str(k): str(v) for k, v in data.items()})
        if self.answers:
            answer = self.answers.popleft()
            if isinstance(answer, Exception):
                raise answer
            return answer
        if not url.startswith(f"{self.HOST}/{self.tenant}/oauth2/v2.0/token"):
            return HttpAnswer(404, "{}")
        if data.get("client_id") != self.client_id:
            return _json_answer(
                400,
                {
                    "error": "unauthorized_client",
                    "error_description": f"AADSTS700016: Application with identifier "
                    f"'{data.get('client_id')}' was not found in the directory.",
                    "error_codes": [700016],
                },
            )
        if data.get("client_secret") != self.secret:
            return _json_answer(
                401,
                {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret provided.",
                    "error_codes": [7000215],
                },
            )
        token = f"bot-token-{len(self.issued) + 1}"
        self.issued.append(token)
        return _json_answer(
            200, {"token_type": "Bearer", "expires_in": self.expires_in, "access_token": token}
        )

    def close(self) -> None:
        return None


def _json_answer(status: int, body: Mapping[str, Any]) -> HttpAnswer:
    return HttpAnswer(status, json.dumps(body), {"Content-Type": "application/json"})
