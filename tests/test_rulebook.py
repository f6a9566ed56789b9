"""Which rules route a story (bridge/deliver/rulebook.py), over a real SQLite store: the
version a story was first routed by, read back after a restart; the fallbacks when it is
not available."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import structlog

from bridge.deliver.rulebook import Rulebook
from bridge.rules import Ruleset, load_text
from bridge.store import Story
from bridge.store.sqlite import SqliteStore
from tests.store import at

RULES = """\
version: 1
timezone: Europe/Amsterdam
destinations:
  support: {slack: {channel: C0123456789}}
routes:
  - name: everything
    live: support
"""
OTHER = RULES.replace("everything", "all calls")


@dataclass
class Holder:
    current: Ruleset | None


def story(**kw: object) -> Story:
    base = Story(
        story_id="s1",
        call_ids=("s1",),
        events=(),
        max_seq=1,
        first_stored_at=at(0),
        digest=None,
        ended_at=None,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "bridge.db")
    await opened.open()
    yield opened
    await opened.close()


async def test_a_new_story_is_routed_by_the_rules_in_force_which_are_kept(
    store: SqliteStore,
) -> None:
    rules = load_text(RULES, "rules.yaml")
    book = Rulebook(store, Holder(rules), lambda: at(0))
    assert await book.for_story(story()) is rules
    assert await store.ruleset(rules.version) == ("rules.yaml", RULES)


async def test_a_pinned_older_version_is_read_back_after_a_restart(store: SqliteStore) -> None:
    old = load_text(RULES, "rules.yaml")
    await Rulebook(store, Holder(old), lambda: at(0)).keep(old)
    new = load_text(OTHER, "rules.yaml")
    book = Rulebook(store, Holder(new), lambda: at(1))  # a new process, other rules
    found = await book.for_story(story(rules_version=old.version, digest="d"))
    assert found is not None
    assert (found.version, found.routes[0].name) == (old.version, "everything")


async def test_an_unavailable_version_keeps_decisions_once_the_call_ended(
    store: SqliteStore,
) -> None:
    new = load_text(OTHER, "rules.yaml")
    book = Rulebook(store, Holder(new), lambda: at(1))
    with structlog.testing.capture_logs() as logs:
        ended = story(rules_version="f" * 64, digest="d", ended_at=at(60))
        assert await book.for_story(ended) is None
        open_call = story(rules_version="f" * 64, digest="d")
        assert await book.for_story(open_call) is new
    warnings = [e for e in logs if e["event"] == "rules.version_unavailable"]
    assert len(warnings) == 1  # once per version, not per story
    assert warnings[0]["why"] == "not kept in the store"


async def test_a_version_the_code_no_longer_accepts_is_unavailable(store: SqliteStore) -> None:
    await store.save_ruleset("e" * 64, "old.yaml", "version: 1\nroutes: 7\n", at(0))
    book = Rulebook(store, Holder(load_text(RULES, "rules.yaml")), lambda: at(1))
    with structlog.testing.capture_logs() as logs:
        assert await book.for_story(story(rules_version="e" * 64, ended_at=at(60))) is None
    assert logs[0]["why"].startswith("no longer loads: old.yaml:")


async def test_a_call_routed_and_ended_before_pinning_keeps_its_decisions(
    store: SqliteStore,
) -> None:
    book = Rulebook(store, Holder(load_text(RULES, "rules.yaml")), lambda: at(1))
    assert await book.for_story(story(digest="d", ended_at=at(60))) is None
    # still open: it takes the rules in force (and is pinned to them by the dispatcher)
    assert await book.for_story(story(digest="d")) is not None
