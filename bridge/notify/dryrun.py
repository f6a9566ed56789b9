"""The dry-run sink: logs what would be posted, one line per change of a call.

Used when no Slack or Teams credentials are configured, so that `callbridge serve` plus
`callbridge simulate` is a complete demo, and by operators to watch routing decisions.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import tzinfo

import structlog

from bridge.calls import Call
from bridge.metrics import Metrics
from bridge.render.text import headline, step_line

log = structlog.get_logger("bridge.dryrun")


class DryRunSink:
    def __init__(self, metrics: Metrics, tz: Callable[[], tzinfo]) -> None:
        self._metrics = metrics
        self._tz = tz

    async def emit(self, story_id: str, call: Call) -> None:
        last = call.steps[-1] if call.steps else None
        self._metrics.dryrun.labels("live").inc()
        log.info(
            "dryrun.would_post",
            story=story_id,
            phase=call.phase,
            missed=call.missed,
            text=headline(call),
            latest=step_line(last, self._tz()) if last else None,
        )
