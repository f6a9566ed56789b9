"""Proxies for tests: a TCP relay the tests can cut and restore (same port), to lose a server
without stopping it; and a forward HTTP proxy that records what clients ask it for."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urlsplit


class Proxy:
    """A TCP relay to the PostgreSQL server that the test can cut and restore (same port)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._open = False  # relaying; a connection accepted just before a cut must not live on

    async def start(self) -> None:
        self._open = True
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self._server is not None
        self._open = False
        self._server.close()
        await self._server.wait_closed()
        for writer in self._writers:
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        if not self._open:  # cut while this connection was being relayed: it is cut too
            for w in (writer, up_writer):
                w.transport.abort()
            return
        self._writers |= {writer, up_writer}
        pumps = [
            asyncio.create_task(self._pump(reader, up_writer)),
            asyncio.create_task(self._pump(up_reader, writer)),
        ]
        self._tasks.update(pumps)
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for w in (writer, up_writer):
            w.transport.abort()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()


@dataclass(frozen=True)
class ProxiedRequest:
    """One request as the HTTP proxy saw it: ``CONNECT host:port`` or ``POST http://...``."""

    method: str
    target: str
    proxy_authorization: str | None


class HttpProxy:
    """A forward HTTP proxy on 127.0.0.1, port 0, that records every request it is asked for.

    Plain ``http://`` requests (absolute-form) to 127.0.0.1 / localhost are relayed, one per
    connection (``Connection: close``); anything else is refused with 403 and never leaves
    the machine: ``CONNECT`` tunnels (what a client sends for an ``https://`` URL) and other
    hosts are only recorded.
    """

    def __init__(self) -> None:
        self.port = 0
        self.seen: list[ProxiedRequest] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> HttpProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._one(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        request_line, *header_lines = head.split("\r\n")[:-2]
        method, target, version = request_line.split(" ", 2)
        headers = [tuple(h.split(":", 1)) for h in header_lines]
        auth = next((v.strip() for k, v in headers if k.lower() == "proxy-authorization"), None)
        self.seen.append(ProxiedRequest(method, target, auth))
        url = urlsplit(target)
        if method == "CONNECT" or url.scheme != "http" or url.hostname not in LOCAL:
            writer.write(
                b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            await writer.drain()
            return
        length = next((int(v) for k, v in headers if k.lower() == "content-length"), 0)
        body = await reader.readexactly(length)
        path = url.path + (f"?{url.query}" if url.query else "")
        hop = {"connection", "proxy-connection", "proxy-authorization", "keep-alive"}
        kept = [f"{k}:{v}" for k, v in headers if k.lower() not in hop]
        upstream = "\r\n".join([f"{method} {path} {version}", *kept, "Connection: close"])
        up_reader, up_writer = await asyncio.open_connection(url.hostname, url.port or 80)
        try:
            up_writer.write(upstream.encode("latin-1") + b"\r\n\r\n" + body)
            await up_writer.drain()
            while data := await up_reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            up_writer.close()


LOCAL = ("127.0.0.1", "localhost")
REFUSED = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
