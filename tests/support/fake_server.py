"""What the HTTP-level chat fakes (fake_slack.py, fake_teams.py) share: a clock that moves only
when told to, the two rate limiters the platforms document (a token bucket, sliding windows),
programmed faults (the kinds both fakes know, and a queue of them), and the local server's
lifecycle (aiohttp on 127.0.0.1, port 0) with the answers to the faults that look the same on
either platform (``hang``, ``drop``, ``http``)."""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

from aiohttp import web

F = TypeVar("F")
Only = Callable[[Mapping[str, Any]], bool]  # which requests a programmed fault applies to


class ManualClock:
    """A monotonic clock that only moves when told to: ``clock.advance(seconds)``."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class TokenBucket:
    """``per_second`` requests on average, ``capacity`` at once; starts full at ``now``.

    ``late``: seconds by which a request may reach the server later than its client paced it
    (a request that would have been allowed that much earlier is allowed, the bucket going
    into debt that later requests pay back): the server judges arrival times, and the gap
    between two arrivals can be shorter than the client's gap by the difference of their
    delays (network jitter, or here the event loop's latency, which a compressed clock
    magnifies: 1 ms real is 0.1 s at scale 100)."""

    def __init__(self, per_second: float, capacity: int, now: float, late: float = 0.0) -> None:
        self.rate, self.capacity, self.last = per_second, capacity, now
        self.tokens = float(capacity)
        self.late = late

    def take(self, now: float) -> float:
        """0 if allowed (and consumed), else the seconds until one request would be."""
        self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens + self.late * self.rate >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate - self.late


class SlidingWindows:
    """At most ``allowed`` requests in any ``seconds``, for every ``(seconds, allowed)``."""

    def __init__(self, windows: Iterable[tuple[float, int]]) -> None:
        self.windows = tuple(sorted(windows))
        self.seen: deque[float] = deque()

    def take(self, now: float) -> float:
        """0 if allowed (and counted), else the seconds until one request would be."""
        longest = self.windows[-1][0]
        while self.seen and self.seen[0] <= now - longest:
            self.seen.popleft()
        wait = 0.0
        for seconds, allowed in self.windows:
            inside = [t for t in self.seen if t > now - seconds]
            if len(inside) >= allowed:
                wait = max(wait, inside[-allowed] + seconds - now)
        if wait > 0:
            return wait
        self.seen.append(now)
        return 0.0


@dataclass(frozen=True)
class Fault:
    """One programmed failure of the kinds every fake knows: ``http`` (that status with an
    HTML body, as a proxy's 5xx; ``Retry-After`` if given), ``ratelimit`` (429 with
    ``Retry-After``; each fake words the body), ``hang`` (never answer, until the fake closes),
    ``drop`` (close the connection). A fake subclasses it for its own kinds."""

    kind: str
    status: int = 500
    retry_after: int | None = 1

    @classmethod
    def http(cls, status: int = 500, retry_after: int | None = None) -> Self:
        return cls("http", status=status, retry_after=retry_after)

    @classmethod
    def ratelimit(cls, retry_after: int = 1) -> Self:
        return cls("ratelimit", status=429, retry_after=retry_after)

    @classmethod
    def hang(cls) -> Self:
        return cls("hang")

    @classmethod
    def drop(cls) -> Self:
        return cls("drop")


class FaultQueue(Generic[F]):
    """Programmed faults per request kind, each used once, in the order they were added."""

    def __init__(self) -> None:
        self._queued: defaultdict[str, deque[tuple[F, Only | None]]] = defaultdict(deque)

    def add(self, key: str, fault: F, times: int = 1, only: Only | None = None) -> None:
        """The next ``times`` requests of ``key`` (those ``only`` accepts, if given) fail."""
        self._queued[key].extend([(fault, only)] * times)

    def take(self, keys: Iterable[str], params: Mapping[str, Any] | None = None) -> F | None:
        """The first fault queued for the first of ``keys`` that has one for this request."""
        for key in keys:
            queue = self._queued.get(key, deque())
            for n, (fault, only) in enumerate(queue):
                if only is None or only(params or {}):
                    del queue[n]
                    return fault
        return None

    def pending(self, key: str) -> int:
        return len(self._queued[key])

    def clear(self) -> None:
        self._queued.clear()


class LocalServer:
    """An aiohttp app on 127.0.0.1, port 0, as an async context manager; ``url`` is its base
    (``path`` appended) once entered. Subclasses add their routes in :meth:`routes`."""

    path = "/"

    def __init__(self) -> None:
        self.url = ""
        self._released = asyncio.Event()
        self._runner: web.AppRunner | None = None

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}{self.path}"
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._released.set()  # let hung handlers finish so shutdown does not wait on them
        if self._runner is not None:
            await self._runner.cleanup()

    async def common_fault(self, request: web.Request, fault: Fault) -> web.StreamResponse | None:
        """The answer to a ``hang``, ``drop`` or ``http`` fault; None for the other kinds (the
        fake answers those in its platform's words)."""
        if fault.kind == "hang":
            await self._released.wait()
            return web.Response(status=504)
        if fault.kind == "drop":
            assert request.transport is not None
            request.transport.abort()
            return web.Response(status=500)  # never reaches the client
        if fault.kind == "http":
            headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
            body = f"<html><body>{fault.status} Service Error</body></html>"
            return web.Response(
                status=fault.status, text=body, content_type="text/html", headers=headers
            )
        return None
