"""Which rules route a story: the ones it was first routed by, for its whole life.

A call is routed by the rules in force when the dispatcher first saw it, and by those for
good: its late events, redeliveries and merges re-decide it from *all* its events with the
same rules (so an ``ended`` folded before the call's ``ringing`` cannot freeze a wrong
decision), while a reload changes the routing of calls first seen after it, never of those
already seen (so a reload never sends a finished call anywhere new, nor moves a live one).

The store keeps the pinned version on the story and the text of every version a story is
pinned to (``save_ruleset``), so this holds across restarts and between HA instances. A
version that cannot be read back (a story from before pinning, a file that the running
code no longer accepts) falls back to the story's stored decisions once it has ended.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import Final, Protocol

import structlog

from bridge.rules import RulesError, Ruleset, load_text
from bridge.store import Store, Story

log = structlog.get_logger("bridge.deliver.rulebook")

CACHED: Final = 8  # compiled older versions kept in memory (stories pinned to them are rare)


class Rules(Protocol):
    """The rules in force (None until a valid file was loaded)."""

    @property
    def current(self) -> Ruleset | None: ...


class Rulebook:
    def __init__(self, store: Store, rules: Rules, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._rules = rules
        self._clock = clock
        self._kept: set[str] = set()  # versions this process has stored
        self._older: OrderedDict[str, Ruleset] = OrderedDict()
        self._unusable: set[str] = set()  # versions already reported as unusable

    def current(self) -> Ruleset:
        ruleset = self._rules.current
        if ruleset is None:
            raise RuntimeError("no rules loaded")
        return ruleset

    async def for_story(self, story: Story) -> Ruleset | None:
        """The rules ``story`` is routed by; None: keep its stored decisions (it ended, and
        the rules it was routed by are not available)."""
        current = self.current()
        version = story.rules_version
        if version is None:
            if story.digest is not None and story.ended_at is not None:
                return None  # routed and ended before versions were pinned
            await self.keep(current)
            return current
        if version == current.version:
            await self.keep(current)
            return current
        older = self._older.get(version)
        if older is None:
            older = await self._load(version)
        if older is not None:
            self._older.move_to_end(version)
            return older
        return current if story.ended_at is None else None

    async def keep(self, ruleset: Ruleset, *, refresh: bool = False) -> None:
        """Store ``ruleset``'s text before a story is pinned to it (once per process, or
        again with ``refresh``: the janitor does, so a running version is never forgotten)."""
        if refresh or ruleset.version not in self._kept:
            await self._store.save_ruleset(
                ruleset.version, ruleset.source, ruleset.text, self._clock()
            )
            self._kept.add(ruleset.version)

    async def _load(self, version: str) -> Ruleset | None:
        found = await self._store.ruleset(version)
        if found is None:
            self._report(version, "not kept in the store")
            return None
        source, text = found
        try:
            ruleset = await asyncio.to_thread(load_text, text, source)
        except RulesError as err:
            self._report(version, f"no longer loads: {err.problems[0] if err.problems else err}")
            return None
        self._older[version] = ruleset
        while len(self._older) > CACHED:
            self._older.popitem(last=False)
        return ruleset

    def _report(self, version: str, why: str) -> None:
        if version not in self._unusable:
            self._unusable.add(version)
            log.warning(
                "rules.version_unavailable",
                version=version[:12],
                why=why,
                effect="calls routed by it keep their decisions, or follow the rules in force "
                "while they last",
            )
