"""Slack's side of a button click, for tests: a signed ``block_actions`` request as Slack
sends it to the interactivity Request URL, and a local server standing in for the payload's
``response_url`` (127.0.0.1, port 0) that records the ephemeral answers."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from itertools import count
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlencode

from aiohttp import web

from bridge.core.cases import ACTION_PREFIX, CaseRef, encode_ref

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"  # Slack's documented example shape
PATH = "/slack/interactions"
FORM = "application/x-www-form-urlencoded"
_action_ts = count(1)


def sign(body: bytes, timestamp: int, secret: str = SIGNING_SECRET) -> str:
    """Slack's request signature, computed here by hand (not by the code under test)."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def block_actions(
    action: str,
    ref: CaseRef | None,
    *,
    user_id: str = "U0ALICE",
    user: str = "alice",
    response_url: str | None = None,
    action_ts: str | None = None,
    value: str | None = None,
    action_id: str | None = None,
) -> dict[str, Any]:
    """A ``block_actions`` payload for one press of a case button (the fields Slack sends
    that the bridge reads, and a few it does not)."""
    pressed = {
        "type": "button",
        "block_id": "case",
        "action_id": action_id if action_id is not None else ACTION_PREFIX + action,
        "text": {"type": "plain_text", "text": action},
        "value": value if value is not None else encode_ref(ref) if ref else "",
        "action_ts": action_ts or f"1764000000.{next(_action_ts):06d}",
    }
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user_id, "username": user, "name": user, "team_id": "T0FAKE"},
        "api_app_id": "A0CALLBRIDGE",
        "team": {"id": "T0FAKE", "domain": "fake"},
        "container": {"type": "message", "channel_id": "C0123456789", "message_ts": "1.2"},
        "channel": {"id": "C0123456789", "name": "support"},
        "trigger_id": "1.2.abc",
        "actions": [pressed],
    }
    if response_url is not None:
        payload["response_url"] = response_url
    return payload


def form(payload: Mapping[str, Any] | str) -> bytes:
    text = payload if isinstance(payload, str) else json.dumps(payload)
    return urlencode({"payload": text}).encode()


def signed_headers(
    body: bytes, at: datetime, *, secret: str = SIGNING_SECRET, content_type: str = FORM
) -> dict[str, str]:
    timestamp = int(at.timestamp())
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": sign(body, timestamp, secret),
    }


@dataclass
class Answer:
    path: str
    body: dict[str, Any]


@dataclass
class ResponseUrls:
    """Stands in for Slack's ``response_url`` (``https://hooks.slack.com/actions/...``): a
    local server whose every POST is recorded. ``hold``: each POST waits for
    :meth:`release` before it is answered (and recorded); :attr:`arrived` is set when one
    came in."""

    hold: bool = False
    answers: list[Answer] = field(default_factory=list)
    base: str = ""
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _released: asyncio.Event = field(default_factory=asyncio.Event)
    _runner: web.AppRunner | None = None
    _next: count[int] = field(default_factory=lambda: count(1))

    def url(self) -> str:
        """A fresh response URL under :attr:`base`."""
        return f"{self.base}actions/T0FAKE/{next(self._next)}/token"

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_post("/actions/{rest:.*}", self._record)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        self.base = f"http://{host}:{port}/"
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()  # let held requests finish so shutdown does not wait on them
        if self._runner is not None:
            await self._runner.cleanup()

    def release(self) -> None:
        self._released.set()

    async def _record(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.arrived.set()
        if self.hold:
            await self._released.wait()
        self.answers.append(Answer(request.path, body))
        return web.Response(text="ok")

    def texts(self) -> list[str]:
        return [a.body["text"] for a in self.answers]
