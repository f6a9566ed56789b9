"""Issue 12's promise from outside: real `callbridge serve` processes killed with SIGKILL three
times mid-stream, the provider retrying what failed (so events arrive out of order), rules with
`min_ring`; at the end every call has its live message, every missed call its alert, and
nothing shows twice. The larger run is tests/bench/bench_replay.py (docs/benchmarks.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.replay import replay

pytestmark = pytest.mark.slow


async def test_a_replay_with_three_kills_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    outcome = await replay(tmp_path, calls=200, kills=3, seed=1)
    assert outcome.kills == 3
    assert outcome.live > 150
    assert outcome.alerts > 10
    assert outcome.shown > outcome.live + 2 * outcome.alerts  # roots, alerts and replies
    assert outcome.retried > 0, "the kills made the provider retry: order was inverted"
    assert outcome.missing == [], outcome.summary()
    assert outcome.lost == [], outcome.summary()
    assert outcome.wrong == [], outcome.summary()
    assert outcome.duplicates == [], outcome.summary()
    print(outcome.summary())  # shown with -s: the run's numbers
