"""The real `callbridge serve` as a child process, for crash and restart tests."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from functools import partial
from pathlib import Path
from typing import Any

from bridge.store.sqlite import SqliteStore
from tests.support.harness import write_rules

START_TIMEOUT = 30.0
ROOT = Path(__file__).resolve().parents[2]  # the checkout: `-m tests.support...` imports


class Server:
    def __init__(
        self, proc: asyncio.subprocess.Process, port: int, early: list[dict[str, Any]]
    ) -> None:
        self.proc = proc
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.url = f"{self.base}/notifications"
        self.lines: list[dict[str, Any]] = list(early)  # logged before it was listening
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            with suppress(ValueError):
                self.lines.append(json.loads(raw))

    async def wait_for_line(self, predicate: Any, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines:
                if predicate(line):
                    return line
            await asyncio.sleep(0.05)  # polling another process's output, bounded by deadline
        seen = [(x.get("event"), x.get("story"), x.get("slot")) for x in self.lines]
        raise AssertionError(f"no matching log line within {timeout}s; got {seen}")

    async def stop(self, sig: int) -> int:
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        code = await asyncio.wait_for(self.proc.wait(), 30)
        await asyncio.wait_for(self._reader, 5)
        return code


def _limit_descriptors(nofile: int) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))


@asynccontextmanager
async def serve(
    tmp_path: Path,
    db: Path | None = None,
    *,
    store: str | None = None,
    rules: Path | None = None,
    extra_env: dict[str, str] | None = None,
    nofile: int | None = None,
    module: str = "bridge",
) -> AsyncIterator[Server]:
    """`python -m bridge serve` on 127.0.0.1:0 with JSON logs; yields once it listens.
    ``module``: another entry point taking the same arguments (tests.support.replay_serve).

    The store is the SQLite file ``db`` or, instead, any CALLBRIDGE_STORE URL ``store``
    (``postgresql://...``): exactly one of them. ``nofile``: the child's descriptor limit
    (like systemd's ``LimitNOFILE=``)."""
    if db is not None and store is None:
        url = f"sqlite:///{db.as_posix().lstrip('/')}"
    elif store is not None and db is None:
        url = store
    else:
        raise TypeError("serve() needs exactly one of db (an SQLite file) or store (a URL)")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CALLBRIDGE_", "SLACK_", "TEAMS_", "NOTIFY_SOCKET"))
    }
    env.update(extra_env or {})
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--store",
        url,
        "--rules",
        str(rules or write_rules(tmp_path)),
        "--log-format",
        "json",
        stdout=asyncio.subprocess.PIPE,
        env=env,
        preexec_fn=None if nofile is None else partial(_limit_descriptors, nofile),
        cwd=ROOT,
    )
    assert proc.stdout is not None
    port = None
    deadline = time.monotonic() + START_TIMEOUT
    early: list[dict[str, Any]] = []
    while port is None:
        raw = await asyncio.wait_for(proc.stdout.readline(), deadline - time.monotonic())
        if not raw:
            raise AssertionError(f"serve exited early: {early}")
        with suppress(ValueError):
            line = json.loads(raw)
            early.append(line)
            if line.get("event") == "serve.listening":
                port = int(line["port"])
    server = Server(proc, port, early)
    try:
        yield server
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def wait_until_clean(db: Path, timeout: float = 30.0) -> None:
    """Every event the SQLite store ``db`` holds dispatched and every planned message
    delivered, as that store (another process's) says. Polls, bounded by ``timeout``."""
    deadline = time.monotonic() + timeout
    dirty: list[str] = []
    while time.monotonic() < deadline:
        store = SqliteStore(db)
        await store.open()
        try:
            dirty = await store.dirty_stories()
            pending = await store.next_due()
        finally:
            await store.close()
        if not dirty and pending is None:
            return
        await asyncio.sleep(0.1)  # polling another process's progress, bounded by deadline
    raise AssertionError(
        f"events were not all dispatched and delivered in {timeout} s: dirty {dirty[:5]}, "
        f"next due {pending}"
    )
