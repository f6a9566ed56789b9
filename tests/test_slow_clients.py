"""Slow, partial and piled-up connections to the real `callbridge serve` (raw sockets on
127.0.0.1): they are closed after the client timeout, and webhooks still get through while
many of them are open under a small descriptor limit."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import aiohttp
import pytest

from tests.support.harness import body
from tests.support.process import Server, serve

pytestmark = pytest.mark.slow

HEADERS_ONLY = b"POST /notifications HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: appl"


async def _open(server: Server) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", server.port)


async def _closed_by_server(reader: asyncio.StreamReader, within: float) -> bytes:
    """Everything the server sends until it closes the connection (fails after ``within``)."""
    async with asyncio.timeout(within):
        return await reader.read()


async def test_a_stalled_header_is_closed_after_the_client_timeout(tmp_path: Path) -> None:
    env = {"CALLBRIDGE_CLIENT_TIMEOUT": "1s"}
    async with serve(tmp_path, tmp_path / "bridge.db", extra_env=env) as server:
        reader, writer = await _open(server)
        writer.write(HEADERS_ONLY)  # never finishes its headers
        await writer.drain()
        assert await _closed_by_server(reader, within=10) == b""
        writer.close()
        silent_reader, silent = await _open(server)  # never sends anything
        assert await _closed_by_server(silent_reader, within=10) == b""
        silent.close()


async def test_a_stalled_body_is_answered_408_and_closed(tmp_path: Path) -> None:
    env = {"CALLBRIDGE_CLIENT_TIMEOUT": "1s"}
    async with serve(tmp_path, tmp_path / "bridge.db", extra_env=env) as server:
        reader, writer = await _open(server)
        data = body()
        writer.write(
            b"POST /notifications HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(data), data[:20])
        )
        await writer.drain()
        answer = await _closed_by_server(reader, within=10)
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert b"the body did not arrive within 1 s" in answer
        writer.close()
        assert not [line for line in server.lines if line.get("level") == "error"]


async def test_a_client_leaving_mid_body_is_not_an_error(tmp_path: Path) -> None:
    env = {"CALLBRIDGE_CLIENT_TIMEOUT": "30s", "CALLBRIDGE_LOG_LEVEL": "debug"}
    async with serve(tmp_path, tmp_path / "bridge.db", extra_env=env) as server:
        _reader, writer = await _open(server)
        writer.write(
            b"POST /notifications HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b'Content-Length: 500\r\n\r\n{"call_id": '
        )
        await writer.drain()
        writer.close()
        line = await server.wait_for_line(lambda x: x.get("event") == "ingest.client_gone")
        assert line["level"] == "debug"
        assert not [x for x in server.lines if x.get("level") in ("error", "critical")]
        assert not [x for x in server.lines if "exception" in x or "Traceback" in str(x)]


async def test_webhooks_get_through_while_many_stalled_connections_are_open(
    tmp_path: Path,
) -> None:
    # 300 stalled connections under a 256-descriptor limit (the probe): without a
    # cap below the limit, accept() fails with EMFILE and no webhook gets in.
    env = {"CALLBRIDGE_CLIENT_TIMEOUT": "120s", "CALLBRIDGE_WEBHOOK_TOKEN": ""}
    async with serve(tmp_path, tmp_path / "bridge.db", extra_env=env, nofile=256) as server:
        listening = next(x for x in server.lines if x.get("event") == "serve.listening")
        assert listening["max_connections"] == 128  # 256 less a quarter, at least 128, kept
        stalled: list[asyncio.StreamWriter] = []

        async def stall() -> None:
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(5):
                    _reader, writer = await _open(server)
                    writer.write(HEADERS_ONLY)
                    await writer.drain()
                    stalled.append(writer)

        await asyncio.gather(*(stall() for _ in range(300)))
        assert len(stalled) > 200
        try:
            timeout = aiohttp.ClientTimeout(total=10)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                for n in range(5):
                    async with session.post(
                        server.url,
                        data=body(call_id=f"call-{n}"),
                        headers={"Connection": "close"},
                    ) as response:
                        assert response.status == 200, await response.text()
        finally:
            for writer in stalled:
                writer.close()
        evicted = await server.wait_for_line(lambda x: x.get("event") == "http.connections_full")
        assert evicted["reason"] == "evicted_idle"
