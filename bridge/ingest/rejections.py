"""Warnings about refused requests, rate-limited: a flood of bad requests (a scanner, a
misconfigured client, an attack) must not flood the journal, yet the first of each kind is
always seen, with who sent it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

log = structlog.get_logger("bridge.ingest.rejections")


@dataclass
class _Seen:
    logged_at: float
    left_out: int = 0


class RejectionLog:
    """At most one warning per ``interval`` seconds for each reason (a short fixed code, so
    the table stays small); each line says how many refusals like it were left out since
    the previous one."""

    def __init__(
        self,
        event: str,
        *,
        interval: float = 10.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._event = event
        self._interval = interval
        self._monotonic = monotonic
        self._seen: dict[str, _Seen] = {}

    def refused(self, reason: str, client: str | None, **fields: Any) -> bool:
        """Log the refusal unless one like it was logged within the interval; returns
        whether it was logged."""
        now = self._monotonic()
        seen = self._seen.get(reason)
        if seen is not None and now - seen.logged_at < self._interval:
            seen.left_out += 1
            return False
        left_out = seen.left_out if seen is not None else 0
        self._seen[reason] = _Seen(now)
        log.warning(
            self._event,
            reason=reason,
            client=client or "unknown",
            left_out_since_last=left_out,
            **fields,
        )
        return True
