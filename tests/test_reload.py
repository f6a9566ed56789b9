"""Rules reload: a bad file keeps the running rules (visible in /metrics and /readyz), a good
one replaces them, a file whose own tests fail is refused, and calls already decided are not
re-posted to places a new rules file names."""

from __future__ import annotations

import asyncio
import json
import signal
from datetime import timedelta
from pathlib import Path

import pytest

from tests.support.harness import (
    FakeClock,
    body,
    make_settings,
    payload,
    running_bridge,
    write_rules,
)
from tests.support.process import serve

AUTH = {"Authorization": "Bearer s3cret-webhook-token"}
GOOD = """\
version: 1
timezone: Europe/Amsterdam
destinations:
  support: {slack: {channel: C0123456789}}
  oncall: {slack: {channel: C0999999999}}
routes:
  - name: everything
    live: support
"""
OTHER = GOOD.replace("live: support", "live: oncall")
BAD = GOOD.replace("live: support", "live: nowhere")
FAILING_TESTS = (
    GOOD
    + """\
tests:
  - name: support sees inbound calls
    call: {direction: inbound, destination: "+31508009000", at: "2026-12-01T10:00"}
    expect: {live: [oncall]}
"""
)


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


async def test_bad_reload_keeps_good_rules_and_good_reload_recovers(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, rules=write_rules(tmp_path, GOOD, name="r.yaml"))
    async with running_bridge(settings) as (bridge, client, chat):
        assert bridge.delivery is not None
        settings.rules.write_text(BAD)
        assert await bridge.reload_rules() is False
        text = await (await client.get("/metrics")).text()
        assert metric(text, "callbridge_rules_last_reload_success") == 0
        ready = await (await client.get("/readyz", headers=AUTH)).json()
        detail = ready["checks"]["rules"]["detail"]
        assert "last reload REFUSED" in detail
        assert "see the log" in detail
        problems = "\n".join(bridge.rules.problems)  # what the log says
        assert "routes[0].live" in problems
        assert "nowhere" in problems
        # The running rules still route to support.
        await client.post("/notifications", data=body(), headers=AUTH)
        await bridge.dispatcher.drained()
        await bridge.delivery.settled()
        assert {s.channel for s in chat.sent} == {"C0123456789"}

        settings.rules.write_text(OTHER)
        assert await bridge.reload_rules() is True
        text = await (await client.get("/metrics")).text()
        assert metric(text, "callbridge_rules_last_reload_success") == 1
        ready = await (await client.get("/readyz", headers=AUTH)).json()
        assert "REFUSED" not in ready["checks"]["rules"]["detail"]
        await client.post("/notifications", data=body(call_id="new-call-2"), headers=AUTH)
        await bridge.dispatcher.drained()
        await bridge.delivery.settled()
        assert {s.channel for s in chat.sent if s.story == "new-call-2"} == {"C0999999999"}


async def test_reload_whose_own_tests_fail_is_refused_with_the_diff(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, rules=write_rules(tmp_path, GOOD, name="r.yaml"))
    async with running_bridge(settings) as (bridge, client, _chat):
        settings.rules.write_text(FAILING_TESTS)
        assert await bridge.reload_rules() is False
        problems = "\n".join(bridge.rules.problems)
        assert "support sees inbound calls" in problems
        assert "oncall" in problems
        assert "support" in problems
        text = await (await client.get("/metrics")).text()
        assert metric(text, "callbridge_rules_last_reload_success") == 0


async def test_reload_does_not_repost_calls_already_decided(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, rules=write_rules(tmp_path, GOOD, name="r.yaml"))
    clock = FakeClock()
    async with running_bridge(settings, clock=clock) as (bridge, client, chat):
        assert bridge.delivery is not None
        ringing = payload()
        ended = payload(
            status="ended",
            reason="completed",
            timestamp="2026-11-24T12:01:00+00:00",
            destination={"number": "+31508009000"},
        )
        for doc in (ringing, ended):
            await client.post("/notifications", data=json.dumps(doc), headers=AUTH)
        await bridge.dispatcher.drained()
        clock.advance(timedelta(seconds=10))  # past the settle time of the "Missed" line
        await bridge.delivery.settled()
        before = len(chat.sent)
        settings.rules.write_text(OTHER)
        assert await bridge.reload_rules()
        # A late event for the ended call (the provider re-sends `ringing` with another
        # target): the call's story grows in support, nothing appears in oncall.
        late = payload(
            timestamp="2026-11-24T12:00:05+00:00",
            destination={
                "number": "+31508009000",
                "targets": [{"number": "+31508009001", "name": "C", "account_number": 202}],
            },
        )
        await client.post("/notifications", data=json.dumps(late), headers=AUTH)
        await bridge.dispatcher.drained()
        await bridge.delivery.settled()
        new = chat.sent[before:]
        assert new, "the late event adds to the story"
        assert {s.channel for s in new} == {"C0123456789"}


async def test_a_call_already_seen_keeps_its_rules_and_new_calls_take_the_reload(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path, rules=write_rules(tmp_path, GOOD, name="r.yaml"))
    async with running_bridge(settings) as (bridge, client, chat):
        assert bridge.delivery is not None
        first = payload(call_id="first-call")
        await client.post("/notifications", data=json.dumps(first), headers=AUTH)
        await bridge.dispatcher.drained()
        settings.rules.write_text(OTHER)
        assert await bridge.reload_rules()
        answered = payload(
            call_id="first-call",
            status="in-progress",
            timestamp="2026-11-24T12:00:09+00:00",
            destination={
                "number": "+31508009000",
                "target": {"number": "+31508009000", "name": "B", "account_number": 201},
            },
        )
        second = payload(call_id="second-call")
        for doc in (answered, second):
            await client.post("/notifications", data=json.dumps(doc), headers=AUTH)
        await bridge.dispatcher.drained()
        await bridge.delivery.settled()
        channels = {s.story: {x.channel for x in chat.for_story(s.story)} for s in chat.sent}
        assert channels == {"first-call": {"C0123456789"}, "second-call": {"C0999999999"}}


MISSED_AFTER_10S = """\
version: 1
timezone: Europe/Amsterdam
destinations:
  support: {slack: {channel: C0123456789}}
  oncall: {slack: {channel: C0999999999}}
routes:
  - name: everything
    live: support
    missed: support
    min_ring: 10s
"""


async def test_late_events_after_a_reload_and_a_restart_use_the_calls_own_rules(
    tmp_path: Path,
) -> None:
    """`ended` is folded first (0 s of ringing: min_ring holds the alert back); the bridge
    restarts with other rules; the call's `ringing` arrives: the call is re-decided with the
    rules it was first routed by (kept in the store), so the alert goes to support."""
    rules = write_rules(tmp_path, MISSED_AFTER_10S, name="r.yaml")
    settings = make_settings(tmp_path, rules=rules)
    ringing = payload(call_id="late-call")
    ended = payload(
        call_id="late-call",
        status="ended",
        reason="no-answer",
        timestamp="2026-11-24T12:00:30+00:00",
        destination={"number": "+31508009000"},
    )
    clock = FakeClock()
    async with running_bridge(settings, clock=clock) as (bridge, client, chat):
        assert bridge.delivery is not None
        await client.post("/notifications", data=json.dumps(ended), headers=AUTH)
        await bridge.dispatcher.drained()
        clock.advance(timedelta(seconds=10))  # past the settle time of the "Missed" line
        await bridge.delivery.settled()
        assert chat.sent, "the call is posted"
        assert "missed" not in {s.slot for s in chat.sent}
    rules.write_text(MISSED_AFTER_10S.replace("support\n", "oncall\n"))
    async with running_bridge(settings, clock=clock) as (bridge, client, chat):
        assert bridge.delivery is not None
        assert bridge.rules.current is not None
        assert "live: oncall" in bridge.rules.current.text
        await client.post("/notifications", data=json.dumps(ringing), headers=AUTH)
        await bridge.dispatcher.drained()
        clock.advance(timedelta(seconds=10))  # past the missed alert's settle time
        await bridge.delivery.settled()
        assert "missed" in {s.slot for s in chat.sent}
        assert {s.channel for s in chat.sent} == {"C0123456789"}


async def test_sighup_reloads_the_running_service(tmp_path: Path) -> None:
    rules = write_rules(tmp_path, GOOD, name="r.yaml")
    async with serve(tmp_path, tmp_path / "bridge.db", rules=rules) as server:
        rules.write_text(BAD)
        server.proc.send_signal(signal.SIGHUP)
        refused = await server.wait_for_line(lambda line: line.get("event") == "rules.refused")
        assert refused["kept"] == "keeping the running rules"
        problem = await server.wait_for_line(lambda line: line.get("event") == "rules.problem")
        assert problem["problem"].startswith(f"{rules}:")
        rules.write_text(OTHER)
        server.proc.send_signal(signal.SIGHUP)
        loaded = [line for line in server.lines if line.get("event") == "rules.loaded"]
        await server.wait_for_line(
            lambda line: line.get("event") == "rules.loaded" and line not in loaded
        )
        assert await asyncio.wait_for(server.stop(signal.SIGTERM), 30) == 0


async def test_a_reload_of_a_file_not_in_utf8_is_refused_where_the_byte_is(
    tmp_path: Path,
) -> None:
    rules = write_rules(tmp_path, GOOD, name="r.yaml")
    async with serve(tmp_path, tmp_path / "bridge.db", rules=rules) as server:
        # Saved in Latin-1 by an editor: "é" is the single byte 0xe9 on line 2, column 14.
        rules.write_bytes(b"version: 1\n# support caf\xe9 line\n" + GOOD.encode()[11:])
        server.proc.send_signal(signal.SIGHUP)
        refused = await server.wait_for_line(lambda line: line.get("event") == "rules.refused")
        assert refused["kept"] == "keeping the running rules"
        problem = await server.wait_for_line(lambda line: line.get("event") == "rules.problem")
        assert problem["problem"] == (
            f"{rules}:2:14: not UTF-8 text (byte 0xe9): save the file as UTF-8"
        )
        assert await asyncio.wait_for(server.stop(signal.SIGTERM), 30) == 0
    assert not [line for line in server.lines if line.get("log_level") == "critical"]


async def test_a_loader_bug_refuses_the_file_and_the_reload_still_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path, rules=write_rules(tmp_path, GOOD, name="r.yaml"))
    async with running_bridge(settings) as (bridge, client, _chat):

        def broken(path: Path) -> object:
            raise RecursionError(f"deep in {path.read_text()}")  # may quote the file

        monkeypatch.setattr("bridge.service.rulestate.load_file", broken)
        settings.rules.write_text(GOOD.replace("support", "support-secret-xoxb-1"))
        assert await bridge.reload_rules() is False
        assert bridge.rules.problems == (
            f"{settings.rules}: could not be loaded (RecursionError, a callbridge bug: please "
            "report it); the file was not used",
        )
        text = await (await client.get("/metrics")).text()
        assert metric(text, "callbridge_rules_last_reload_success") == 0
        ready = await (await client.get("/readyz", headers=AUTH)).json()
        assert "last reload REFUSED" in ready["checks"]["rules"]["detail"]
