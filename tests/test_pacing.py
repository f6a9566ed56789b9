"""Client-side pacing keeps under every published window of the chat platforms from any start
(issue 12, item 8): a cold start, and an HA takeover whose dead leader had just spent the
platform's budget. The windows are the fakes' (tests/support), written from the platforms'
documentation, not from bridge/deliver/pacing.py; time is a manual clock."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bridge.deliver.pacing import SLACK, TEAMS, Pacer
from tests.support.fake_slack import Limits, _Bucket
from tests.support.fake_teams import WINDOWS

STEP = 0.01  # seconds between the greedy sender's looks at the pacer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def greedy(pacer: Pacer, clock: Clock, platform: str, action: str, seconds: float) -> list[float]:
    """Send whenever the pacer allows, for ``seconds``: the times of the requests."""
    sent: list[float] = []
    end = clock.now + seconds
    while clock.now < end:
        if pacer.wait(platform, action, "C1") <= 0:
            pacer.take(platform, action, "C1")
            sent.append(clock.now)
        else:
            clock.now += STEP
    return sent


def worst_window(times: list[float], seconds: float) -> int:
    """The most requests in any window of ``seconds`` (sliding)."""
    most, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - seconds:
            start += 1
        most = max(most, end - start + 1)
    return most


@pytest.mark.parametrize("action", ["post", "update", "delete", "find"])
def test_teams_stays_under_every_window_from_a_cold_start(action: str) -> None:
    clock = Clock()
    sent = greedy(Pacer({"teams": TEAMS}, clock), clock, "teams", action, 120)
    for seconds, allowed in WINDOWS[:2]:  # the hour window needs an hour: see the next test
        assert worst_window(sent, seconds) <= allowed, (seconds, allowed)
    assert len(sent) > 120 * 1.2  # and still uses most of the budget (~1.5/s sustained)


def test_teams_hour_window() -> None:
    clock = Clock()
    sent = greedy(Pacer({"teams": TEAMS}, clock), clock, "teams", "post", 3600)
    assert worst_window(sent, 3600) <= WINDOWS[2][1]


def slack_limit(per_second: float, burst: int, clock: Clock, *, spent: bool) -> Callable[[], bool]:
    """Slack's side of the bucket; ``spent``: a dead leader emptied it just now."""
    bucket = _Bucket(per_second, burst, clock.now)
    if spent:
        bucket.tokens = 0.0
    return lambda: bucket.take(clock.now) == 0


@pytest.mark.parametrize("spent", [False, True], ids=["cold start", "takeover"])
@pytest.mark.parametrize(
    ("action", "per_second", "burst"),
    [
        ("post", Limits.post_per_second, Limits.post_burst),
        ("update", Limits.updates_per_minute / 60, Limits.update_burst),
    ],
)
def test_slack_is_never_refused_from_any_start(
    action: str, per_second: float, burst: int, spent: bool
) -> None:
    clock = Clock()
    allowed = slack_limit(per_second, burst, clock, spent=spent)
    sent = greedy(Pacer({"slack": SLACK}, clock), clock, "slack", action, 300)
    # Replay the requests against Slack's bucket in order: none is refused.
    refused = 0
    for t in sent:
        clock.now = t
        refused += not allowed()
    assert refused == 0
    assert len(sent) >= 300 * per_second * 0.75  # most of the budget is used


def test_a_takeover_into_a_full_teams_window_is_not_refused() -> None:
    """The dead leader sent 6 requests in the last second (and 53 in 30 s): a new pacer that
    started full would have sent into those windows at once."""
    clock = Clock()
    before = [clock.now - 30 + i * (29.0 / 47) for i in range(47)]
    before += [clock.now - 0.9 + i * 0.1 for i in range(6)]
    sent = before + greedy(Pacer({"teams": TEAMS}, clock), clock, "teams", "post", 60)
    for seconds, allowed in WINDOWS[:2]:
        assert worst_window(sorted(sent), seconds) <= allowed, (seconds, allowed)
