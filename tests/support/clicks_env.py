"""A bridge with Slack interactivity on (the recording chat fake, a controllable clock) and
the local stand-in for Slack's response URLs: a missed call makes a callback case, and
people click its buttons through the real HTTP endpoint."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from bridge.core.cases import CaseKey, CaseRef, Click
from bridge.secret import Secret
from bridge.service.app import Bridge
from tests.support.harness import (
    FakeClock,
    RecordingNotifier,
    make_settings,
    payload,
    running_bridge,
)
from tests.support.slack_clicks import (
    PATH,
    SIGNING_SECRET,
    ResponseUrls,
    block_actions,
    form,
    signed_headers,
)

AUTH = {"Authorization": "Bearer s3cret-webhook-token"}
CALLER = "+31501234567"  # the customer (inbound caller in tests.support.harness.payload)
LINE = "+31508009000"
REF = CaseRef("default", CALLER, "miss-1")  # the case of the missed call "miss-1"
KEY = CaseKey("default", CALLER)
SETTLE = timedelta(seconds=10)  # past the dispatcher's missed-alert settle time (8 s)


def missed_call(call_id: str, at: datetime, caller: str = CALLER) -> list[dict[str, Any]]:
    """An inbound call nobody answered (rung 30 s)."""
    who = {"number": caller, "name": None, "account_number": None}
    return [
        payload(call_id=call_id, timestamp=at.isoformat(), caller=who),
        payload(
            call_id=call_id,
            status="ended",
            reason="no-answer",
            timestamp=(at + timedelta(seconds=30)).isoformat(),
            caller=who,
            destination={"number": LINE},
        ),
    ]


def callback_call(call_id: str, at: datetime, dialled: str, by: str) -> list[dict[str, Any]]:
    """A colleague calls the customer back (dialled as typed) and the customer answers."""
    colleague = {"number": "+31508009001", "name": by, "account_number": 201}
    callee = {"number": dialled, "name": None, "account_number": None}

    def event(status: str, seconds: int, **extra: Any) -> dict[str, Any]:
        return payload(
            call_id=call_id,
            status=status,
            direction="outbound",
            timestamp=(at + timedelta(seconds=seconds)).isoformat(),
            caller=colleague,
            **extra,
        )

    return [
        event("ringing", 0, destination={"number": dialled, "targets": [callee]}),
        event("in-progress", 5, destination={"number": dialled, "target": callee}),
        event("ended", 65, reason="completed", destination={"number": dialled}),
    ]


@dataclass
class World:
    bridge: Bridge
    client: TestClient[Any, Any]
    chat: RecordingNotifier
    clock: FakeClock
    responses: ResponseUrls

    async def send(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            response = await self.client.post(
                "/notifications", data=json.dumps(event), headers=AUTH
            )
            assert response.status == 200, await response.text()

    async def settle(self) -> None:
        """Everything stored is folded, planned messages sent, answers to clicks sent (a
        standby, which neither folds nor sends, only sends its answers).

        The clock moves on 10 s: a missed-call alert, and every change to it (a case's),
        waits the dispatcher's 8 s settle time before it is sent."""
        while self.bridge.leading:
            assert self.bridge.delivery is not None
            await self.bridge.dispatcher.drained()
            self.clock.advance(SETTLE)
            await self.bridge.delivery.settled()
            if not await self.bridge.store.dirty_stories():
                break
        await self.bridge.answers.idle()

    async def missed(self, call_id: str = "miss-1") -> CaseRef:
        """A missed call from CALLER, its alert posted: its case is open."""
        await self.send(missed_call(call_id, self.clock.now))
        await self.bridge.dispatcher.drained()
        self.clock.advance(timedelta(minutes=1) - SETTLE)  # the call ended 30 s in
        await self.settle()
        assert [s for s in self.chat.for_story(call_id) if s.slot == "missed"], "alert posted"
        return CaseRef("default", CALLER, call_id)

    def request(
        self, action: str, ref: CaseRef | None = REF, **kwargs: Any
    ) -> tuple[bytes, dict[str, str]]:
        """A click signed now, as Slack sends it; its response URL is the local stand-in."""
        kwargs.setdefault("response_url", self.responses.url())
        body = form(block_actions(action, ref, **kwargs))
        return body, signed_headers(body, self.clock.now)

    async def post(self, body: bytes, headers: dict[str, str]) -> ClientResponse:
        return await self.client.post(PATH, data=body, headers=headers)

    async def click(self, action: str, ref: CaseRef | None = REF, **kwargs: Any) -> ClientResponse:
        return await self.post(*self.request(action, ref, **kwargs))

    async def clicks(self) -> list[Click]:
        history = (await self.bridge.store.case_facts([KEY]))[KEY]
        return [f for f in history.facts if isinstance(f, Click)]


@asynccontextmanager
async def clicks_bridge(
    tmp_path: Path,
    *,
    signing_secret: str | None = SIGNING_SECRET,
    clock: FakeClock | None = None,
    responses: ResponseUrls | None = None,
    settings_extra: dict[str, Any] | None = None,
    **kwargs: Any,
) -> AsyncIterator[World]:
    """A bridge on ``tmp_path``'s store and rules (two bridges on one folder share them);
    ``clock`` and ``responses`` may be shared too; ``kwargs``: more arguments of Bridge."""
    clock = clock or FakeClock()
    secret = Secret(signing_secret) if signing_secret else None
    settings = make_settings(tmp_path, slack_signing_secret=secret, **(settings_extra or {}))
    async with AsyncExitStack() as stack:
        if responses is None:
            responses = await stack.enter_async_context(ResponseUrls())
        bridge, client, chat = await stack.enter_async_context(
            running_bridge(settings, clock=clock, slack_response_base=responses.base, **kwargs)
        )
        yield World(bridge, client, chat, clock, responses)
