"""Every provider flow, end to end, into the fake Slack Web API via the real slack-sdk client:
one live root per call showing its final state, its story in the thread, missed alerts exactly
for missed calls, no duplicates, and transfers (either id surviving) as one story."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from bridge.simulate import SCENARIOS
from tests.support.fake_slack import Fault, Limits
from tests.support.slack_env import ALL, ONCALL, SUPPORT, Env, scenario_calls, slack_bridge

INTERNAL = {"internal"}  # dropped by the rules


def check_scenario(env: Env, name: str, story: str) -> None:
    """The channel shows this call exactly as its hand-written expectations say (a missed
    alert links to the live thread: at once, or by an edit once a failing root is posted)."""
    expected = SCENARIOS[name].expected
    support = env.by_slot(SUPPORT)
    mine = {slot: msgs for (s, slot), msgs in support.items() if s == story}
    if name in INTERNAL:
        assert mine == {}, f"{name}: internal calls are dropped"
        return
    dups = {slot: [m.text for m in msgs] for slot, msgs in mine.items() if len(msgs) > 1}
    assert not dups, f"{name}: duplicate messages {dups}"
    root = mine["root"][0]
    assert root.thread_ts is None
    title = "📵 Missed" if expected.missed else "✅ Ended"
    assert root.text.startswith(title), (name, root.text)
    if expected.connected and not expected.missed:
        assert expected.connected in root.text, (name, root.text)
    replies = env.slack.replies(SUPPORT, root.ts)
    assert len(replies) == len([s for s in mine if s.startswith("reply:")])
    assert len(replies) >= (1 if name == "unavailable" else 2), (name, [r.text for r in replies])
    assert sum("Consultation" in r.text for r in replies) == expected.consult_steps, name
    assert any(("Missed" if expected.missed else "ended") in r.text for r in replies), name
    # A reply is never edited: the thread is a log.
    assert all(r.edits == 0 for r in replies)
    alerts = [m for (s, slot), ms in env.by_slot(ONCALL).items() if s == story for m in ms]
    if expected.missed:
        assert "missed" in mine, name
        alert = mine["missed"][0]
        assert "Missed call" in alert.text
        # The on-call group is mentioned where the rules say (its channel), not here too,
        # also when the alert carries a callback case.
        assert "subteam" not in alert.text, (name, alert.text)
        links = [b for b in alert.blocks if b["type"] == "context"]
        assert links, "the alert links to the live thread in the same channel"
        assert len(alerts) == 1
        assert alerts[0].text.startswith("<!subteam^S0123ABCD>")
        # The alert in another channel links to the live thread in the support channel.
        [other] = [b for b in alerts[0].blocks if b["type"] == "context" and "live call" in str(b)]
        assert f"/p{root.ts.replace('.', '')}" in str(other), name  # the live root's permalink
    else:
        assert "missed" not in mine, f"{name}: an answered call must never raise an alert"
        assert alerts == []


async def test_every_scenario_ends_as_one_correct_story(tmp_path: Path) -> None:
    async with slack_bridge(tmp_path) as env:
        calls = scenario_calls(ALL, env.time.wall())
        for _name, _ctx, events in calls:
            for payload in events:
                await env.send(payload)
        await env.settle()
        stories = set()
        for name, ctx, _events in calls:
            story = ctx.call_id(SCENARIOS[name].expected.story_leg)
            stories.add(story)
            check_scenario(env, name, story)
        # Nothing else was posted: no orphan message from a consult call.
        posted_stories = {s for s, _slot in env.by_slot(SUPPORT)}
        assert posted_stories <= stories
        live = [k for k in env.by_slot(SUPPORT) if k[1] == "root"]
        assert len(live) == len(ALL) - len(INTERNAL)
        missed = sum(SCENARIOS[name].expected.missed for name in ALL)
        assert len(env.slack.roots(SUPPORT)) == len(live) + missed  # + the alerts
        assert env.slack.ratelimited.total() == 0


@pytest.mark.parametrize("name", ["warm-transfer", "warm-transfer-consult-survives"])
async def test_transfer_events_in_reverse_order_still_make_one_story(
    tmp_path: Path, name: str
) -> None:
    async with slack_bridge(tmp_path) as env:
        [(_name, ctx, events)] = scenario_calls([name], env.time.wall())
        for payload in reversed(events):
            await env.send(payload)
        await env.settle()
        roots = env.slack.roots(SUPPORT)
        assert len(roots) == 1, [r.text for r in roots]  # an answered call: no alert
        assert roots[0].text.startswith("✅ Ended")
        stories = {s for s, _slot in env.by_slot(SUPPORT)}
        assert len(stories) == 1
        # Orphans are deleted, never left behind.
        assert all(m.thread_ts is not None or m is roots[0] for m in env.slack.messages(SUPPORT))
        assert set(ctx.legs.values()) >= {stories.pop()}


async def test_missed_alert_waits_for_a_late_answer(tmp_path: Path) -> None:
    """`ended` overtakes `in-progress`: the call was answered, so no alert may be posted."""
    async with slack_bridge(tmp_path) as env:
        [(_name, ctx, events)] = scenario_calls(["answered"], env.time.wall())
        answered = [e for e in events if e["status"] == "in-progress"]
        for payload in [e for e in events if e["status"] != "in-progress"]:
            await env.send(payload)
        await env.bridge.dispatcher.drained()
        for payload in answered:  # arrives within the settle time
            await env.send(payload)
        await env.settle()
        check_scenario(env, "answered", ctx.call_id())


def slot_of(params: Mapping[str, Any]) -> str:
    metadata = params.get("metadata") or {}
    if isinstance(metadata, str):
        metadata = json.loads(metadata)
    return str(metadata.get("event_payload", {}).get("slot", ""))


def root_posts(params: Mapping[str, Any]) -> bool:
    return slot_of(params) == "root"


def reply_posts(params: Mapping[str, Any]) -> bool:
    return slot_of(params).startswith("reply:")


async def test_an_alert_sent_while_its_root_fails_gets_the_link_afterwards(
    tmp_path: Path,
) -> None:
    """The alert is never held back for its root; once the root is posted, the alert is
    edited so it links to the live thread after all."""
    async with slack_bridge(tmp_path) as env:
        env.slack.fail("chat.postMessage", Fault.http(503), times=5, only=root_posts)  # ~30 s
        [(_name, ctx, events)] = scenario_calls(["no-answer"], env.time.wall(), seed=2)
        for payload in events:
            await env.send(payload)
        await env.settle()

        story = ctx.call_id()
        [root] = env.by_slot(SUPPORT)[(story, "root")]
        [alert] = env.by_slot(SUPPORT)[(story, "missed")]
        assert float(alert.ts) < float(root.ts)  # the alert went first, unlinked
        assert alert.edits == 1
        assert not [b for b in alert.versions[0].blocks if b["type"] == "context"]
        assert [b for b in alert.blocks if b["type"] == "context"]
        # The alert in the on-call channel too: posted unlinked, edited once the root is up.
        [elsewhere] = env.by_slot(ONCALL)[(story, "missed")]
        assert float(elsewhere.ts) < float(root.ts)
        assert elsewhere.edits == 1
        assert "live call" not in str(elsewhere.versions[0].blocks)
        check_scenario(env, "no-answer", story)


async def test_slack_outage_then_recovery_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    async with slack_bridge(tmp_path) as env:
        env.slack.fail("chat.postMessage", Fault.http(503), times=4)
        env.slack.fail("chat.postMessage", Fault.http(500), times=2)
        env.slack.fail("chat.update", Fault.http(502), times=2)
        env.slack.fail("chat.postMessage", Fault.drop(), times=2)
        names = ["answered", "no-answer", "cold-transfer", "unavailable"]
        calls = scenario_calls(names, env.time.wall(), seed=3)
        for _name, _ctx, events in calls:
            for payload in events:
                await env.send(payload)
        await env.settle()
        for name, ctx, _events in calls:
            story = ctx.call_id(SCENARIOS[name].expected.story_leg)
            check_scenario(env, name, story)
        assert env.slack.pending_faults("chat.postMessage") == 0
        metrics = (await (await env.client.get("/metrics")).text()).splitlines()
        retries = [m for m in metrics if m.startswith("callbridge_delivery_retries_total{")]
        assert sum(float(m.rsplit(" ", 1)[1]) for m in retries) >= 8


async def test_after_an_outage_the_waiting_alert_goes_within_seconds(tmp_path: Path) -> None:
    """Slack answers 503 for a minute: the alert's own backoff has grown to tens of seconds
    by then. When Slack answers again (a new call's first post succeeds), the alert goes
    within seconds, not at the end of its backoff (issue 12, item 7)."""
    down = [True]
    async with slack_bridge(tmp_path) as env:
        env.slack.fail("chat.postMessage", Fault.http(503), times=10_000, only=lambda _p: down[0])
        [(_n, ctx, events), (_m, later, later_events)] = scenario_calls(
            ["no-answer", "answered"], env.time.wall(), seed=9
        )
        for payload in events:
            await env.send(payload)
        await env.time.sleep(70)  # the outage lasts (scaled) seconds, as a real one would
        failed = env.slack.pending_faults("chat.postMessage")
        assert 10_000 - failed >= 8, "the root and the alert kept failing and backing off"
        down[0] = False
        for payload in later_events:
            await env.send(payload)
        await env.settle()

        [back] = env.by_slot(SUPPORT)[(later.call_id(), "root")]
        [alert] = env.by_slot(ONCALL)[(ctx.call_id(), "missed")]
        assert float(alert.ts) - float(back.ts) < 5.0, "the alert waited out its own backoff"
        check_scenario(env, "no-answer", ctx.call_id())


async def test_timeouts_do_not_duplicate_posts(tmp_path: Path) -> None:
    """A post that times out may have reached Slack: the retry looks it up first."""
    async with slack_bridge(tmp_path) as env:
        env.slack.fail("chat.postMessage", Fault.lost_answer(), times=1)
        env.slack.fail("chat.postMessage", Fault.hang(), times=1)
        [(_name, ctx, events)] = scenario_calls(["no-answer"], env.time.wall(), seed=5)
        for payload in events:
            await env.send(payload)
        await env.settle()
        check_scenario(env, "no-answer", ctx.call_id())
        text = await (await env.client.get("/metrics")).text()
        assert 'callbridge_delivery_recovered_total{platform="slack"} 1.0' in text


@pytest.mark.parametrize(
    "lookup_fault",
    [Fault.http(503), Fault.hang(), Fault.ratelimit(retry_after=1), Fault.drop()],
    ids=["5xx", "timeout", "429", "dropped"],
)
async def test_a_failed_lookup_never_counts_as_not_posted(
    tmp_path: Path, lookup_fault: Fault
) -> None:
    """After a post whose answer was lost, the lookups fail too: the "maybe posted" mark
    stays until a lookup answers, so the message is found, never posted twice (issue 12.5)."""
    async with slack_bridge(tmp_path) as env:
        env.slack.fail("chat.postMessage", Fault.lost_answer(), times=1, only=root_posts)
        env.slack.fail("conversations.history", lookup_fault, times=3)
        [(_name, ctx, events)] = scenario_calls(["no-answer"], env.time.wall(), seed=5)
        for payload in events:
            await env.send(payload)
        await env.settle()
        assert env.slack.pending_faults("conversations.history") == 0
        check_scenario(env, "no-answer", ctx.call_id())  # exactly one root, one alert each


async def test_a_reply_found_after_a_lost_answer_is_not_edited(tmp_path: Path) -> None:
    """A reply is a log line: once found after a lost answer it is recorded as posted, not
    edited again (an edit would mark it "(edited)" in Slack)."""
    async with slack_bridge(tmp_path) as env:
        env.slack.fail("chat.postMessage", Fault.lost_answer(), times=1, only=reply_posts)
        [(_name, ctx, events)] = scenario_calls(["answered"], env.time.wall(), seed=5)
        for payload in events:
            await env.send(payload)
        await env.settle()
        check_scenario(env, "answered", ctx.call_id())  # no duplicate, no reply edited
        assert env.slack.pending_faults("chat.postMessage") == 0
        text = await (await env.client.get("/metrics")).text()
        assert 'callbridge_delivery_recovered_total{platform="slack"} 1.0' in text


async def test_429_storm_is_honoured_and_counted(tmp_path: Path) -> None:
    async with slack_bridge(tmp_path) as env:
        env.slack.fail("chat.postMessage", Fault.ratelimit(retry_after=3), times=5)
        env.slack.fail("chat.update", Fault.ratelimit(retry_after=2), times=3)
        names = ["answered", "forwarding", "no-answer"]
        calls = scenario_calls(names, env.time.wall(), seed=7)
        for _name, _ctx, events in calls:  # roots exist before the rest, so updates happen
            await env.send(events[0])
        await env.settle()
        for _name, _ctx, events in calls:
            for payload in events[1:]:
                await env.send(payload)
        await env.settle()
        for name, ctx, _events in calls:
            story = ctx.call_id(SCENARIOS[name].expected.story_leg)
            check_scenario(env, name, story)
        text = await (await env.client.get("/metrics")).text()
        limited = [
            line
            for line in text.splitlines()
            if line.startswith("callbridge_chat_rate_limited_total{")
        ]
        assert env.slack.pending_faults("chat.update") == 0, env.slack.calls
        assert sum(float(line.rsplit(" ", 1)[1]) for line in limited) == 8


async def test_permanent_errors_stop_loudly_without_blocking_others(tmp_path: Path) -> None:
    async with slack_bridge(tmp_path, limits=Limits.loose()) as env:
        env.slack.fail("chat.postMessage", Fault.slack_error("invalid_blocks"), times=1)
        calls = scenario_calls(["answered", "no-answer"], env.time.wall(), seed=9)
        for _name, _ctx, events in calls:
            for payload in events:
                await env.send(payload)
        await env.settle()
        text = await (await env.client.get("/metrics")).text()
        assert 'callbridge_delivery_failures_total{code="invalid_blocks",platform="slack"} 1.0' in (
            text
        )
        # The first root gave up; everything else still arrived.
        assert len(env.slack.roots(SUPPORT)) >= 2


async def test_people_are_mentioned_by_their_slack_ids(tmp_path: Path) -> None:
    async with slack_bridge(tmp_path) as env:
        [(_name, ctx, events)] = scenario_calls(["answered"], env.time.wall())
        emails = {
            e
            for payload in events
            for p in payload["destination"].get("targets", [])
            + ([payload["destination"]["target"]] if "target" in payload["destination"] else [])
            for e in p.get("user_emails", [])
        }
        assert emails, "the scenario's colleagues have e-mail addresses"
        env.slack.users.update({e.lower(): "U0AGENT01" for e in emails})
        for payload in events:
            await env.send(payload)
        await env.settle()
        root = env.slack.roots(SUPPORT)[0]
        assert any("<@U0AGENT01>" in str(b) for b in root.blocks)
        assert "<@U0AGENT01>" not in root.text  # the fallback text never pings
        assert ctx.call_id()
