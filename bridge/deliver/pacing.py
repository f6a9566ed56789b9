"""Client-side pacing below the chat platforms' published limits (token buckets).

Slack: ``chat.postMessage`` about 1 per second per channel (short bursts allowed),
``chat.update`` about 50 per minute per workspace, ``conversations.history`` tier 3 (~50/min).
Teams (Bot Connector, per bot): 7 per second and 60 per 30 s per conversation, 1800 per hour;
about 30-50 per second per app per tenant. The defaults stay below these with a margin, so a
429 is an exception rather than the control mechanism. A 429 with ``Retry-After`` also
pauses the bucket it hit.

Every window holds from any start: a bucket with burst ``B`` and rate ``r`` allows at most
``B + r·T`` requests in any ``T`` seconds, which the rates below keep under each published
window (Teams: 3 + 3·1 = 6 ≤ 7 per second, 8 + 1.5·30 = 53 ≤ 60 per 30 s). A bucket starts
*empty*, as if its budget had just been spent: after a restart or an HA takeover the previous
process's (or dead leader's) spending is unknown, so the new one ramps up at the sustained
rate instead of bursting into a window that may already be full. The one exception is Teams'
hourly window: starting it empty would hold a conversation to 0.4 messages a second for
minutes after every start; it starts full, so after a takeover under a sustained load near
1800 an hour in one conversation a few 429s remain possible (they are honoured).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Rate:
    per_second: float
    burst: float
    # Start with the burst available (only for windows far longer than a takeover, where an
    # empty start would throttle for minutes; see the module doc).
    start_full: bool = False

    @classmethod
    def per_minute(cls, n: float, burst: float) -> Rate:
        return cls(n / 60.0, burst)


class Bucket:
    def __init__(self, rate: Rate, now: float) -> None:
        self.rate = rate
        self._tokens = rate.burst if rate.start_full else 0.0  # else as if just spent
        self._at = now
        self._paused_until = now

    def _refill(self, now: float) -> None:
        if now > self._at:
            self._tokens = min(
                self.rate.burst, self._tokens + (now - self._at) * self.rate.per_second
            )
            self._at = now

    def wait(self, now: float) -> float:
        """Seconds until one token is available (0 when it is available now)."""
        self._refill(now)
        paused = max(self._paused_until - now, 0.0)
        missing = max(1.0 - self._tokens, 0.0) / self.rate.per_second
        return max(paused, missing)

    def take(self, now: float) -> None:
        self._refill(now)
        self._tokens -= 1.0

    def pause(self, now: float, seconds: float) -> None:
        self._paused_until = max(self._paused_until, now + seconds)


# What one delivery action costs, per platform: (bucket scope, rate); the scope is "channel"
# (one bucket per channel/conversation) or "workspace" (one bucket per platform).
Scope = str
Action = str  # "post", "update", "find", "delete"

SLACK: Final[dict[Action, tuple[tuple[Scope, Rate], ...]]] = {
    "post": (("channel", Rate(0.9, 3)),),  # 3 + 0.9·T: under ~1/s per channel, short bursts
    "update": (("workspace", Rate.per_minute(40, 5)),),
    "delete": (("workspace", Rate.per_minute(40, 5)),),
    "find": (("history", Rate.per_minute(40, 3)),),
}
TEAMS: Final[dict[Action, tuple[tuple[Scope, Rate], ...]]] = {
    action: (
        ("channel", Rate(3.0, 3)),  # 7 per second per conversation
        ("channel-30s", Rate(45 / 30, 8)),  # 60 per 30 s
        ("channel-hour", Rate(1500 / 3600, 100, start_full=True)),  # 1800 per hour
        ("workspace", Rate(15.0, 10)),  # ~30-50 per second per app and tenant
    )
    for action in ("post", "update", "delete", "find")
}
UNLIMITED: Final[dict[Action, tuple[tuple[Scope, Rate], ...]]] = {}


class Pacer:
    """Token buckets per (platform, scope, channel), created on first use."""

    def __init__(
        self,
        limits: Mapping[str, Mapping[Action, tuple[tuple[Scope, Rate], ...]]],
        clock: Callable[[], float],
    ) -> None:
        self._limits = limits
        self._clock = clock
        self._buckets: dict[tuple[str, str, str], Bucket] = {}

    def _buckets_for(self, platform: str, action: Action, channel: str) -> list[Bucket]:
        found = []
        for scope, rate in self._limits.get(platform, {}).get(action, ()):
            key = (platform, scope, channel if scope.startswith("channel") else "")
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = Bucket(rate, self._clock())
            found.append(bucket)
        return found

    def wait(self, platform: str, action: Action, channel: str) -> float:
        now = self._clock()
        return max((b.wait(now) for b in self._buckets_for(platform, action, channel)), default=0)

    def take(self, platform: str, action: Action, channel: str) -> None:
        now = self._clock()
        for bucket in self._buckets_for(platform, action, channel):
            bucket.take(now)

    def pause(self, platform: str, action: Action, channel: str, seconds: float) -> None:
        now = self._clock()
        for bucket in self._buckets_for(platform, action, channel):
            bucket.pause(now, seconds)
