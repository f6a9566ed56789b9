"""The dispatcher's bookkeeping: unmatched calls, stale calls, retention."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from tests.support.harness import (
    FakeClock,
    make_settings,
    payload,
    running_bridge,
    write_rules,
)

AUTH = {"Authorization": "Bearer s3cret-webhook-token"}
RULES = """\
version: 1
timezone: Europe/Amsterdam
destinations:
  support: {slack: {channel: C0123456789}}
  lost: {slack: {channel: C0LOST00001}}
routes:
  - name: support line
    when: {destination: "+31508009000"}
    live: support
    missed: support
unmatched: lost
"""


def metric_value(text: str, line_start: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no metric line starting with {line_start!r}")


async def test_unmatched_calls_are_counted_per_line_and_sent_to_unmatched(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path, rules=write_rules(tmp_path, RULES, name="r.yaml"))
    async with running_bridge(settings) as (bridge, client, chat):
        assert bridge.delivery is not None
        other_line = payload(
            call_id="other-1",
            destination={"number": "+31508009999", "targets": [{"number": "201", "name": "B"}]},
        )
        await client.post("/notifications", data=json.dumps(other_line), headers=AUTH)
        await client.post("/notifications", data=json.dumps(payload()), headers=AUTH)
        await bridge.dispatcher.drained()
        await bridge.delivery.settled()
        text = await (await client.get("/metrics")).text()
        unmatched = 'callbridge_unmatched_calls_total{direction="inbound"}'
        assert metric_value(text, unmatched) == 1
        assert {s.channel for s in chat.for_story("other-1")} == {"C0LOST00001"}
        assert {s.channel for s in chat.for_story("abc-1700000000.1")} == {"C0123456789"}


async def test_a_call_without_ended_is_closed_as_stale_and_alerted(tmp_path: Path) -> None:
    clock = FakeClock()
    settings = make_settings(tmp_path, rules=write_rules(tmp_path, RULES, name="r.yaml"))
    async with running_bridge(settings, clock=clock) as (bridge, client, chat):
        assert bridge.delivery is not None
        ringing = payload(timestamp=clock.now.isoformat())
        await client.post("/notifications", data=json.dumps(ringing), headers=AUTH)
        await bridge.dispatcher.drained()
        await bridge.delivery.settled()
        assert [s.slot for s in chat.sent if s.slot == "missed"] == []

        clock.advance(timedelta(hours=4, minutes=1))
        await bridge.dispatcher.sweep()
        await bridge.dispatcher.drained()
        clock.advance(timedelta(seconds=10))  # past the missed-alert settle time
        await bridge.delivery.settled()

        story = await bridge.store.story("abc-1700000000.1")
        assert story is not None
        assert story.ended_at is not None
        root_updates = [s for s in chat.sent if s.slot == "root" and s.action == "update"]
        assert root_updates, "the live message shows the call closed"
        assert "stale" in root_updates[-1].text
        assert [s.action for s in chat.sent if s.slot == "missed"] == ["post"]
        text = await (await client.get("/metrics")).text()
        assert metric_value(text, "callbridge_calls_closed_stale_total") == 1


async def test_retention_purges_ended_calls_and_keeps_open_ones(tmp_path: Path) -> None:
    clock = FakeClock()
    settings = make_settings(tmp_path, rules=write_rules(tmp_path, RULES, name="r.yaml"))
    async with running_bridge(settings, clock=clock) as (bridge, client, _chat):
        assert bridge.delivery is not None
        start = clock.now
        ended = payload(
            call_id="done-1",
            status="ended",
            reason="completed",
            timestamp=start.isoformat(),
            destination={"number": "+31508009000"},
        )
        await client.post("/notifications", data=json.dumps(ended), headers=AUTH)
        await bridge.dispatcher.drained()
        clock.advance(timedelta(seconds=10))
        await bridge.delivery.settled()

        clock.advance(timedelta(days=14, hours=1))
        still_open = payload(call_id="open-1", timestamp=clock.now.isoformat())
        await client.post("/notifications", data=json.dumps(still_open), headers=AUTH)
        await bridge.dispatcher.drained()
        await bridge.dispatcher.sweep()

        assert await bridge.store.story("done-1") is None
        assert await bridge.store.decided("done-1") == []
        assert await bridge.store.story("open-1") is not None
        text = await (await client.get("/metrics")).text()
        assert metric_value(text, "callbridge_calls_purged_total") == 1
        assert metric_value(text, "callbridge_active_calls") == 1


async def test_a_redelivery_after_retention_is_a_duplicate_and_posts_nothing(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    settings = make_settings(tmp_path, rules=write_rules(tmp_path, RULES, name="r.yaml"))
    async with running_bridge(settings, clock=clock) as (bridge, client, chat):
        assert bridge.delivery is not None
        ended = payload(
            call_id="done-1",
            status="ended",
            reason="completed",
            timestamp=clock.now.isoformat(),
            destination={"number": "+31508009000"},
        )
        await client.post("/notifications", data=json.dumps(ended), headers=AUTH)
        await bridge.dispatcher.drained()
        clock.advance(timedelta(seconds=10))
        await bridge.delivery.settled()
        posted = len(chat.sent)

        clock.advance(timedelta(days=14, hours=1))
        await bridge.dispatcher.sweep()
        assert await bridge.store.story("done-1") is None
        again = await client.post("/notifications", data=json.dumps(ended), headers=AUTH)
        assert (again.status, await again.json()) == (200, {"status": "duplicate"})
        await bridge.dispatcher.drained()
        await bridge.delivery.settled()
        assert len(chat.sent) == posted


async def test_staleness_and_retention_count_from_receipt_not_provider_timestamps(
    tmp_path: Path,
) -> None:
    """A provider clock five hours behind, and an `ended` stamped a month ago: received now,
    neither is closed as stale nor purged at the next sweep."""
    clock = FakeClock()
    settings = make_settings(tmp_path, rules=write_rules(tmp_path, RULES, name="r.yaml"))
    async with running_bridge(settings, clock=clock) as (bridge, client, _chat):
        behind = payload(call_id="behind-1", timestamp=(clock.now - timedelta(hours=5)).isoformat())
        old_end = payload(
            call_id="old-1",
            status="ended",
            reason="completed",
            timestamp=(clock.now - timedelta(days=30)).isoformat(),
            destination={"number": "+31508009000"},
        )
        for doc in (behind, old_end):
            await client.post("/notifications", data=json.dumps(doc), headers=AUTH)
        await bridge.dispatcher.drained()
        await bridge.dispatcher.sweep()
        await bridge.dispatcher.drained()
        story = await bridge.store.story("behind-1")
        assert story is not None
        assert story.ended_at is None, "not stale: it was heard of just now"
        assert await bridge.store.story("old-1") is not None, "not purged: received just now"


def _series(text: str) -> set[str]:
    return {line.rsplit(" ", 1)[0] for line in text.splitlines() if not line.startswith("#")}


async def test_many_dialled_numbers_make_a_bounded_number_of_series(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, rules=write_rules(tmp_path, RULES, name="r.yaml"))

    async def unmatched_call(n: int) -> None:
        dialled = f"+315080{n:05d}" if n % 3 else "x" * 3000  # some long junk too
        unmatched = payload(
            call_id=f"unmatched-{n}", destination={"number": dialled, "targets": []}
        )
        response = await client.post("/notifications", data=json.dumps(unmatched), headers=AUTH)
        assert response.status == 200

    async with running_bridge(settings) as (bridge, client, _chat):
        for n in range(6):
            await unmatched_call(n)
        await bridge.dispatcher.drained()
        early = _series(await (await client.get("/metrics")).text())
        for n in range(6, 80):
            await unmatched_call(n)
        await bridge.dispatcher.drained()
        text = await (await client.get("/metrics")).text()
    assert _series(text) == early  # 74 more numbers, not one more series
    assert not [s for s in _series(text) if "+315080" in s or "xxx" in s]
    assert metric_value(text, 'callbridge_unmatched_calls_total{direction="inbound"}') == 80
