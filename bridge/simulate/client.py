"""``callbridge simulate``: play the provider's call flows against a running bridge.

Demo (every scenario once), smoke test (exit status) and load generator (``--calls N --rate R
--concurrency C``). The events of one call are sent in order, one after the other: with
``speed`` S each when its timestamp comes due on the call's timeline compressed S times (the
timestamps too), with ``speed`` 0 back to back; calls are started at ``--rate`` calls per second
and at most ``--concurrency`` requests are in flight.

The core, :func:`simulate`, takes the HTTP session, the clocks and the progress sink as
arguments so that tests can drive it against a local server; the command line around it
(options, progress bar, exit status) is :mod:`bridge.cli.simulate`.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Protocol

import aiohttp
import msgspec
from yarl import URL

from bridge.rules.model import counted
from bridge.simulate import SCENARIOS, Payload, ScenarioContext

DEFAULT_URL: Final = "http://127.0.0.1:8080/notifications"
MAX_PROBLEMS: Final = 5


class Unreachable(Exception):
    """The bridge did not accept a connection before answering anything."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"cannot reach {url}: {reason}; is `callbridge serve` running?")


class Progress(Protocol):
    def update(self, n: int = 1) -> object: ...


class _NoProgress:
    def update(self, n: int = 1) -> object:
        return None


@dataclass(frozen=True)
class Options:
    url: str = DEFAULT_URL
    token: str | None = field(default=None, repr=False)
    scenarios: tuple[str, ...] = tuple(SCENARIOS)
    calls: int | None = None  # None: each scenario once (demo); N: load mode
    rate: float = 50.0  # calls started per second
    concurrency: int = 16  # requests in flight at most
    seed: int = 0
    shuffle: bool = False  # random order plus one duplicate per call
    speed: float = 0.0  # 0: back to back; S: the call happens S times faster (gaps and stamps)
    timeout: float = 10.0  # seconds per request


@dataclass(frozen=True)
class PlannedCall:
    scenario: str
    call_ids: tuple[str, ...]
    bodies: tuple[bytes, ...]
    delays: tuple[float, ...]  # seconds to wait before sending each body


@dataclass(frozen=True)
class CallResult:
    scenario: str
    call_ids: tuple[str, ...]
    events: int
    accepted: int
    duplicates: int
    failed: int


@dataclass(frozen=True)
class Summary:
    sent: int
    accepted: int
    duplicates: int
    rejected: int  # 4xx
    errors: int  # 5xx, timeouts, connection failures
    elapsed: float
    latencies: tuple[float, ...]  # seconds, of every answered request
    problems: tuple[str, ...]  # the first few rejections/errors, with their bodies
    calls: tuple[CallResult, ...]

    @property
    def ok(self) -> bool:
        return self.sent > 0 and self.accepted + self.duplicates == self.sent

    def percentile(self, q: int) -> float | None:
        """The q-th percentile of the acknowledgement latency (seconds)."""
        data = sorted(self.latencies)
        if not data:
            return None
        if len(data) == 1:
            return data[0]
        return statistics.quantiles(data, n=100, method="inclusive")[q - 1]

    def render(self) -> str:
        rate = self.sent / self.elapsed if self.elapsed > 0 else 0.0
        lines = [
            f"sent        {counted(self.sent, 'event')} in {counted(len(self.calls), 'call')}",
            f"accepted    {self.accepted}",
            f"duplicates  {self.duplicates}",
            f"rejected    {self.rejected}",
            f"errors      {self.errors}",
            f"elapsed     {self.elapsed:.2f} s ({rate:.1f} events/s)",
        ]
        if self.latencies:
            parts = [f"p{q} {_ms(self.percentile(q))}" for q in (50, 95, 99)]
            parts.append(f"max {_ms(max(self.latencies))}")
            lines.append("ack latency " + "  ".join(parts))
        lines.extend(f"  {problem}" for problem in self.problems)
        return "\n".join(lines)


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


def display_url(url: str) -> str:
    """The URL without query or credentials (a token may be passed as ``?token=``)."""
    parsed = URL(url).with_query(None).with_fragment(None)
    return str(parsed.with_user(None) if parsed.is_absolute() else parsed)


def plan_call(scenario: str, options: Options, rng: random.Random, start: datetime) -> PlannedCall:
    """Build one call's request bodies (pure, given the random generator).

    With gaps (``speed`` S > 0, no shuffle) the call happens S times faster: its events are
    stamped on that compressed timeline from ``start`` and each is sent when its timestamp comes
    due, never before, so the bridge sees timestamps at (or just before) the time they arrive.
    """
    paced = options.speed > 0 and not options.shuffle
    ctx = ScenarioContext(start, seed=rng, speed=options.speed if paced else 1.0)
    payloads = SCENARIOS[scenario].build(ctx)
    if options.shuffle:
        payloads = list(payloads)
        rng.shuffle(payloads)
        payloads.insert(rng.randrange(len(payloads) + 1), rng.choice(payloads))
    return PlannedCall(
        scenario=scenario,
        call_ids=tuple(ctx.legs.values()),
        bodies=tuple(msgspec.json.encode(p) for p in payloads),
        delays=_delays(payloads, ctx.start) if paced else (0.0,) * len(payloads),
    )


def _delays(payloads: Sequence[Payload], start: datetime) -> tuple[float, ...]:
    """Seconds to wait before each payload so that it goes out when its timestamp comes due
    (counted from ``start``), in order: one stamped earlier than the one before (a whole
    second truncated) goes right after it."""
    delays: list[float] = []
    sent = 0.0
    for payload in payloads:
        due = (datetime.fromisoformat(payload["timestamp"]) - start).total_seconds()
        delays.append(max(due - sent, 0.0))
        sent = max(sent, due)
    return tuple(delays)


def plan(options: Options, now: Callable[[], datetime]) -> Iterator[PlannedCall]:
    """The calls to make, built lazily (each starts at the wall-clock time it is launched)."""
    rng = random.Random(options.seed)  # noqa: S311 - reproducible sample data, not security
    if options.calls is None:
        for name in options.scenarios:
            yield plan_call(name, options, rng, now())
    else:
        for _ in range(options.calls):
            yield plan_call(rng.choice(options.scenarios), options, rng, now())


class _Tally:
    """Mutable counters of one run (private to :func:`simulate`)."""

    def __init__(self) -> None:
        self.sent = self.accepted = self.duplicates = self.rejected = self.errors = 0
        self.answered = False
        self.latencies: list[float] = []
        self.problems: list[str] = []
        self.calls: list[CallResult] = []

    def problem(self, text: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)


async def simulate(
    session: aiohttp.ClientSession,
    options: Options,
    progress: Progress | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Summary:
    """Send the planned calls; raise :class:`Unreachable` if the bridge never answers."""
    tally = _Tally()
    bar = progress or _NoProgress()
    gate = asyncio.Semaphore(options.concurrency)
    headers = {"Content-Type": "application/json"}
    if options.token:
        headers["Authorization"] = f"Bearer {options.token}"
    shown = display_url(options.url)
    timeout = aiohttp.ClientTimeout(total=options.timeout)

    async def post(call: PlannedCall, index: int, body: bytes) -> str | None:
        """Send one event; return the bridge's status ("accepted"/"duplicate") or None."""
        where = f"{call.scenario} event {index + 1}/{len(call.bodies)}"
        async with gate:
            tally.sent += 1
            started = clock()
            try:
                async with session.post(
                    options.url, data=body, headers=headers, timeout=timeout
                ) as resp:
                    text = await resp.text(errors="replace")
                    status = resp.status
            except aiohttp.ClientConnectorError as err:
                if not tally.answered:
                    raise Unreachable(shown, _reason(err)) from None
                tally.errors += 1
                tally.problem(f"{where}: cannot connect: {_reason(err)}")
                return None
            except (aiohttp.ClientError, TimeoutError) as err:
                tally.errors += 1
                tally.problem(f"{where}: {type(err).__name__}: {err or 'timed out'}")
                return None
            tally.answered = True
            tally.latencies.append(clock() - started)
        return _classify(tally, where, status, text)

    async def run_call(call: PlannedCall) -> None:
        accepted = duplicates = 0
        for index, (body, delay) in enumerate(zip(call.bodies, call.delays, strict=True)):
            if delay > 0:
                await sleep(delay)
            outcome = await post(call, index, body)
            accepted += outcome == "accepted"
            duplicates += outcome == "duplicate"
        failed = len(call.bodies) - accepted - duplicates
        tally.calls.append(
            CallResult(call.scenario, call.call_ids, len(call.bodies), accepted, duplicates, failed)
        )
        bar.update(1)

    began = clock()
    try:
        async with asyncio.TaskGroup() as group:
            for number, call in enumerate(plan(options, now)):
                delay = began + number / options.rate - clock()
                if delay > 0:
                    await sleep(delay)
                group.create_task(run_call(call), name=f"simulate-call-{number}")
    except* Unreachable as failures:
        raise failures.exceptions[0] from None
    return Summary(
        sent=tally.sent,
        accepted=tally.accepted,
        duplicates=tally.duplicates,
        rejected=tally.rejected,
        errors=tally.errors,
        elapsed=clock() - began,
        latencies=tuple(tally.latencies),
        problems=tuple(tally.problems),
        calls=tuple(tally.calls),
    )


def _classify(tally: _Tally, where: str, status: int, text: str) -> str | None:
    if 200 <= status < 300:
        try:
            answer = msgspec.json.decode(text)
        except msgspec.DecodeError:
            answer = None
        if isinstance(answer, dict) and answer.get("status") == "duplicate":
            tally.duplicates += 1
            return "duplicate"
        tally.accepted += 1
        return "accepted"
    body = " ".join(text.split())[:300]
    hint = " (check --token or CALLBRIDGE_WEBHOOK_TOKEN)" if status == 401 else ""
    tally.problem(f"{where}: HTTP {status}{hint}: {body}")
    if 400 <= status < 500:
        tally.rejected += 1
    else:
        tally.errors += 1
    return None


def _reason(err: aiohttp.ClientConnectorError) -> str:
    errno = err.os_error.errno
    if errno:
        return os.strerror(errno).lower()
    return str(err.os_error) or type(err.os_error).__name__


# ---- readiness ------------------------------------------------------------------------


async def wait_until_up(
    session: aiohttp.ClientSession,
    url: str,
    seconds: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Poll the bridge's /healthz (beside ``url``) until it answers or ``seconds`` pass."""
    health = URL(url).with_path("/healthz").with_query(None)
    deadline = clock() + seconds
    while True:
        try:
            async with session.get(health, timeout=aiohttp.ClientTimeout(total=2)) as response:
                if response.status == 200:
                    return
        except (aiohttp.ClientError, TimeoutError):
            pass
        if clock() >= deadline:
            raise Unreachable(display_url(str(health)), f"did not answer within {seconds:g}s")
        await sleep(0.2)
