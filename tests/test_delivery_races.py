"""Delivery racing the store: a slot removed while its message is being posted."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge.deliver.delivery import DeliveryOptions
from bridge.notify import MessageRef, OutgoingMessage, RetryableError
from tests.store import T0, consult_ringing, ringing, warm_transfer
from tests.support.harness import (
    FakeClock,
    RecordingNotifier,
    make_settings,
    recording_platforms,
    running_bridge,
    write_rules,
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


RULES_WITH_UNMATCHED = """\
version: 1
timezone: Europe/Amsterdam
destinations:
  support: {slack: {channel: C0123456789}}
  oncall: {slack: {channel: C0999999999}}
routes:
  - name: inbound
    when: {direction: inbound}
    live: support
unmatched: oncall
"""


@dataclass
class LostAnswerNotifier(GatedNotifier):
    """Posts the root of ``story`` when released, but loses the answer (a timeout after
    Slack carried it out); finds messages by their metadata, as Slack's history lookup does."""

    async def post(
        self, channel: str, message: OutgoingMessage, *, thread: MessageRef | None = None
    ) -> MessageRef:
        ref = await super().post(channel, message, thread=thread)
        meta = message.metadata.payload if message.metadata else {}
        if (meta.get("story"), meta.get("slot")) == (self.story, "root"):
            raise RetryableError("timed out", platform="slack", method="post", code="timeout")
        return ref

    async def find(self, channel: str, event_type: str, key: Any, oldest: Any, **kw: Any) -> Any:
        for sent in self.sent:
            found = (sent.channel, sent.story, sent.slot) == (channel, key["story"], key["slot"])
            if sent.action == "post" and found:
                return MessageRef("slack", sent.channel, sent.message_id, sent.thread)
        return None


async def test_a_withdrawn_message_whose_post_answer_was_lost_is_found_and_deleted(
    tmp_path: Path,
) -> None:
    """The consult leg's live message (an unmatched internal call) is being posted, and its
    answer will be lost, when the transfer shows it is the customer's call, which does not go
    to that channel: the message that may exist is looked up and deleted."""
    chat = LostAnswerNotifier(story="consult")
    clock = FakeClock(T0)
    settings = make_settings(
        tmp_path, rules=write_rules(tmp_path, RULES_WITH_UNMATCHED, name="r.yaml")
    )
    async with running_bridge(
        settings,
        clock=clock,
        platforms=recording_platforms(chat),
        delivery=DeliveryOptions(base_backoff=0.0),  # retries are due at once (frozen clock)
    ) as (bridge, _client, _chat):
        assert bridge.delivery is not None

        async def store(event: object) -> None:
            added = await bridge.store.add_event(event, clock())  # type: ignore[arg-type]
            bridge.dispatcher.notify(added.story_id)
            await bridge.dispatcher.drained()

        await store(consult_ringing("consult"))
        await chat.posting.wait()  # the consult's root post is in flight ...
        await store(ringing("customer", 0))
        await store(warm_transfer("customer", "consult"))  # ... when it is withdrawn
        chat.release.set()  # the post is carried out, its answer lost
        await bridge.delivery.settled()

    oncall = "C0999999999"
    [lost] = [s for s in chat.sent if s.channel == oncall and s.action == "post"]
    deleted = [s.message_id for s in chat.sent if s.action == "delete" and s.channel == oncall]
    assert deleted == [lost.message_id]
