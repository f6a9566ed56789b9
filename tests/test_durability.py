"""The real `callbridge serve` process: accepted means stored, even across SIGKILL."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
from contextlib import closing, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bridge.core.events import decode
from bridge.store.sqlite import SqliteStore
from tests.support.harness import payload
from tests.support.process import serve, wait_until_clean

pytestmark = pytest.mark.slow


def call_events(n: int, start: datetime) -> list[bytes]:
    """Three events per call (ringing, answered, ended), interleaved across calls."""
    out: list[bytes] = []
    for step, status in enumerate(("ringing", "in-progress", "ended")):
        for i in range(n):
            at = (start + timedelta(seconds=10 * i + step * 3)).isoformat()
            target = {"number": "+31508009000", "name": "B", "account_number": 201}
            dest: dict[str, Any] = {"number": "+31508009000"}
            extra: dict[str, Any] = {}
            if status == "ringing":
                dest["targets"] = [target]
            elif status == "in-progress":
                dest["target"] = target
            else:
                extra["reason"] = "completed"
            doc = payload(
                call_id=f"dur-{i}", timestamp=at, status=status, destination=dest, **extra
            )
            out.append(json.dumps(doc).encode())
    return out


async def open_store(db: Path) -> SqliteStore:
    store = SqliteStore(db)
    await store.open()
    return store


def outbox(db: Path) -> list[tuple[str, str, int, int]]:
    """(story, slot, desired version, posted version) as the other process left them."""
    with closing(sqlite3.connect(db)) as conn:
        rows = conn.execute(
            "SELECT story_id, slot, desired_version, posted_version FROM outbox ORDER BY 1, 2"
        ).fetchall()
    return [(str(a), str(b), int(c), int(d)) for a, b, c, d in rows]


def roots_posted(db: Path, calls: list[str]) -> None:
    rows = {(story, slot): (want, have) for story, slot, want, have in outbox(db)}
    for call_id in calls:
        want, have = rows[(call_id, "root")]
        assert have == want >= 1, (call_id, want, have)


async def test_accepted_events_survive_sigkill_and_processing_resumes(tmp_path: Path) -> None:
    db = tmp_path / "bridge.db"
    events = call_events(60, datetime(2026, 11, 24, 9, 0, tzinfo=UTC))
    accepted: list[bytes] = []
    async with serve(tmp_path, db) as server, aiohttp.ClientSession() as http:
        killed = asyncio.Event()

        async def send(data: bytes) -> None:
            with suppress(aiohttp.ClientError):
                async with http.post(server.url, data=data) as response:
                    if response.status == 200 and not killed.is_set():
                        accepted.append(data)
                        if len(accepted) == 90:
                            server.proc.kill()  # SIGKILL in the middle of the burst
                            killed.set()

        await asyncio.gather(*(send(e) for e in events))
        assert await server.stop(signal.SIGKILL) == -signal.SIGKILL
    assert len(accepted) >= 90

    store = await open_store(db)
    stored: set[bytes] = set()
    try:
        for data in events:
            event = decode(data)
            story = await store.story(event.call_id)
            if story is not None and event.dedupe_key() in {e.dedupe_key() for e in story.events}:
                stored.add(data)
    finally:
        await store.close()
    assert set(accepted) <= stored, "an event answered 200 was not stored"

    # Restart: the provider redelivers everything; what was stored is a duplicate, the rest
    # is accepted, and every call ends up processed.
    async with serve(tmp_path, db) as server, aiohttp.ClientSession() as http:
        results = []
        for data in events:
            async with http.post(server.url, data=data) as response:
                assert response.status == 200
                results.append((data, (await response.json())["status"]))
        statuses = dict(results)
        # What was stored before the kill is a duplicate (all that was answered 200 is among
        # it); what was not is accepted now (how much got in before the kill lands varies).
        assert {data: statuses[data] == "duplicate" for data in events} == {
            data: data in stored for data in events
        }
        await wait_until_clean(db)
        roots_posted(db, [f"dur-{i}" for i in range(60)])
        assert await server.stop(signal.SIGTERM) == 0
    assert server.lines[-1]["event"] == "serve.stopped"


async def test_events_stored_while_down_are_dispatched_on_start(tmp_path: Path) -> None:
    db = tmp_path / "bridge.db"
    store = await open_store(db)
    try:
        for data in call_events(3, datetime(2026, 11, 24, 9, 0, tzinfo=UTC)):
            await store.add_event(decode(data), datetime.now(UTC))
        assert sorted(await store.dirty_stories()) == ["dur-0", "dur-1", "dur-2"]
    finally:
        await store.close()
    async with serve(tmp_path, db) as server:
        await wait_until_clean(db)
        roots_posted(db, ["dur-0", "dur-1", "dur-2"])
        for call_id in ("dur-0", "dur-1", "dur-2"):
            line = await server.wait_for_line(
                lambda line, c=call_id: (
                    line.get("event") == "dryrun.post"
                    and line.get("story") == c
                    and line.get("slot") == "root"
                )
            )
            assert line["channel"] == "C0123456789"
        assert await server.stop(signal.SIGTERM) == 0
