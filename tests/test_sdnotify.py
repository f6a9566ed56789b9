"""sd_notify(3): the exact datagrams on a real AF_UNIX socket, and the environment rules."""

from __future__ import annotations

import os
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from bridge.service.sdnotify import SdNotifier


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket bound in tmp_path, as systemd's notify socket is; (socket, address)."""
    path = tmp_path / "notify"
    assert len(os.fsencode(path)) < 108, f"{path} is too long for an AF_UNIX address"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)  # a deadline for a datagram that never comes, not a synchronisation
    yield sock, str(path)
    sock.close()


def received(sock: socket.socket) -> bytes:
    return sock.recv(4096)


def nothing_queued(sock: socket.socket) -> bool:
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        sock.recv(4096)
    except BlockingIOError:
        return True
    finally:
        sock.settimeout(timeout)
    return False


def test_each_message_is_one_datagram_in_the_protocol_format(
    receiver: tuple[socket.socket, str],
) -> None:
    sock, path = receiver
    notifier = SdNotifier.from_env({"NOTIFY_SOCKET": path})
    assert notifier.enabled

    notifier.ready()
    assert received(sock) == b"READY=1"
    notifier.ready("listening on 127.0.0.1:8080")
    assert received(sock) == b"READY=1\nSTATUS=listening on 127.0.0.1:8080"
    notifier.watchdog()
    assert received(sock) == b"WATCHDOG=1"
    notifier.status("draining 3 requests")
    assert received(sock) == b"STATUS=draining 3 requests"
    notifier.stopping()
    assert received(sock) == b"STOPPING=1"
    assert nothing_queued(sock)


def test_reloading_carries_the_monotonic_timestamp_in_microseconds(
    receiver: tuple[socket.socket, str],
) -> None:
    sock, path = receiver
    SdNotifier(path, clock=lambda: 1_234_567_890).reloading()
    assert received(sock) == b"RELOADING=1\nMONOTONIC_USEC=1234567890"

    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    SdNotifier(path).reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    first, second = received(sock).split(b"\n")
    assert first == b"RELOADING=1"
    assert second.startswith(b"MONOTONIC_USEC=")
    assert before <= int(second.removeprefix(b"MONOTONIC_USEC=")) <= after


def test_a_newline_in_a_status_cannot_forge_another_assignment(
    receiver: tuple[socket.socket, str],
) -> None:
    sock, path = receiver
    SdNotifier(path).status("rules: 3 routes\nREADY=1")
    assert received(sock) == b"STATUS=rules: 3 routes READY=1"
    SdNotifier(path).ready("a\r\nb")
    assert received(sock) == b"READY=1\nSTATUS=a b"


@pytest.mark.skipif(sys.platform != "linux", reason="abstract socket names exist only on Linux")
def test_abstract_socket_name_with_at_sign() -> None:
    name = f"callbridge-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        sock.settimeout(5)
        notifier = SdNotifier.from_env({"NOTIFY_SOCKET": "@" + name})
        notifier.ready("up")
        assert received(sock) == b"READY=1\nSTATUS=up"
        notifier.stopping()
        assert received(sock) == b"STOPPING=1"


def test_without_notify_socket_everything_is_a_no_op(tmp_path: Path) -> None:
    for environ in ({}, {"NOTIFY_SOCKET": ""}):
        notifier = SdNotifier.from_env(environ)
        assert not notifier.enabled
        with capture_logs() as logs:
            notifier.ready("x")
            notifier.reloading()
            notifier.watchdog()
            notifier.status("x")
            notifier.stopping()
        assert logs == []


def test_send_failure_is_logged_once_and_never_raised(tmp_path: Path) -> None:
    notifier = SdNotifier(str(tmp_path / "gone"))
    with capture_logs() as logs:
        notifier.ready()
        notifier.watchdog()
        notifier.stopping()
    assert [(e["event"], e["log_level"]) for e in logs] == [("sdnotify.send_failed", "warning")]
    assert logs[0]["socket"] == str(tmp_path / "gone")
    assert logs[0]["error"] == "No such file or directory"


def test_a_receiver_that_stops_reading_never_blocks_the_sender(
    receiver: tuple[socket.socket, str],
) -> None:
    # The kernel queues a bounded number of datagrams per AF_UNIX receiver
    # (net.unix.max_dgram_qlen, default 10; 512 on some distributions): a blocking send
    # would hang here forever, a non-blocking one fails with EAGAIN and is logged once.
    sock, path = receiver
    notifier = SdNotifier(path)
    with capture_logs() as logs:
        for _ in range(5000):
            notifier.watchdog()
    assert [e["event"] for e in logs] == ["sdnotify.send_failed"]
    assert logs[0]["error"] == "Resource temporarily unavailable"
    assert received(sock) == b"WATCHDOG=1"


# WATCHDOG_USEC is the timeout in microseconds; the recommended ping interval is half of it.
@pytest.mark.parametrize(
    ("environ", "interval"),
    [
        ({"WATCHDOG_USEC": "30000000"}, 15.0),
        ({"WATCHDOG_USEC": "1000000"}, 0.5),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "4242"}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),  # meant for pid 1
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "x"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": ""}, None),
        ({"WATCHDOG_USEC": "thirty"}, None),
        ({"WATCHDOG_USEC": "-5"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval_from_environment(
    environ: dict[str, str], interval: float | None
) -> None:
    notifier = SdNotifier.from_env({"NOTIFY_SOCKET": "/run/x", **environ}, pid=4242)
    assert notifier.watchdog_interval() == interval


def test_watchdog_pid_defaults_to_this_process() -> None:
    base = {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "20000000"}
    mine = SdNotifier.from_env({**base, "WATCHDOG_PID": str(os.getpid())})
    assert mine.watchdog_interval() == 10.0
    other = SdNotifier.from_env({**base, "WATCHDOG_PID": str(os.getpid() + 1)})
    assert other.watchdog_interval() is None


def test_no_watchdog_without_a_socket_to_ping() -> None:
    notifier = SdNotifier.from_env({"WATCHDOG_USEC": "30000000"}, pid=1)
    assert notifier.watchdog_interval() is None
