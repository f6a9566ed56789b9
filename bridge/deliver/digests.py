"""Planning the daily digests (the rules' ``digest:``): the dispatcher's janitor asks every
round; when a digest time has come, each of its destinations gets one message about its
callback cases, planned in the outbox and posted by delivery like any other message.

A digest is planned once: its story id names its time, and the store keeps the first plan
of it (so a restart, or another instance taking over, plans nothing twice). A bridge that
was down at the time plans it late, within :data:`GRACE`; later than that it waits for the
next one rather than post yesterday's news. The cases are folded as of the digest's time.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

import structlog

from bridge.core.cases import fold
from bridge.core.digest import DigestContent, digest_cases, latest_due, previous_due
from bridge.core.plan import encode
from bridge.rules.model import Ruleset
from bridge.rules.targets import channels
from bridge.store import Store
from bridge.store.outbox import DIGEST_PREFIX, DigestMessage

log = structlog.get_logger("bridge.deliver.digests")

GRACE: Final = timedelta(hours=6)


class Digests:
    """Remembers the last digest time it planned (a round in the same window reads nothing)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._planned: datetime | None = None

    async def plan(self, ruleset: Ruleset, now: datetime) -> int:
        """Plan the digest due at ``now``, if any and not planned yet; how many messages are
        new (0 when none is due or it was planned before)."""
        rule = ruleset.digest
        if rule is None:
            return 0
        tz = ruleset.timezone
        until = latest_due(rule.at, rule.days, tz, now)
        if until is None or now - until > GRACE or until == self._planned:
            return 0
        story_id = f"{DIGEST_PREFIX}{until.astimezone(tz).isoformat(timespec='minutes')}"
        messages = [
            DigestMessage(story_id, content.destination, platform, channel, encode(content))
            for content in await contents(self._store, ruleset, until)
            for platform, channel in channels(ruleset.destinations[content.destination])
        ]
        new = await self._store.add_digests(messages, now)
        self._planned = until
        if new:
            log.info("digest.planned", at=story_id, destinations=list(rule.to), messages=new)
        return new


async def contents(store: Store, ruleset: Ruleset, until: datetime) -> list[DigestContent]:
    """The digest of each destination in the rules' ``digest.to`` for the period ending at
    ``until`` (and starting at the digest time before it), its cases folded as of ``until``."""
    rule, tz = ruleset.digest, ruleset.timezone
    if rule is None:
        return []
    since = previous_due(rule.at, rule.days, tz, until)
    keys = await store.digest_case_keys(since, until)
    histories = await store.case_facts(keys)
    cases = [c for key, h in histories.items() for c in fold(key, h.facts, until)]
    return [
        DigestContent(name, since, until, tz.key, digest_cases(cases, name, since, until))
        for name in rule.to
    ]
