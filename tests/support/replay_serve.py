"""``callbridge serve`` with one compressed clock, for replays (``python -m
tests.support.replay_serve serve ...``, the same arguments as ``callbridge serve``).

Everything is the real serve path (settings, store, HTTP, dispatcher, delivery, slack-sdk);
only the clocks run ``REPLAY_SCALE`` times faster than real time, from ``REPLAY_T0`` (a
``time.monotonic()`` reading, system-wide on Linux) and ``REPLAY_WALL0`` (the wall clock, in
epoch seconds, at that instant). Every process of one replay shares the same origin, so the
wall clock keeps going forward across kills and restarts. Slack's published limits then hold
in scaled time, enforced by the fake Slack on the same scale."""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime
from typing import Any

from bridge.cli import main
from bridge.deliver.delivery import DeliveryOptions
from bridge.deliver.dispatcher import DispatchOptions
from bridge.service import app


def install() -> None:
    scale = float(os.environ["REPLAY_SCALE"])
    t0 = float(os.environ["REPLAY_T0"])
    wall0 = float(os.environ["REPLAY_WALL0"])

    def monotonic() -> float:
        return t0 + (time.monotonic() - t0) * scale

    def wall() -> datetime:
        return datetime.fromtimestamp(wall0 + (time.monotonic() - t0) * scale, UTC)

    real = app.Bridge

    class ScaledBridge(real):  # type: ignore[misc,valid-type]
        def __init__(self, settings: Any, **kwargs: Any) -> None:
            defaults = DispatchOptions()
            kwargs.setdefault("clock", wall)
            kwargs.setdefault("monotonic", monotonic)
            kwargs.setdefault("delivery", DeliveryOptions(time_scale=scale))
            kwargs.setdefault(
                "dispatch",
                DispatchOptions(
                    stale_after=settings.stale_after,
                    retention=settings.retention,
                    cycle_interval=defaults.cycle_interval / scale,  # real seconds
                    max_pause=defaults.max_pause / scale,
                    poll_interval=1.0,  # real seconds
                ),
            )
            super().__init__(settings, **kwargs)

    app.Bridge = ScaledBridge  # type: ignore[misc]


if __name__ == "__main__":
    install()
    sys.exit(main())
