"""The listening socket, with a cap on open connections.

Each connection holds a file descriptor; the store, the outbound HTTP pools and the logs need
some too. A client that opens connections and never finishes a request (a slowloris, a broken
proxy) must not use them all, nor keep the provider out. At :func:`connection_limit` open
connections, a new connection closes the oldest one that has no request in progress (one still
sending its headers, or idle between requests); when every connection has a request in
progress, the new one is answered ``503`` and closed at once. Connections stalled in their
headers are also closed by the client timeout (aiohttp's ``keepalive_timeout``, armed when a
connection opens and again after each answer), and stalled bodies by the body timeout
(:mod:`bridge.ingest.body`).
"""

from __future__ import annotations

import asyncio
import resource
from typing import Final

import structlog
from aiohttp import web

from bridge.ingest.rejections import RejectionLog

log = structlog.get_logger("bridge.service.listener")

# Descriptors kept for everything but client connections: the store (SQLite and its WAL, or
# a PostgreSQL pool), Slack/Teams connection pools, the journal, the rules file, the listener.
RESERVED_DESCRIPTORS: Final = 128
MIN_CONNECTIONS: Final = 16

_REFUSAL_BODY: Final = b'{"error": "too many open connections; try again shortly"}'
_REFUSAL: Final = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: application/json\r\n"
    b"Retry-After: 5\r\n"
    b"Connection: close\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(_REFUSAL_BODY), _REFUSAL_BODY)
)


def connection_limit(configured: int | None = None) -> int:
    """``configured``, else what the process's descriptor limit (systemd's ``LimitNOFILE``)
    leaves after a quarter of it, at least :data:`RESERVED_DESCRIPTORS`, is kept back."""
    if configured is not None:
        return configured
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 65536
    return max(MIN_CONNECTIONS, soft - max(RESERVED_DESCRIPTORS, soft // 4))


class _Refuse(asyncio.Protocol):
    """A connection over the cap: one 503, then closed."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(_REFUSAL)
        transport.close()

    def data_received(self, data: bytes) -> None:
        pass


class LimitedSite(web.TCPSite):
    """A :class:`aiohttp.web.TCPSite` that keeps at most ``max_connections`` connections
    open. ``in_progress``: the connections whose request is being handled (kept by
    :func:`bridge.ingest.http.track_requests`)."""

    def __init__(
        self,
        runner: web.AppRunner,
        host: str | None,
        port: int,
        *,
        max_connections: int,
        in_progress: set[web.RequestHandler],
    ) -> None:
        super().__init__(runner, host, port, reuse_address=True)
        self.max_connections = max_connections
        self.evicted = 0
        self.refused = 0
        self._runner_ref = runner
        self._in_progress = in_progress
        self._rejections = RejectionLog("http.connections_full")

    def _protocol(self) -> asyncio.BaseProtocol:
        server = self._runner_ref.server
        assert server is not None
        open_now = [c for c in server.connections if c.transport is not None]
        if len(open_now) < self.max_connections:
            return server()
        idle = next((c for c in open_now if c not in self._in_progress), None)
        if idle is not None:  # the oldest without a request in progress
            idle.force_close()
            self.evicted += 1
            self._rejections.refused(
                "evicted_idle", None, limit=self.max_connections, evicted=self.evicted
            )
            return server()
        self.refused += 1
        self._rejections.refused(
            "refused_busy", None, limit=self.max_connections, refused=self.refused
        )
        return _Refuse()

    async def start(self) -> None:
        # TCPSite.start, with the connection count checked as each connection is accepted.
        await web.BaseSite.start(self)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._protocol,
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
        )
        sockets = self._server.sockets
        self._bound_port = sockets[0].getsockname()[1] if sockets else self._port
