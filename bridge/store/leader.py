"""Leadership over one PostgreSQL database: the single instance that dispatches and delivers.

Only the leader folds stories and posts to Slack/Teams, so chat pacing (a budget per
workspace or conversation, not per process) stays correct and no two instances post the same
message. Leadership is a session-level advisory lock (``pg_try_advisory_lock``) held on a
dedicated connection outside the pool: it lasts exactly as long as that session.

Takeover time, when the leader ...

* exits, crashes or is SIGKILLed: its kernel closes the socket, the server ends the session
  and frees the lock at once; a standby polling :meth:`PgLeadership.acquire` takes over
  within its poll interval.
* loses its host or network: the server's TCP keepalives (idle ``keepalive_idle`` s, then 3
  probes ``ping_every`` s apart, and ``tcp_user_timeout`` for unacknowledged data) end the
  session after about ``keepalive_idle + 3 * ping_every`` seconds (11 s by default). The old
  leader pings its connection every ``ping_every`` s with the same timeout, so it notices the
  loss (and stops acting) after at most ``2 * ping_every`` s (4 s): before the server lets
  anyone else lead.

A connection pooler in transaction mode (PgBouncer ``pool_mode=transaction``) would break
session locks: point CALLBRIDGE_STORE at PostgreSQL itself or a session-mode pool.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Final

import asyncpg  # type: ignore[import-untyped]
import structlog

from bridge.core.urls import without_password
from bridge.store.postgres_sql import DB_ERRORS, failure

if TYPE_CHECKING:
    from asyncpg import Connection
else:
    Connection = Any

log = structlog.get_logger("bridge.store.leader")

# The session-level advisory lock of the leader (b"cbleader" as a signed 64-bit integer).
LEADER_LOCK: Final = int.from_bytes(b"cbleader", "big", signed=True)
APPLICATION_NAME: Final = "callbridge-leader"  # how the lock's session shows in pg_stat_activity


class PgLeadership:
    def __init__(
        self,
        dsn: str,
        *,
        connect_timeout: float = 5.0,
        ping_every: float = 2.0,
        keepalive_idle: int = 5,
    ) -> None:
        self._dsn = dsn
        self._connect_timeout = connect_timeout
        self._ping_every = ping_every
        self._keepalive_idle = keepalive_idle
        self._conn: Connection | None = None
        self._lost = asyncio.Event()  # set: not the leader (lost() returns)
        self._lost.set()
        self._watch: asyncio.Task[None] | None = None

    async def acquire(self) -> bool:
        """Try, without waiting, to take the lock; True when this instance leads now."""
        if self._conn is not None and not self._lost.is_set():
            return True
        await self.release()  # a broken earlier session: clean it up first
        try:
            conn = await asyncpg.connect(
                self._dsn,
                timeout=self._connect_timeout,
                server_settings=self._server_settings(),
            )
        except DB_ERRORS as err:
            raise failure("cannot connect for leadership to", self._dsn, err) from err
        try:
            won = bool(
                await conn.fetchval(
                    "SELECT pg_try_advisory_lock($1)", LEADER_LOCK, timeout=self._ping_every
                )
            )
        except DB_ERRORS as err:
            conn.terminate()
            raise failure("cannot take the leader lock in", self._dsn, err) from err
        if not won:
            await self._close(conn)
            return False
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        self._conn, self._lost = conn, lost
        self._watch = asyncio.create_task(self._keep(conn, lost), name="postgres-leadership")
        log.info("store.leadership_acquired", store=without_password(self._dsn))
        return True

    async def lost(self) -> None:
        """Return when leadership is lost, released or closed; at once when not leading."""
        await self._lost.wait()

    async def release(self) -> None:
        """Give the lock up (closing its session frees it); a no-op when not leading."""
        conn, watch = self._conn, self._watch
        self._conn, self._watch = None, None
        self._lost.set()
        if watch is not None:
            await watch
        if conn is not None:
            await self._close(conn)
            log.info("store.leadership_released", store=without_password(self._dsn))

    async def close(self) -> None:
        await self.release()

    def _server_settings(self) -> dict[str, str]:
        probe = max(1, round(self._ping_every))
        return {
            "application_name": APPLICATION_NAME,
            "tcp_keepalives_idle": str(self._keepalive_idle),
            "tcp_keepalives_interval": str(probe),
            "tcp_keepalives_count": "3",
            "tcp_user_timeout": str((self._keepalive_idle + 3 * probe) * 1000),
        }

    async def _keep(self, conn: Connection, lost: asyncio.Event) -> None:
        """Ping the lock's connection; a failed or slow ping means leadership is lost (the
        server may free the lock soon after, so stop acting as leader first)."""
        while not lost.is_set():
            try:
                await asyncio.wait_for(lost.wait(), self._ping_every)
            except TimeoutError:
                pass
            else:
                return
            try:
                await conn.fetchval("SELECT 1", timeout=self._ping_every)
            except DB_ERRORS as err:
                log.warning(
                    "store.leadership_lost",
                    store=without_password(self._dsn),
                    error=str(failure("lost the leader lock of", self._dsn, err)),
                )
                lost.set()
                conn.terminate()

    async def _close(self, conn: Connection) -> None:
        try:
            await conn.close(timeout=self._connect_timeout)
        except DB_ERRORS:
            conn.terminate()
