"""structlog configuration: JSON lines to stdout (human-readable on a TTY), secrets redacted.

Secrets are kept out of log calls by construction (:class:`bridge.service.settings.Secret` never
shows its value); :class:`Redactor` is the safety net that scrubs any configured secret
value from every rendered field, whatever path it took to get there.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

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


def configure(
    *,
    fmt: str = "auto",
    level: str = "info",
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> None:
    """Configure structlog (and route stdlib logging, e.g. aiohttp's, through it)."""
    out = stream or sys.stdout
    console = fmt == "console" or (fmt == "auto" and out.isatty())
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
        else structlog.processors.JSONRenderer(sort_keys=False)
    )
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
