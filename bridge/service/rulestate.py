"""The rules in force: loaded at start, replaced on SIGHUP only by a file that is valid.

A refused reload keeps the running rules, logs every problem, sets
``callbridge_rules_last_reload_success 0`` and says so in ``/readyz`` (how many problems, on
which lines: the problems themselves, which quote the file, go to the log only). A file that
loads but opens callback cases that retention would delete while still open is loaded, with a
``rules.warning`` per route (bridge/rules/outlive.py).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path

import structlog

from bridge.metrics import Metrics
from bridge.rules import RulesError, Ruleset, load_file
from bridge.rules.model import counted
from bridge.rules.outlive import outliving
from bridge.service.settings import DEFAULT_RETENTION

log = structlog.get_logger("bridge.rules")


class RulesHolder:
    def __init__(
        self, path: Path, metrics: Metrics, *, retention: timedelta = DEFAULT_RETENTION
    ) -> None:
        self.path = path
        self._metrics = metrics
        self._retention = retention
        self.current: Ruleset | None = None
        self.loaded_at: float | None = None
        self.problems: tuple[str, ...] = ()
        self.warnings: tuple[str, ...] = ()  # of the rules in force
        self._lines: tuple[int, ...] = ()  # where the refused file's problems are

    @property
    def timezone(self) -> tzinfo:
        return self.current.timezone if self.current is not None else UTC

    async def reload(self) -> bool:
        """Load the file; on success replace the rules, else keep them. Returns success."""
        self._metrics.rules_reload_time.set(time.time())
        try:
            ruleset, warnings = await asyncio.to_thread(self._load)
        except RulesError as err:
            self.problems = tuple(str(p) for p in err.problems) or (str(err),)
            self._lines = tuple(sorted({p.line for p in err.problems if p.line}))
        except OSError as err:
            self.problems = (f"{self.path}: cannot read the rules file: {err.strerror}",)
            self._lines = ()
        except Exception as err:  # a loader bug refuses the file; it never ends the reload
            # Only the exception's type: its message may quote the file (a pasted secret).
            self.problems = (
                f"{self.path}: could not be loaded ({type(err).__name__}, a callbridge bug: "
                "please report it); the file was not used",
            )
            self._lines = ()
        else:
            self.current, self.problems, self._lines = ruleset, (), ()
            self.warnings = warnings
            self.loaded_at = time.time()
            self._metrics.rules_reload_success.set(1)
            log.info("rules.loaded", path=str(self.path), summary=self.summary())
            for warning in warnings:
                log.warning("rules.warning", message=warning)
            return True
        self._metrics.rules_reload_success.set(0)
        kept = "keeping the running rules" if self.current else "no rules are loaded"
        log.error("rules.refused", path=str(self.path), problems=len(self.problems), kept=kept)
        for problem in self.problems:
            log.error("rules.problem", problem=problem)
        return False

    def _load(self) -> tuple[Ruleset, tuple[str, ...]]:
        """On a worker thread: the file, and what it gets wrong that is not an error."""
        ruleset = load_file(self.path)
        found = outliving(ruleset, self._retention, datetime.now(UTC))
        return ruleset, tuple(o.message(self._retention) for o in found)

    def summary(self) -> str:
        if self.current is None:
            return "none loaded"
        return f"{self.current.shape}, version {self.current.version[:12]}"

    async def ready(self) -> str:
        """For /readyz: never the file's path or text (a refused file may hold anything,
        a pasted secret included); the problems themselves are in the log."""
        if self.current is None:
            raise RuntimeError("no rules loaded: " + self._refusal())
        if self.problems:
            return f"running {self.summary()}; last reload REFUSED: {self._refusal()}"
        if n := len(self.warnings):
            return f"{self.summary()}; {counted(n, 'warning')}: see the log (rules.warning)"
        return self.summary()

    def _refusal(self) -> str:
        n = len(self.problems)
        where = ""
        if self._lines:
            shown = ", ".join(str(line) for line in self._lines[:10])
            where = f" on line{'s' if len(self._lines) > 1 else ''} {shown}"
            where += ", …" if len(self._lines) > 10 else ""
        return f"{counted(n, 'problem')}{where}; see the log (rules.problem)"
