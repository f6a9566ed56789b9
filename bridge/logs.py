"""structlog configuration: JSON lines to stdout (human-readable on a TTY), secrets redacted.

Under systemd (stdout is the journal: ``$JOURNAL_STREAM`` names it) every line starts with
its syslog priority, ``<3>`` for an error, which journald takes as the entry's priority
(``SyslogLevelPrefix=yes``, the default) and strips, so ``journalctl -p err`` shows errors
only. Non-ASCII text is written as it is, not escaped to ASCII (ensure_ascii=False).

Secrets are kept out of log calls by construction (:class:`bridge.service.settings.Secret` never
shows its value); :class:`Redactor` is the safety net that scrubs any configured secret
value from every rendered field, whatever path it took to get there.
"""

from __future__ import annotations

import io
import logging
import os
import sys
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any, Final, TextIO

import structlog

REDACTED = "[redacted]"


class _Configured:
    level = logging.NOTSET  # unconfigured structlog logs everything


class Redactor:
    """structlog processor replacing secret values (and substrings) in every field."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # Very short values would redact ordinary words; tokens are long.
        self._secrets = tuple(sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True))

    def _scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self._secrets:
                if secret in value:
                    value = value.replace(secret, REDACTED)
            return value
        if isinstance(value, dict):
            return {k: self._scrub(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self._scrub(v) for v in value)
        if self._secrets and not isinstance(value, int | float | bool | type(None)):
            return self._scrub(str(value))
        return value

    def __call__(
        self, logger: Any, method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        if not self._secrets:
            return event_dict
        return {key: self._scrub(value) for key, value in event_dict.items()}


# syslog(3) priorities by log level: what journald filters on (``journalctl -p``).
PRIORITIES: Final[Mapping[str, int]] = {
    "critical": 2,  # crit
    "exception": 3,  # err
    "error": 3,  # err
    "warning": 4,  # warning
    "warn": 4,
    "info": 6,  # info
    "debug": 7,  # debug
}
_DEFAULT_PRIORITY: Final = 6


def priority(level: str) -> int:
    """The syslog priority of a log level name (info for a name it does not know)."""
    return PRIORITIES.get(level.lower(), _DEFAULT_PRIORITY)


def is_journal(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``stream`` is connected to the journal: systemd sets ``JOURNAL_STREAM`` to
    the device and inode of the stream it connected (systemd.exec(5))."""
    device, _, inode = (
        (os.environ if environ is None else environ).get("JOURNAL_STREAM", "").partition(":")
    )
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        found = os.fstat(stream.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        return False
    return (found.st_dev, found.st_ino) == (int(device), int(inode))


def journal_prefix(level: str, stream: TextIO) -> str:
    """``<3>`` for an error line written to ``stream`` when it is the journal, else ``""``
    (for the few lines printed before logging is configured)."""
    return f"<{priority(level)}>" if is_journal(stream) else ""


class JournalPrefix:
    """Renders with ``renderer`` and puts the level's syslog priority first: ``<4>{...}``."""

    def __init__(self, renderer: Any) -> None:
        self._renderer = renderer

    def __call__(self, logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> str:
        level = str(event_dict.get("level", method))
        return f"<{priority(level)}>{self._renderer(logger, method, event_dict)}"


def configure(
    *,
    fmt: str = "auto",
    level: str = "info",
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
) -> None:
    """Configure structlog (and route stdlib logging, e.g. aiohttp's, through it).

    ``fmt``: ``json``, ``journal`` (json lines with a ``<N>`` priority prefix), ``console``,
    or ``auto``: console on a terminal, journal when the stream is the journal, else json.
    """
    out = stream or sys.stdout
    if fmt == "auto":
        fmt = "console" if out.isatty() else "journal" if is_journal(out, environ) else "json"
    console = fmt == "console"
    numeric = logging.getLevelNamesMapping()[level.upper()]
    _Configured.level = numeric
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        Redactor(secrets),
    ]
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=False)
        if console
        else structlog.processors.JSONRenderer(sort_keys=False, ensure_ascii=False)
    )
    if fmt == "journal":
        renderer = JournalPrefix(renderer)
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                renderer,
            ],
            foreign_pre_chain=[
                structlog.stdlib.add_logger_name,
                *shared,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    logging.getLogger("aiohttp.access").disabled = True  # URLs may carry ?token=


def reset() -> None:
    """Back to structlog's defaults (tests: :func:`configure` changes process-wide state)."""
    _Configured.level = logging.NOTSET
    structlog.reset_defaults()


def debug_enabled() -> bool:
    """Whether debug lines are logged: guards per-request debug lines on hot paths, where
    even a filtered structlog call (binding a lazy logger) costs more than the check."""
    return _Configured.level <= logging.DEBUG


def get(name: str | None = None) -> Any:
    return structlog.get_logger(name)
