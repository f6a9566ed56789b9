"""Delivery waits instead of polling (issue 17): it reads the store only when something can
be sent (the earliest due time, a pacing token, a wake-up from the dispatcher or a finished
send), and then only the few rows it will send. Counted on a wrapped store while awaiting a
condition (every message delivered), on a compressed clock."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bridge.deliver.delivery import DeliveryOptions, Platform
from bridge.deliver.dispatcher import DispatchOptions
from bridge.render.text import render as text_render
from bridge.service.chat import PlatformFactory
from bridge.store import Outgoing, Store
from bridge.store.sqlite import SqliteStore
from tests.store import answered, ended, ringing
from tests.support.harness import RecordingNotifier, make_settings, running_bridge
from tests.support.slack_env import ScaledTime, slack_bridge
from tests.test_delivery_priority import answered as answered_payload
from tests.test_delivery_priority import ended as ended_payload
from tests.test_delivery_priority import ringing as ringing_payload


class ReadCountingStore:
    """A store that counts delivery's reads (``due``: calls and rows handed out)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.due_calls = 0
        self.due_rows = 0
        self.attempt_marks = 0

    async def due(self, *args: Any, **kwargs: Any) -> list[Outgoing]:
        found = await self._store.due(*args, **kwargs)
        self.due_calls += 1
        self.due_rows += len(found)
        return found

    async def begin_attempt(self, *args: Any, **kwargs: Any) -> None:
        await self._store.begin_attempt(*args, **kwargs)
        self.attempt_marks += 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def sqlite_store(tmp_path: Path) -> ReadCountingStore:
    return ReadCountingStore(SqliteStore(tmp_path / "counted.db"))


async def test_nothing_due_until_the_alert_settles_means_no_reads(tmp_path: Path) -> None:
    """A missed call: its live message and thread go at once, its alert 2000 s later (the
    settle time). In between nothing is due, and the loop sleeps until the alert's time
    instead of looking every few seconds (the old loop: 5 s polls, some 80 reads here)."""
    scale = 1000.0  # 2000 s of the bridge's clock in 2 s
    time = ScaledTime(scale)
    store = sqlite_store(tmp_path)
    async with running_bridge(
        make_settings(tmp_path),
        clock=time.wall,
        store=store,
        delivery=DeliveryOptions(time_scale=scale),
        dispatch=DispatchOptions(
            poll_interval=3600, janitor_interval=3600, missed_settle=timedelta(seconds=2000)
        ),
    ) as (bridge, _client, chat):
        assert bridge.delivery is not None
        for event in (ringing("missed-1"), ended("missed-1", 30, reason="no-answer")):
            added = await bridge.store.add_event(event, time.wall())
            bridge.dispatcher.notify(added.story_id)
        await bridge.dispatcher.drained()
        await bridge.delivery.settled()  # the condition: the alert is posted too

    assert [s.slot for s in chat.sent if s.slot == "missed"] == ["missed"]
    # a round for each plan and each finished send (root, replies, alert), none in between
    assert store.due_calls <= 15, store.due_calls


async def test_a_backlog_held_back_by_pacing_is_not_read_again_on_every_wake(
    tmp_path: Path,
) -> None:
    """Thirty live messages wait for their edit on Slack's update budget (40 a minute) while
    the dispatcher keeps waking delivery with new plans: delivery reads only the head of what
    it can send (a lane whose budget is spent not at all), not windows of 25 every round."""
    store = sqlite_store(tmp_path)
    async with slack_bridge(tmp_path, scale=100.0, store=store) as env:
        assert env.bridge.delivery is not None
        start = env.time.wall()
        calls = [f"call-{n:02d}" for n in range(30)]
        for n, call in enumerate(calls):
            assert await env.send(ringing_payload(call, start + timedelta(seconds=n / 10)))
        await env.settle()
        before_calls, before_rows = store.due_calls, store.due_rows
        requests_before = len(env.slack.requests)

        later = env.time.wall()
        for call in calls:
            assert await env.send(answered_payload(call, later)) == "accepted"
        # More plans while the edits wait (each wakes delivery): the calls end one by one.
        for n, call in enumerate(calls):
            await env.time.sleep(1.0)  # (the provider's pace, not synchronisation)
            when = later + timedelta(seconds=n + 1)
            assert await env.send(ended_payload(call, when)) == "accepted"
        await env.settle()

        sent = [r.method for r in env.slack.requests[requests_before:]]
        assert sent.count("chat.update") >= len(calls)  # the answered and ended states
        sends = sum(m in ("chat.postMessage", "chat.update", "chat.delete") for m in sent)
        rows = store.due_rows - before_rows
        # One send per channel at a time, chosen from the head of its two lanes: at most two
        # rows per lane and send (the old loop read windows of 25 in every round).
        assert rows <= 4 * sends, (rows, sends, store.due_calls - before_calls)


async def test_answered_call_is_delivered_with_the_counting_store(tmp_path: Path) -> None:
    """(The wrapper itself changes nothing: a plain call ends in its final state.)"""
    store = sqlite_store(tmp_path)
    async with running_bridge(make_settings(tmp_path), store=store) as (bridge, _client, chat):
        assert bridge.delivery is not None
        for event in (ringing("a-1"), answered("a-1")):
            added = await bridge.store.add_event(event, bridge.clock())
            bridge.dispatcher.notify(added.story_id)
        await bridge.dispatcher.drained()
        await bridge.delivery.settled()
    assert [s.action for s in chat.sent if s.slot == "root"][:1] == ["post"]


def platforms_that_cannot_find(chat: RecordingNotifier) -> PlatformFactory:
    def build(session: Any, metrics: Any) -> Mapping[str, Platform]:
        return {
            "slack": Platform(chat, text_render, finds=False),
            "teams": Platform(RecordingNotifier("teams"), text_render, finds=False),
        }

    return build


@pytest.mark.parametrize("finds", [True, False])
async def test_the_mark_before_a_post_is_written_only_where_a_lookup_can_use_it(
    tmp_path: Path, finds: bool
) -> None:
    """The durable "maybe posted" mark (an fsync'd write per post) serves only the lookup
    after a lost answer: a platform that can look messages up (Slack) gets one per post, one
    that cannot (dry-run, Teams) none, and its messages are delivered the same."""
    store = sqlite_store(tmp_path)
    chat = RecordingNotifier()
    extra = {} if finds else {"platforms": platforms_that_cannot_find(chat)}
    async with running_bridge(make_settings(tmp_path), store=store, **extra) as (bridge, _c, rec):
        assert bridge.delivery is not None
        for event in (ringing("m-1"), answered("m-1"), ended("m-1", 60)):
            added = await bridge.store.add_event(event, bridge.clock())
            bridge.dispatcher.notify(added.story_id)
        await bridge.dispatcher.drained()
        await bridge.delivery.settled()
    sent = chat.sent if not finds else rec.sent
    posts = [s for s in sent if s.action == "post"]
    assert [s.slot for s in posts][:1] == ["root"]
    assert len(posts) >= 3  # the root and its replies
    assert store.attempt_marks == (len(posts) if finds else 0)


async def test_a_channel_sends_its_next_message_without_another_read(tmp_path: Path) -> None:
    """Recording a send also reads what its channel can send next (``Store.posted_next``),
    so a channel working through a backlog (here ten calls' live messages and threads in one
    channel) sends on without a round and a ``due()`` read per message; each message still
    goes exactly once, replies after their root."""
    store = sqlite_store(tmp_path)
    async with running_bridge(make_settings(tmp_path), store=store) as (bridge, _client, chat):
        assert bridge.delivery is not None
        for n in range(10):
            call = f"b-{n}"
            for event in (ringing(call), answered(call), ended(call, 60)):
                added = await bridge.store.add_event(event, bridge.clock())
                bridge.dispatcher.notify(added.story_id)
        await bridge.dispatcher.drained()
        await bridge.delivery.settled()
    sent = [(s.story, s.slot, s.action) for s in chat.sent]
    posts = [(story, slot) for story, slot, action in sent if action == "post"]
    assert len(set(posts)) == len(posts) >= 40  # roots and their replies, none twice
    for n in range(10):
        story = [slot for s, slot in posts if s.startswith(f"b-{n}")]
        assert story[0] == "root"  # a thread's replies wait for their root
    assert store.due_calls * 2 < len(sent), (store.due_calls, len(sent))
