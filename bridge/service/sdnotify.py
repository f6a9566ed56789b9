"""The systemd ``sd_notify`` protocol: READY/RELOADING/STOPPING/WATCHDOG/STATUS datagrams.

A stdlib implementation of the few lines of sd_notify(3) the service needs: the ``sdnotify``
package on PyPI has been unmaintained since 2017 and supports neither abstract socket names
nor the watchdog environment. Without ``NOTIFY_SOCKET`` every method is a no-op, so the same
code runs under systemd, in a terminal and in tests. A failed send is logged once at warning
and never raised: a notification problem must not take the service down (systemd's watchdog
notices a service that stops pinging).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Mapping
from typing import Final

import structlog

log = structlog.get_logger("bridge.service.sdnotify")

_USEC_PER_SECOND: Final = 1_000_000


def monotonic_usec() -> int:
    """CLOCK_MONOTONIC in microseconds: the clock systemd compares ``MONOTONIC_USEC`` with."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


class SdNotifier:
    """Sends state changes to the service manager at ``address`` (``None``: do nothing).

    ``address`` is a socket path, or ``@name`` for a Linux abstract socket (as systemd
    writes it in ``NOTIFY_SOCKET``). ``watchdog_usec`` is systemd's watchdog timeout for
    this process, ``None`` when the watchdog is off or meant for another process.
    """

    def __init__(
        self,
        address: str | None,
        *,
        watchdog_usec: int | None = None,
        clock: Callable[[], int] = monotonic_usec,
    ) -> None:
        self._address = _socket_address(address) if address else None
        self._watchdog_usec = watchdog_usec if self._address is not None else None
        self._clock = clock
        self._warned = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str], *, pid: int | None = None) -> SdNotifier:
        """``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and ``WATCHDOG_PID`` as systemd sets them."""
        return cls(
            environ.get("NOTIFY_SOCKET") or None,
            watchdog_usec=_watchdog_usec(environ, os.getpid() if pid is None else pid),
        )

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def ready(self, status: str | None = None) -> None:
        """Start-up (or a reload) is complete; systemd starts ordering dependants."""
        self._send("READY=1", *(() if status is None else (_status(status),)))

    def reloading(self) -> None:
        """A reload begins; follow with :meth:`ready` when it is done (systemd >= 253 format)."""
        self._send("RELOADING=1", f"MONOTONIC_USEC={self._clock()}")

    def stopping(self) -> None:
        """Shutdown has begun (the graceful drain runs until ``TimeoutStopSec``)."""
        self._send("STOPPING=1")

    def watchdog(self) -> None:
        """Keep-alive ping; send at least every :meth:`watchdog_interval` seconds."""
        self._send("WATCHDOG=1")

    def status(self, text: str) -> None:
        """Free-form one-line status shown by ``systemctl status``."""
        self._send(_status(text))

    def watchdog_interval(self) -> float | None:
        """Recommended ping interval in seconds (half the timeout), ``None`` if no watchdog."""
        if self._watchdog_usec is None:
            return None
        return self._watchdog_usec / 2 / _USEC_PER_SECOND

    def _send(self, *assignments: str) -> None:
        if self._address is None:
            return
        datagram = "\n".join(assignments).encode("utf-8")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.setblocking(False)
                sock.sendto(datagram, self._address)
        except OSError as err:
            if not self._warned:
                self._warned = True
                log.warning(
                    "sdnotify.send_failed",
                    socket=_printable(self._address),
                    error=err.strerror or str(err),
                    hint="systemd may consider the service not ready or hung; further "
                    "failures are not logged",
                )


def _socket_address(address: str) -> str | bytes:
    if address.startswith("@"):
        return b"\0" + address[1:].encode("utf-8")
    return address


def _printable(address: str | bytes) -> str:
    if isinstance(address, bytes):
        return "@" + address[1:].decode("utf-8", "replace")
    return address


def _status(text: str) -> str:
    # A newline would start another assignment (e.g. a forged READY=1): keep it one line.
    return "STATUS=" + " ".join(text.splitlines())


def _watchdog_usec(environ: Mapping[str, str], pid: int) -> int | None:
    usec = environ.get("WATCHDOG_USEC", "").strip()
    if not usec.isdigit() or int(usec) == 0:
        return None
    watchdog_pid = environ.get("WATCHDOG_PID", "").strip()
    if watchdog_pid and (not watchdog_pid.isdigit() or int(watchdog_pid) != pid):
        return None  # the watchdog is meant for another process (e.g. our parent)
    return int(usec)
