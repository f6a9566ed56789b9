"""Delivery racing the store: a slot removed while its message is being posted."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from bridge.notify import MessageRef, OutgoingMessage
from tests.store import T0, consult_ringing, ringing, warm_transfer
from tests.support.harness import (
    FakeClock,
    RecordingNotifier,
    make_settings,
    recording_platforms,
    running_bridge,
)


@dataclass
class GatedNotifier(RecordingNotifier):
    """Holds the root post of ``story`` until ``release`` is set."""

    story: str = ""
    posting: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def post(
        self, channel: str, message: OutgoingMessage, *, thread: MessageRef | None = None
    ) -> MessageRef:
        meta = message.metadata.payload if message.metadata else {}
        if (meta.get("story"), meta.get("slot")) == (self.story, "root"):
            self.posting.set()
            await self.release.wait()
        return await super().post(channel, message, thread=thread)


async def test_a_root_merged_away_while_being_posted_is_deleted(tmp_path: Path) -> None:
    """The consult call's live message is being posted when the transfer merges it into the
    customer's story, whose thread already exists: the consult's message is wanted by no
    slot any more, so it is deleted instead of staying as a stray second message."""
    chat = GatedNotifier(story="consult")
    clock = FakeClock(T0)
    settings = make_settings(tmp_path)
    async with running_bridge(settings, clock=clock, platforms=recording_platforms(chat)) as (
        bridge,
        _client,
        _chat,
    ):
        assert bridge.delivery is not None

        async def store(event: object) -> None:
            added = await bridge.store.add_event(event, clock())  # type: ignore[arg-type]
            bridge.dispatcher.notify(added.story_id)
            await bridge.dispatcher.drained()

        await store(ringing("customer"))
        await bridge.delivery.settled()
        [customer_root] = [s for s in chat.sent if s.story == "customer" and s.slot == "root"]

        await store(consult_ringing("consult"))
        await chat.posting.wait()  # the consult's root post is in flight ...
        await store(warm_transfer("customer", "consult"))  # ... when the transfer merges it
        chat.release.set()
        await bridge.delivery.settled()

    [consult_root] = [s for s in chat.sent if s.story == "consult" and s.action == "post"]
    deleted = [s.message_id for s in chat.sent if s.action == "delete"]
    assert deleted == [consult_root.message_id]
    assert customer_root.message_id not in deleted
