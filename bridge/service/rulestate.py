"""The rules in force: loaded at start, replaced on SIGHUP only by a file that is valid.

A refused reload keeps the running rules, logs every problem, sets
``callbridge_rules_last_reload_success 0`` and shows the problems in ``/readyz``.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, tzinfo
from pathlib import Path

import structlog

from bridge.metrics import Metrics
from bridge.rules import RulesError, Ruleset, load_file

log = structlog.get_logger("bridge.rules")


class RulesHolder:
    def __init__(self, path: Path, metrics: Metrics) -> None:
        self.path = path
        self._metrics = metrics
        self.current: Ruleset | None = None
        self.loaded_at: float | None = None
        self.problems: tuple[str, ...] = ()

    @property
    def timezone(self) -> tzinfo:
        return self.current.timezone if self.current is not None else UTC

    async def reload(self) -> bool:
        """Load the file; on success replace the rules, else keep them. Returns success."""
        self._metrics.rules_reload_time.set(time.time())
        try:
            ruleset = await asyncio.to_thread(load_file, self.path)
        except RulesError as err:
            self.problems = tuple(str(p) for p in err.problems) or (str(err),)
        except OSError as err:
            self.problems = (f"{self.path}: cannot read the rules file: {err.strerror}",)
        else:
            self.current, self.problems = ruleset, ()
            self.loaded_at = time.time()
            self._metrics.rules_reload_success.set(1)
            log.info("rules.loaded", path=str(self.path), summary=self.summary())
            return True
        self._metrics.rules_reload_success.set(0)
        kept = "keeping the running rules" if self.current else "no rules are loaded"
        log.error("rules.refused", path=str(self.path), problems=len(self.problems), kept=kept)
        for problem in self.problems:
            log.error("rules.problem", problem=problem)
        return False

    def summary(self) -> str:
        if self.current is None:
            return "none loaded"
        return (
            f"{len(self.current.routes)} routes, "
            f"{len(self.current.destinations)} destinations, version {self.current.version[:12]}"
        )

    async def ready(self) -> str:
        if self.current is None:
            raise RuntimeError("no rules loaded: " + "; ".join(self.problems[:3]))
        if self.problems:
            return (
                f"running {self.summary()}; last reload REFUSED ({len(self.problems)} problems): "
                + "; ".join(self.problems[:3])
            )
        return self.summary()
