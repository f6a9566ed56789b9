"""A one-line progress counter for a terminal (``callbridge simulate``), instead of tqdm.

``  37/200 calls  18%`` rewritten in place at most ten times a second, ended with a newline;
silent when disabled (``--quiet``, or stderr not a terminal).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import Self, TextIO


class ProgressLine:
    def __init__(
        self,
        total: int,
        stream: TextIO,
        *,
        unit: str = "call",
        disable: bool = False,
        clock: Callable[[], float] = time.monotonic,
        interval: float = 0.1,
    ) -> None:
        self.total, self.done = total, 0
        self._stream, self._unit, self._disable = stream, unit, disable
        self._clock, self._interval = clock, interval
        self._shown_at: float | None = None
        self._open = False

    def update(self, n: int = 1) -> None:
        self.done += n
        now = self._clock()
        if self._shown_at is None or now - self._shown_at >= self._interval or self.finished:
            self._show(now)

    @property
    def finished(self) -> bool:
        return self.done >= self.total

    def close(self) -> None:
        if self._open:
            self._stream.write("\n")
            self._stream.flush()
            self._open = False

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _show(self, now: float) -> None:
        if self._disable:
            return
        self._shown_at = now
        units = self._unit if self.total == 1 else f"{self._unit}s"
        percent = f"  {100 * self.done // self.total:3d}%" if self.total else ""
        width = len(str(self.total))
        self._stream.write(f"\r{self.done:>{width}}/{self.total} {units}{percent}")
        self._stream.flush()
        self._open = True
