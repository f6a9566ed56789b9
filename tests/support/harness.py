"""A real bridge (real store on disk, real HTTP on 127.0.0.1:0) for tests, with fakes only at
the edges: a recording sink instead of Slack/Teams and a controllable clock."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from bridge.deliver.delivery import Platform
from bridge.deliver.dispatcher import DispatchOptions
from bridge.notify import MessageRef, OutgoingMessage
from bridge.render.text import render as text_render
from bridge.secret import Secret
from bridge.service.app import Bridge
from bridge.service.chat import PlatformFactory
from bridge.service.settings import Settings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "voys"

MINIMAL_RULES = """\
version: 1
timezone: Europe/Amsterdam
destinations:
  support: {slack: {channel: C0123456789}}
routes:
  - name: everything
    live: support
    missed: support
"""


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class Sent:
    action: str  # post | update | delete
    channel: str
    message_id: str
    thread: str | None
    text: str
    story: str
    slot: str


@dataclass
class RecordingNotifier:
    """A chat platform that accepts everything and records it (a fake, not a mock)."""

    platform: str = "slack"
    sent: list[Sent] = field(default_factory=list)
    _next: int = 0

    async def post(
        self, channel: str, message: OutgoingMessage, *, thread: MessageRef | None = None
    ) -> MessageRef:
        self._next += 1
        root = None if thread is None else thread.ts_or_id
        ref = MessageRef(self.platform, channel, f"m{self._next}", root)
        self._record("post", ref, message)
        return ref

    async def update(self, ref: MessageRef, message: OutgoingMessage) -> None:
        self._record("update", ref, message)

    async def delete(self, ref: MessageRef) -> None:
        self.sent.append(Sent("delete", ref.channel, ref.ts_or_id, ref.thread, "", "", ""))

    def link(self, ref: MessageRef) -> str | None:
        return None

    async def find(self, *args: Any, **kwargs: Any) -> MessageRef | None:
        return None

    async def lookup_user(self, email: str) -> str | None:
        return None

    async def verify(self) -> str:
        return f"{self.platform}: recording fake"

    def _record(self, action: str, ref: MessageRef, message: OutgoingMessage) -> None:
        meta = message.metadata.payload if message.metadata else {}
        self.sent.append(
            Sent(
                action,
                ref.channel,
                ref.ts_or_id,
                ref.thread,
                message.text,
                meta.get("story", ""),
                meta.get("slot", ""),
            )
        )

    def for_story(self, story: str) -> list[Sent]:
        return [s for s in self.sent if s.story == story]


def recording_platforms(notifier: RecordingNotifier) -> PlatformFactory:
    def build(session: Any, metrics: Any) -> Mapping[str, Platform]:
        return {
            "slack": Platform(notifier, text_render),
            "teams": Platform(RecordingNotifier("teams"), text_render),
        }

    return build


def write_rules(tmp_path: Path, text: str = MINIMAL_RULES, name: str = "rules.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    base = Settings(
        rules=write_rules(tmp_path),
        store=f"sqlite:///{(tmp_path / 'bridge.db').as_posix().lstrip('/')}",
        webhook_token=Secret("s3cret-webhook-token"),
    )
    return replace(base, **overrides)


@asynccontextmanager
async def running_bridge(
    settings: Settings, clock: Callable[[], datetime] | None = None, **kwargs: Any
) -> AsyncIterator[tuple[Bridge, TestClient[Any, Any], RecordingNotifier]]:
    chat = RecordingNotifier()
    bridge = Bridge(
        settings,
        clock=clock or FakeClock(),
        platforms=kwargs.pop("platforms", recording_platforms(chat)),
        dispatch=kwargs.pop("dispatch", DispatchOptions(poll_interval=3600, janitor_interval=3600)),
        **kwargs,
    )
    assert await bridge.rules.reload(), bridge.rules.problems
    client = TestClient(TestServer(bridge.app, host="127.0.0.1", port=0))
    await client.start_server()
    try:
        yield bridge, client, chat
    finally:
        await client.close()


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def payload(**overrides: Any) -> dict[str, Any]:
    """A valid ringing notification; override any top-level field."""
    doc: dict[str, Any] = {
        "call_id": "abc-1700000000.1",
        "timestamp": "2026-11-24T12:00:00+00:00",
        "status": "ringing",
        "version": "v2",
        "direction": "inbound",
        "caller": {"number": "+31501234567", "name": "A", "account_number": None},
        "destination": {
            "number": "+31508009000",
            "targets": [{"number": "+31508009000", "name": "B", "account_number": 201}],
        },
    }
    doc.update(overrides)
    return doc


def body(**overrides: Any) -> bytes:
    return json.dumps(payload(**overrides)).encode()


def json_paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every node's path in a JSON document (keys and list indexes), the root's first: where
    the fuzzers mutate a provider payload."""
    found = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += json_paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            found += json_paths(value, (*prefix, index))
    return found
