"""`callbridge simulate`'s progress line (it replaced tqdm)."""

from __future__ import annotations

import io

from bridge.cli.progress import ProgressLine


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_line_is_rewritten_at_most_ten_times_a_second_and_always_at_the_end() -> None:
    out, clock = io.StringIO(), Clock()
    with ProgressLine(12, out, clock=clock) as bar:
        for step in range(12):
            clock.now = step * 0.04  # 25 updates a second
            bar.update()
    frames = out.getvalue().split("\r")[1:]
    # Shown at 0.00 s (1), 0.12 s (4), 0.24 s (7), 0.36 s (10), and when done (12).
    assert frames == [" 1/12 calls    8%", " 4/12 calls   33%", " 7/12 calls   58%",
                      "10/12 calls   83%", "12/12 calls  100%\n"]  # fmt: skip


def test_one_call_is_singular() -> None:
    out = io.StringIO()
    with ProgressLine(1, out, clock=Clock()) as bar:
        bar.update()
    assert out.getvalue() == "\r1/1 call  100%\n"


def test_disabled_writes_nothing() -> None:
    out = io.StringIO()
    with ProgressLine(3, out, disable=True, clock=Clock()) as bar:
        for _ in range(3):
            bar.update()
    assert out.getvalue() == ""
    assert bar.finished
