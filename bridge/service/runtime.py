"""How the ``serve`` process runs: its event loop and its garbage collector.

The event loop (``CALLBRIDGE_EVENT_LOOP``): uvloop (libuv) runs the same asyncio code with less
interpreter time per request, callback and thread hand-off: the ingest benchmark measures ~10 %
less CPU per event on it. The standard loop stays one setting away, for platforms without
uvloop or to rule it out when debugging.

The garbage collector: every webhook allocates a few hundred objects, so with CPython's
default thresholds the cyclic collector runs ~250 times a second under load, and every few
seconds a full collection walks every live object (~20 ms, holding the interpreter lock, so
the store's writer thread waits too). :func:`tune_gc` collects the young generation every
20 000 allocations instead of 700, and :func:`freeze_startup` moves what start-up built (the
modules, the rules, the app) out of the collector's sight. Cycles are still collected; the
benchmark measured +7 % events/s and a lower p99 (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from typing import Literal

EventLoopChoice = Literal["auto", "uvloop", "asyncio"]
LoopFactory = Callable[[], asyncio.AbstractEventLoop]


class LoopUnavailable(Exception):
    """``uvloop`` was asked for explicitly but cannot be imported here."""


def factory(choice: EventLoopChoice) -> LoopFactory:
    """The constructor of the chosen loop (``auto``: uvloop when installed)."""
    if choice == "asyncio":
        return asyncio.new_event_loop
    try:
        import uvloop  # noqa: PLC0415 (optional: not on every platform)
    except ImportError as err:
        if choice == "uvloop":
            raise LoopUnavailable(
                f"CALLBRIDGE_EVENT_LOOP=uvloop but uvloop cannot be imported ({err}); "
                "install it or use auto/asyncio"
            ) from err
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def describe(loop: asyncio.AbstractEventLoop) -> str:
    """``uvloop`` or ``asyncio``, for the start-up log line."""
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


GC_THRESHOLDS = (20_000, 20, 20)


def tune_gc() -> None:
    """Collect the young generation less often (see the module's docstring)."""
    gc.set_threshold(*GC_THRESHOLDS)


def freeze_startup() -> None:
    """Once started: collect what start-up left behind, then exempt the survivors (they live
    as long as the process) from every later collection."""
    gc.collect()
    gc.freeze()
