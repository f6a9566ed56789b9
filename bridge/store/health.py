"""How the store's writes are doing, and how a background loop waits while they fail.

:class:`StoreHealth` is shared by everything that writes (ingest, dispatch, delivery): the
last write failed and none succeeded since means events cannot be stored, and ``/readyz``
answers 503 (a full disk: reads still work, so a ping alone would not tell). It forgets a
failure after ``recent`` seconds without another one, so an instance a load balancer took
out is tried again even when nothing else writes; and at once when the store could not even
be reached after that failure and can be again (an outage of the database, not a full disk:
the failed writes are explained by it).

:class:`StoreBackoff` is one background loop's answer to store errors: it waits before the
next attempt (``first`` seconds, doubling up to ``cap``) and logs the failing state, not each
attempt: one line at the first failure, at most one summary per ``summary_every`` seconds
while it lasts, and one line when the store works again.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

log = structlog.get_logger("bridge.store.health")

Monotonic = Callable[[], float]


class StoreHealth:
    def __init__(self, *, recent: float = 30.0, monotonic: Monotonic = time.monotonic) -> None:
        self._recent = recent
        self._monotonic = monotonic
        self._failed_at: float | None = None
        self._unreachable_at: float | None = None
        self._error = ""

    def failed(self, error: BaseException) -> None:
        self._failed_at = self._monotonic()
        self._error = str(error) or type(error).__name__

    def succeeded(self) -> None:
        self._failed_at = None

    def pinged(self, ok: bool) -> None:
        """The store answered a ping (``ok``) or could not be reached."""
        if not ok:
            self._unreachable_at = self._monotonic()
        elif (
            self._failed_at is not None
            and self._unreachable_at is not None
            and self._unreachable_at >= self._failed_at
        ):
            self._failed_at = None  # the writes failed because it was gone; it is back

    def problem(self) -> str | None:
        """Why events cannot be stored now (None: the last write worked, or long ago)."""
        if self._failed_at is None or self._monotonic() - self._failed_at > self._recent:
            return None
        return self._error


class StoreBackoff:
    def __init__(
        self,
        loop: str,
        health: StoreHealth | None = None,
        *,
        first: float = 0.1,
        cap: float = 5.0,
        summary_every: float = 60.0,
        monotonic: Monotonic = time.monotonic,
    ) -> None:
        self.loop = loop
        self._health = health
        self._first, self._cap, self._summary_every = first, cap, summary_every
        self._monotonic = monotonic
        self._streak = 0  # failed attempts in a row
        self._since: float | None = None  # when the failing state began
        self._summary_at = 0.0
        self._unsummarised = 0  # failures since the last line
        self._until = 0.0  # no attempt before this

    @property
    def failing(self) -> bool:
        return self._since is not None

    def wait(self) -> float:
        """Seconds until the next attempt is due (0: now)."""
        return max(self._until - self._monotonic(), 0.0)

    def failed(self, error: BaseException) -> float:
        """Record a failed attempt; returns the seconds to wait before the next one.

        Failures while already waiting (concurrent attempts of one round) count once."""
        now = self._monotonic()
        if self._health is not None:
            self._health.failed(error)
        self._unsummarised += 1
        if now < self._until:
            return self._until - now
        delay = min(self._first * 2.0 ** min(self._streak, 30), self._cap)
        self._streak += 1
        self._until = now + delay
        message = str(error) or type(error).__name__
        if self._since is None:
            self._since = self._summary_at = now
            self._unsummarised = 0
            log.warning("store.failing", loop=self.loop, error=message, retry_in=delay)
        elif now - self._summary_at >= self._summary_every:
            log.warning(
                "store.still_failing",
                loop=self.loop,
                error=message,
                failures=self._unsummarised,
                failing_for=round(now - self._since, 1),
                retry_in=delay,
            )
            self._summary_at, self._unsummarised = now, 0
        return delay

    def succeeded(self, *, wrote: bool = True) -> None:
        """An attempt worked. ``wrote``: it wrote to the store (reads alone say nothing about
        a full disk, so only a write clears the shared health)."""
        if wrote and self._health is not None:
            self._health.succeeded()
        if self._since is not None:
            log.info(
                "store.recovered",
                loop=self.loop,
                failing_for=round(self._monotonic() - self._since, 1),
                failures=self._unsummarised,
            )
        self._streak, self._since, self._unsummarised, self._until = 0, None, 0, 0.0
