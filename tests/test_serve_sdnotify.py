"""The real `callbridge serve` talks to systemd: READY once listening, WATCHDOG while the store
answers, RELOADING/READY around a SIGHUP reload, STOPPING on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.process import serve

pytestmark = pytest.mark.slow


@pytest.fixture
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    # AF_UNIX paths are short (108 bytes): pytest's tmp_path may be too long for one.
    path = f"/tmp/cb-notify-{os.getpid()}-{id(object())}.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.setblocking(False)
    try:
        yield sock, path
    finally:
        sock.close()
        os.unlink(path)


async def next_message(sock: socket.socket, wanted: str, timeout: float = 20.0) -> str:
    """The next datagram containing ``wanted`` (others are skipped)."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(timeout):
        while True:
            data = (await loop.sock_recv(sock, 4096)).decode()
            if wanted in data.splitlines():
                return data


async def test_serve_speaks_sd_notify(
    tmp_path: Path, notify_socket: tuple[socket.socket, str]
) -> None:
    sock, path = notify_socket
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": ""}
    async with serve(tmp_path, tmp_path / "bridge.db", extra_env=env) as server:
        ready = await next_message(sock, "READY=1")
        assert "STATUS=listening on 127.0.0.1:0; rules: 1 route, 1 destination" in ready
        await next_message(sock, "WATCHDOG=1")
        await next_message(sock, "WATCHDOG=1")  # keeps pinging
        server.proc.send_signal(signal.SIGHUP)
        reloading = await next_message(sock, "RELOADING=1")
        assert "MONOTONIC_USEC=" in reloading
        await next_message(sock, "READY=1")
        server.proc.send_signal(signal.SIGTERM)
        await next_message(sock, "STOPPING=1")
        assert await asyncio.wait_for(server.proc.wait(), 30) == 0
