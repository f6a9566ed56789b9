"""How `serve` runs: the event loop it picks (CALLBRIDGE_EVENT_LOOP) and its GC tuning."""

from __future__ import annotations

import asyncio
import gc
import signal
import sys
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import uvloop

import bridge.service.app
from bridge import cli
from bridge.service import runtime
from bridge.service.settings import SettingsError, load
from tests.support.process import serve


@pytest.fixture
def no_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # `import uvloop` raises ImportError


def test_auto_and_uvloop_run_on_uvloop() -> None:
    for choice in ("auto", "uvloop"):
        loop = runtime.factory(choice)()
        try:
            assert isinstance(loop, uvloop.Loop)
            assert runtime.describe(loop) == "uvloop"
        finally:
            loop.close()


def test_asyncio_runs_on_the_standard_loop() -> None:
    loop = runtime.factory("asyncio")()
    try:
        assert not isinstance(loop, uvloop.Loop)
        assert runtime.describe(loop) == "asyncio"
    finally:
        loop.close()


@pytest.mark.usefixtures("no_uvloop")
def test_auto_falls_back_without_uvloop() -> None:
    assert runtime.factory("auto") is asyncio.new_event_loop


@pytest.mark.usefixtures("no_uvloop")
def test_asking_for_a_missing_uvloop_is_a_clear_error() -> None:
    with pytest.raises(runtime.LoopUnavailable, match="CALLBRIDGE_EVENT_LOOP=uvloop"):
        runtime.factory("uvloop")


def test_event_loop_setting_is_validated() -> None:
    assert load({}).event_loop == "auto"
    assert load({"CALLBRIDGE_EVENT_LOOP": "AsyncIO"}).event_loop == "asyncio"
    with pytest.raises(SettingsError) as caught:
        load({"CALLBRIDGE_EVENT_LOOP": "trio"})
    assert caught.value.problems == (
        "CALLBRIDGE_EVENT_LOOP: expected auto, uvloop, asyncio, got 'trio'",
    )


@pytest.fixture
def gc_state() -> Iterator[None]:
    thresholds = gc.get_threshold()
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


@pytest.mark.usefixtures("gc_state")
def test_gc_collects_young_objects_less_often_and_still_frees_cycles() -> None:
    runtime.tune_gc()
    assert gc.get_threshold() == runtime.GC_THRESHOLDS
    assert runtime.GC_THRESHOLDS[0] > 700  # CPython's default
    runtime.freeze_startup()
    frozen = gc.get_freeze_count()
    assert frozen > 0  # what start-up built is out of the collector's sight

    node = weakref.ref(_Node())  # a cycle made after start-up, unreachable at once
    gc.collect()
    assert node() is None
    assert gc.get_freeze_count() == frozen


@pytest.mark.slow
@pytest.mark.parametrize(("choice", "expected"), [(None, "uvloop"), ("asyncio", "asyncio")])
async def test_serve_reports_its_loop_and_stops_cleanly_on_it(
    tmp_path: Path, choice: str | None, expected: str
) -> None:
    env = {"CALLBRIDGE_EVENT_LOOP": choice} if choice else {}
    async with serve(tmp_path, db=tmp_path / "bridge.db", extra_env=env) as server:
        listening = next(line for line in server.lines if line["event"] == "serve.listening")
        assert listening["event_loop"] == expected
        assert await server.stop(signal.SIGTERM) == 0


def test_the_serve_command_tunes_the_gc_and_freezes_once_listening(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    async def fake_serve(settings: object, *, ready: Callable[[int], None]) -> int:
        calls.append(f"serve on {runtime.describe(asyncio.get_running_loop())}")
        ready(8080)
        return 0

    monkeypatch.setattr(bridge.service.app, "serve", fake_serve)
    monkeypatch.setattr(runtime, "tune_gc", lambda: calls.append("tune_gc"))
    monkeypatch.setattr(runtime, "freeze_startup", lambda: calls.append("freeze"))
    monkeypatch.chdir(tmp_path)
    code = cli.main(["serve", "--event-loop", "asyncio", "--log-format", "json"])
    assert code == 0
    assert calls == ["tune_gc", "serve on asyncio", "freeze"]
