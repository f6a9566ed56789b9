"""Issue 12, "done when": a replay of many calls against real `callbridge serve` processes
on one SQLite store, SIGKILLed 3 times while the provider's events (and its retries) arrive,
ends with no lost alert, no missing call and no duplicate (tests/support/replay_slack.py; the
larger run is tests/bench/bench_replay.py, results in docs/benchmarks.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.fake_slack import FakeSlack
from tests.support.replay_slack import MIN_RING, judge, replay, scenario

pytestmark = pytest.mark.slow

CALLS = 200


def test_the_scenario_has_every_kind_of_call_and_the_oracle_counts_alerts() -> None:
    calls = scenario(CALLS, seed=1)
    kinds = {c.kind for c in calls}
    assert kinds == {"answered", "missed-long", "missed-short", "warm", "cold", "outbound"}
    assert all(c.ring >= MIN_RING for c in calls if c.alert)
    assert all(c.ring < MIN_RING for c in calls if c.kind == "missed-short")
    # transfers name their other leg in merged_id, and that leg's events are in the call
    for call in calls:
        if call.kind in {"warm", "cold"}:
            merged = {p.get("merged_id") for _at, p in call.events} - {None}
            assert merged
            assert merged < call.ids


async def test_an_empty_slack_is_judged_missing_everything() -> None:
    calls = scenario(20, seed=2)
    async with FakeSlack(channels=()) as slack:
        verdict = judge(calls, slack)
    assert len(verdict.missing_calls) == 20
    assert len(verdict.lost_alerts) == sum(c.alert for c in calls) > 0


async def test_replay_with_three_kills_loses_nothing_and_posts_nothing_twice(
    tmp_path: Path,
) -> None:
    report = await replay(tmp_path, calls=CALLS, kills=3, seed=12)
    print(report.summary())
    assert report.kills == 3
    assert report.retries > 0  # the provider did have to retry
    verdict = report.verdict
    assert verdict.missing_calls == []
    assert verdict.lost_alerts == []
    assert verdict.wrong_alerts == []
    assert verdict.duplicates == []
    assert verdict.strays == []
