"""The simulator against a real local HTTP server (127.0.0.1, port 0) that records requests."""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import aiohttp
import msgspec
import pytest
from aiohttp import web

from bridge.cli import simulate as simulate_cmd
from bridge.core.events import decode
from bridge.simulate import SCENARIOS
from bridge.simulate import client as sim
from bridge.simulate.case_client import CaseRun

# Events per scenario, counted by hand from the flows in bridge/simulate/flows.py.
EVENTS_PER_SCENARIO = {
    "answered": 4,  # created, ringing, in-progress, ended
    "no-answer": 3,  # created, ringing, ended
    "caller-hangs-up": 3,
    "unavailable": 1,  # ended only
    "auto-answer": 2,  # in-progress, ended
    "pickup": 4,
    "forwarding": 5,  # created, ringing, ringing, in-progress, ended
    "call-group": 4,
    "warm-transfer": 7,  # 3 + consult ringing, consult in-progress, transfer, ended
    "warm-transfer-consult-survives": 7,
    "cold-transfer": 7,  # 3 + transfer, ringing, in-progress, ended
    "semi-attended-transfer": 7,  # 3 + consult ringing, transfer, in-progress, ended
    "outbound": 3,  # ringing, in-progress, ended
    "internal": 3,
}
TOTAL_EVENTS = 60
TOKEN = "s3cret-token-value"


@dataclass
class Recorder:
    """A stand-in bridge: records every request and answers as ``mode`` says."""

    mode: str = "accept"  # accept | 422 | 500
    hold: int = 0  # hold the first `hold` requests until that many are in flight
    url: str = ""
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    in_flight: int = 0
    max_in_flight: int = 0
    clock: Callable[[], float] | None = None  # the simulator's (fake) clock, read on arrival
    arrived: list[float] = field(default_factory=list)
    _full: asyncio.Event | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append((dict(request.headers), body))
        if self.clock is not None:
            self.arrived.append(self.clock())
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if len(self.requests) <= self.hold:
                self._full = self._full or asyncio.Event()
                if self.in_flight >= self.hold:
                    self._full.set()
                async with asyncio.timeout(10):  # a deadline, so a bug fails instead of hangs
                    await self._full.wait()
            return self.answer(body)
        finally:
            self.in_flight -= 1

    def answer(self, body: bytes) -> web.Response:
        if self.mode == "422":
            return web.json_response(
                {"error": "destination.targets[0].number: expected string"}, status=422
            )
        if self.mode == "500":
            return web.Response(status=500, text="boom")
        key = decode(body).dedupe_key()
        status = "duplicate" if key in self.seen else "accepted"
        self.seen.add(key)
        return web.json_response({"status": status})


@pytest.fixture
def bridge() -> Iterator[Recorder]:
    """Run the recorder in its own thread and loop, so sync `run()` can use it too."""
    recorder = Recorder()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    app = web.Application()
    app.router.add_post("/notifications", recorder.handle)
    runner = web.AppRunner(app)

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", 0).start())
        recorder.url = f"http://127.0.0.1:{runner.addresses[0][1]}/notifications"
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())

    thread = threading.Thread(target=serve, name="test-bridge", daemon=True)
    thread.start()
    assert ready.wait(10), "test server did not start"
    yield recorder
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


class Counter:
    def __init__(self) -> None:
        self.n = 0

    def update(self, n: int = 1) -> object:
        self.n += n
        return None


async def run_core(options: sim.Options, progress: Counter | None = None) -> sim.Summary:
    async with aiohttp.ClientSession() as session:
        return await sim.simulate(session, options, progress)


def test_scenario_table_matches_the_module() -> None:
    assert set(EVENTS_PER_SCENARIO) == set(SCENARIOS)
    assert sum(EVENTS_PER_SCENARIO.values()) == TOTAL_EVENTS


async def test_every_scenario_arrives_in_order_with_the_token(bridge: Recorder) -> None:
    progress = Counter()
    summary = await run_core(sim.Options(url=bridge.url, token=TOKEN, seed=3), progress)

    assert summary.ok
    assert (summary.sent, summary.accepted, summary.duplicates) == (TOTAL_EVENTS, TOTAL_EVENTS, 0)
    assert (summary.rejected, summary.errors, summary.problems) == (0, 0, ())
    assert len(summary.latencies) == TOTAL_EVENTS
    assert len(bridge.requests) == TOTAL_EVENTS
    assert progress.n == len(SCENARIOS)
    assert {c.scenario: c.events for c in summary.calls} == EVENTS_PER_SCENARIO

    for headers, _ in bridge.requests:
        assert headers["Authorization"] == f"Bearer {TOKEN}"
        assert headers["Content-Type"] == "application/json"
    events = [decode(body) for _, body in bridge.requests]
    for call in summary.calls:
        mine = [e for e in events if e.call_id in call.call_ids]
        assert len(mine) == call.events, call.scenario
        # in the provider's order: seconds never go back (fractions may: some are truncated)
        seconds = [e.timestamp.replace(microsecond=0) for e in mine]
        assert seconds == sorted(seconds), call.scenario
    merged = {e.merged_id for e in events if e.merged_id}
    transfer_calls = [c for c in summary.calls if len(c.call_ids) == 2]
    assert {c.scenario for c in transfer_calls} == {
        "warm-transfer",
        "warm-transfer-consult-survives",
        "cold-transfer",
        "semi-attended-transfer",
    }
    assert all(set(c.call_ids) & merged for c in transfer_calls)


async def test_no_token_means_no_authorization_header(bridge: Recorder) -> None:
    options = sim.Options(url=bridge.url, scenarios=("answered",))
    summary = await run_core(options)
    assert summary.ok
    assert all("Authorization" not in headers for headers, _ in bridge.requests)


async def test_shuffle_sends_one_duplicate_per_call(bridge: Recorder) -> None:
    summary = await run_core(sim.Options(url=bridge.url, shuffle=True, seed=11))
    calls = len(SCENARIOS)
    assert summary.ok
    assert summary.sent == TOTAL_EVENTS + calls
    assert summary.accepted == TOTAL_EVENTS
    assert summary.duplicates == calls
    assert all(c.duplicates == 1 for c in summary.calls)


async def test_rejections_are_counted_with_their_bodies(bridge: Recorder) -> None:
    bridge.mode = "422"
    summary = await run_core(sim.Options(url=bridge.url))
    assert not summary.ok
    assert (summary.rejected, summary.accepted, summary.errors) == (TOTAL_EVENTS, 0, 0)
    assert len(summary.problems) == sim.MAX_PROBLEMS
    assert all("HTTP 422" in p for p in summary.problems)
    assert "destination.targets[0].number: expected string" in summary.problems[0]
    assert "rejected    60" in summary.render()


async def test_server_errors_are_counted_as_errors(bridge: Recorder) -> None:
    bridge.mode = "500"
    summary = await run_core(sim.Options(url=bridge.url, scenarios=("no-answer",)))
    assert not summary.ok
    assert (summary.errors, summary.rejected, summary.accepted) == (3, 0, 0)
    assert summary.problems[0] == "no-answer event 1/3: HTTP 500: boom"


async def test_load_mode_respects_calls_and_concurrency(bridge: Recorder) -> None:
    bridge.hold = 3  # the first three requests wait until three are in flight together
    options = sim.Options(url=bridge.url, calls=30, rate=5000, concurrency=3, seed=5)
    summary = await run_core(options)
    assert summary.ok
    assert len(summary.calls) == 30
    assert summary.sent == len(bridge.requests) == sum(c.events for c in summary.calls)
    assert bridge.max_in_flight == 3
    assert {c.scenario for c in summary.calls} <= set(SCENARIOS)


async def test_unreachable_bridge_fails_fast_with_a_clear_message(closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}/notifications"
    with pytest.raises(sim.Unreachable) as caught:
        await run_core(sim.Options(url=url + "?token=hidden", token=TOKEN))
    assert str(caught.value) == (
        f"cannot reach {url}: connection refused; is `callbridge serve` running?"
    )


def test_percentiles_interpolate_between_samples() -> None:
    summary = sim.Summary(
        sent=100,
        accepted=100,
        duplicates=0,
        rejected=0,
        errors=0,
        elapsed=2.0,
        latencies=tuple(ms / 1000 for ms in range(1, 101)),
        problems=(),
        calls=(),
    )
    # position q/100 * (n - 1) in the sorted samples 1..100 ms
    assert summary.percentile(50) == pytest.approx(0.0505)
    assert summary.percentile(95) == pytest.approx(0.09505)
    assert summary.percentile(99) == pytest.approx(0.09901)
    text = summary.render()
    assert "elapsed     2.00 s (50.0 events/s)" in text
    assert "ack latency p50 50.5 ms  p95 " in text
    assert "p99 99.0 ms  max 100.0 ms" in text


# ---- the command ----------------------------------------------------------------------------


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="callbridge simulate")
    simulate_cmd.configure(parser)
    return parser.parse_args(argv)


def test_run_exits_0_and_prints_the_summary(
    bridge: Recorder, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLBRIDGE_URL", bridge.url)
    monkeypatch.setenv("CALLBRIDGE_WEBHOOK_TOKEN", TOKEN)
    # --fast: the summary is the point here, not the demo's real-time pacing (~5 min)
    assert simulate_cmd.run(parse("--scenario", "warm-transfer-consult-survives", "--fast")) == 0
    out, err = capsys.readouterr()
    assert "accepted    7" in out
    assert "warm-transfer-consult-survives" in out  # the per-call line of the demo
    assert TOKEN not in out + err
    assert {headers["Authorization"] for headers, _ in bridge.requests} == {f"Bearer {TOKEN}"}


def test_run_counts_in_words(bridge: Recorder, capsys: pytest.CaptureFixture[str]) -> None:
    assert simulate_cmd.run(parse("--url", bridge.url, "--scenario", "unavailable")) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].endswith("  1 event ok")  # unavailable: `ended` only
    assert "sent        1 event in 1 call\n" in out


def test_run_counts_the_case_flows_requests(
    bridge: Recorder, capsys: pytest.CaptureFixture[str]
) -> None:
    assert simulate_cmd.run(parse("--url", bridge.url, "--scenario", "case-called-back")) == 0
    out = capsys.readouterr().out.splitlines()
    # a missed call (created, ringing, ended), then Sanne's call back (ringing, in-progress,
    # ended): six events, one flow
    assert out[0].startswith("case-called-back")
    assert out[0].endswith("  6 requests ok")
    assert out[1:] == ["case flows  6 requests in 1 flow, 6 ok"]
    assert len(bridge.requests) == 6


def test_the_case_flows_line_says_what_was_skipped() -> None:
    runs = [
        CaseRun("case-called-back", "+31612345678", sent=6, ok=6),
        CaseRun("case-missed-twice-got-through", "+31687654321", sent=9, ok=8, problems=("x",)),
        CaseRun("case-claimed-done", "+31611111111", sent=0, ok=0, skipped="needs a secret"),
    ]
    assert simulate_cmd.cases_summary(runs) == (
        "case flows  15 requests in 2 flows, 14 ok (1 skipped)"
    )


def test_run_exits_1_when_events_are_rejected(
    bridge: Recorder, capsys: pytest.CaptureFixture[str]
) -> None:
    bridge.mode = "422"
    code = simulate_cmd.run(parse("--url", bridge.url, "--token", TOKEN, "--quiet", "--calls", "2"))
    assert code == 1
    out, err = capsys.readouterr()
    assert "HTTP 422" in out
    assert TOKEN not in out + err


def test_run_reports_an_unreachable_bridge(
    closed_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{closed_port}/notifications"
    assert simulate_cmd.run(parse("--url", url, "--quiet")) == 1
    _, err = capsys.readouterr()
    assert err.strip() == (
        "callbridge simulate: cannot reach "
        f"{url}: connection refused; is `callbridge serve` running?"
    )


def test_unknown_scenario_exits_2_listing_the_names(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        parse("--scenario", "voicemail")
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "unknown scenario 'voicemail'" in err
    assert all(name in err for name in SCENARIOS)


@pytest.mark.parametrize(
    "argv", [("--rate", "0"), ("--calls", "-1"), ("--concurrency", "x"), ("--speed", "0")]
)
def test_bad_numbers_exit_2(argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        parse(*argv)
    assert caught.value.code == 2
    assert argv[0] in capsys.readouterr().err


def test_bad_url_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert simulate_cmd.run(parse("--url", "127.0.0.1:8080?token=hidden")) == 2
    err = capsys.readouterr().err
    assert "--url: expected an http(s) URL" in err
    assert "hidden" not in err


def test_defaults_come_from_the_environment() -> None:
    env = {
        "CALLBRIDGE_URL": "http://10.0.0.5:9000/notifications",
        "CALLBRIDGE_WEBHOOK_TOKEN": TOKEN,
    }
    options = simulate_cmd.options_from(parse(), env)
    assert options.url == "http://10.0.0.5:9000/notifications"
    assert options.token == TOKEN
    assert options.scenarios == tuple(SCENARIOS)
    assert options.calls is None
    assert TOKEN not in repr(options)
    assert simulate_cmd.options_from(parse(), {}).url == sim.DEFAULT_URL


def test_speed_compresses_the_calls_timeline_stamps_and_gaps() -> None:
    options = sim.Options(speed=5)
    call = sim.plan_call("answered", options, random.Random(1), datetime(2024, 1, 1, tzinfo=UTC))
    # answered: created 0.x s, ringing 0 s, answered 9 s, ended 185 s after the start; five
    # times faster: created 0.x/5 s, ringing 0 s, answered 1.8 s and ended 37 s, whole seconds
    # truncated as the provider does
    stamps = [msgspec.json.decode(body)["timestamp"] for body in call.bodies]
    assert stamps[0].startswith("2024-01-01T00:00:00.")
    assert stamps[1:] == [
        "2024-01-01T00:00:00+00:00",
        "2024-01-01T00:00:01+00:00",
        "2024-01-01T00:00:37+00:00",
    ]
    created = datetime.fromisoformat(stamps[0]).microsecond / 1_000_000
    assert 0 < created < 0.2
    # each goes out when its timestamp comes due; ringing (truncated, earlier) right after created
    assert call.delays == pytest.approx((created, 0.0, 1 - created, 36.0))


async def test_speed_sends_each_event_when_its_timestamp_comes_due(bridge: Recorder) -> None:
    """--speed 5: the timestamps follow the send times (a fake clock: no real waiting)."""
    t0 = datetime(2024, 3, 5, 12, 31, 0, tzinfo=UTC)
    clock = [0.0]

    async def fake_sleep(seconds: float) -> None:
        clock[0] += seconds

    bridge.clock = lambda: clock[0]
    options = sim.Options(url=bridge.url, scenarios=("cold-transfer",), speed=5)
    async with aiohttp.ClientSession() as session:
        summary = await sim.simulate(
            session,
            options,
            clock=lambda: clock[0],
            sleep=fake_sleep,
            now=lambda: t0 + timedelta(seconds=clock[0]),
        )
    assert summary.ok
    events = [decode(body) for _, body in bridge.requests]
    stamps = [(e.timestamp - t0).total_seconds() for e in events]
    # cold-transfer, seconds after the start: created 0.x, ringing 0, answered 7.x, transfer 35,
    # Pieter's ringing 35.x, his answer 41.x, ended 210; five times faster: divided by 5, the
    # whole seconds truncated (ringing 0, transfer 7, ended 42)
    assert [e.status for e in events] == [
        "created",
        "ringing",
        "in-progress",
        "cold-transfer",
        "ringing",
        "in-progress",
        "ended",
    ]
    windows = [(0, 0.2), (0, 0), (1.4, 1.6), (7, 7), (7, 7.2), (8.2, 8.4), (42, 42)]
    for stamp, (low, high) in zip(stamps, windows, strict=True):
        assert low <= stamp <= high
    # each is sent when its timestamp comes due; the truncated ringing right after created
    assert bridge.arrived == pytest.approx(
        [stamps[0], stamps[0], stamps[2], 7.0, stamps[4], stamps[5], 42.0]
    )
    assert summary.elapsed == pytest.approx(42.0)


async def test_wait_gives_up_with_a_clear_message(closed_port: int) -> None:
    now = [0.0]

    async def fake_sleep(seconds: float) -> None:
        now[0] += seconds

    async with aiohttp.ClientSession() as session:
        with pytest.raises(sim.Unreachable, match=r"did not answer within 1s"):
            await sim.wait_until_up(
                session,
                f"http://127.0.0.1:{closed_port}/notifications?token=secret",
                1.0,
                clock=lambda: now[0],
                sleep=fake_sleep,
            )
    assert now[0] >= 1.0  # it kept trying until the deadline


async def test_wait_returns_once_healthz_answers() -> None:
    asked: list[str] = []

    async def healthz(request: web.Request) -> web.Response:
        asked.append(request.path)
        return web.json_response({"status": "alive"})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as session:
            await sim.wait_until_up(session, f"http://127.0.0.1:{port}/notifications", 5.0)
    finally:
        await runner.cleanup()
    assert asked == ["/healthz"]


@pytest.mark.parametrize(
    ("argv", "speed"),
    [
        ((), 1.0),  # the demo: real time, so a person sees each call ring, answer and end
        (("--speed", "5"), 5.0),
        (("--fast",), 0.0),
        (("--fast", "--speed", "5"), 0.0),
        (("--calls", "100"), 0.0),  # load mode: as fast as --rate allows
        (("--calls", "3", "--speed", "2"), 2.0),  # ... unless given a speed (the help says so)
        (("--shuffle",), 0.0),
    ],
)
def test_the_demo_paces_calls_in_real_time(argv: tuple[str, ...], speed: float) -> None:
    assert simulate_cmd.options_from(parse(*argv), {}).speed == speed
