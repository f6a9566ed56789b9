"""The dispatcher's part in callback cases: a refolded story's case facts, and, for a missed
call, the case its alert shows.

A story's facts are derived by the rules (bridge/rules/callbacks.py); the case is folded by
the pure core (bridge/core/cases.py) from every stored fact of the number with the story's
own replacing its stored ones. The first missed call of a case carries the case's alert in
every destination any of its missed calls alerts; a later missed call of an open case is
stacked (no alert of its own: the case's alert shows it); a missed call that belongs to a
case retention has purged shows nothing new.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime

import msgspec

from bridge.core.calls import Call
from bridge.core.cases import (
    Case,
    CaseKey,
    Fact,
    Missed,
    case_of,
    encode_fact,
    fact_id,
    fingerprint,
    fold,
)
from bridge.core.routing import Delivery, RouteResult, Target
from bridge.rules import Ruleset, targets
from bridge.rules.callbacks import case_facts
from bridge.store import CaseHistory, CaseRow, CaseWrite, Store


class CaseHistories:
    """A number's stored case facts, read once for all the stories a dispatcher cycle
    refolds: a caller with hundreds of missed calls has hundreds of stories refolded in one
    cycle, which otherwise each read and decode every fact of the number at once (the
    hostile-input fuzz's memory peaks, issue 13). Lives for one cycle only: the next cycle
    reads again, and a write checks the facts it folded are still the stored ones."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._reads: dict[CaseKey, asyncio.Future[CaseHistory]] = {}
        self.reads = 0  # store reads made (tests)

    async def history(self, key: CaseKey) -> CaseHistory:
        shared = self._reads.get(key)
        if shared is not None:
            # shield: one waiter cancelled must not cancel the read for the others
            return await asyncio.shield(shared)
        future: asyncio.Future[CaseHistory] = asyncio.get_running_loop().create_future()
        self._reads[key] = future
        self.reads += 1
        try:
            found = (await self._store.case_facts([key]))[key]
        except BaseException as err:
            del self._reads[key]  # a later story of the cycle tries again
            if isinstance(err, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(err)
                future.exception()  # retrieved here: the waiters (if any) raise it too
            raise
        future.set_result(found)
        return found


@dataclass(frozen=True)
class CasePlan:
    facts: list[tuple[CaseKey, Fact]]
    case: Case | None = None  # the case whose alert this story carries
    quiet: bool = False  # its missed call is shown by another story's alert (or archived)
    folded: dict[CaseKey, str] = field(default_factory=dict)
    capped: bool = False  # the caller's oldest facts were left out (MAX_FACTS_PER_NUMBER)

    def digest(self) -> bytes:
        """What a person would see of the case on this story's messages."""
        if self.case is None:
            return b"quiet" if self.quiet else b""
        return msgspec.json.encode(self.case)

    def targets(self, ruleset: Ruleset, planned: list[Target]) -> list[Target]:
        """The story's targets with its missed alerts replaced by the case's (or none)."""
        if self.case is None and not self.quiet:
            return planned
        kept = [t for t in planned if t.delivery.kind != "missed"]
        if self.case is None:
            return kept
        first = next((t.delivery for t in planned if t.delivery.kind == "missed"), None)
        route = first.route if first is not None else "callback case"
        alerts = tuple(
            Delivery(name, "missed", route, self.case.mentions_for(name))
            for name in self.case.destinations
            if name in ruleset.destinations
        )
        return kept + targets(ruleset, RouteResult((route,), alerts, unmatched=False))

    def write(self) -> CaseWrite:
        rows: list[CaseRow] = []
        if self.case is not None:
            closing = self.case.closing
            rows.append(
                CaseRow(
                    case_id=self.case.id,
                    key=self.case.key,
                    opened_at=self.case.opened_at,
                    closed_at=None if closing is None else closing.at,
                    how=None if closing is None else closing.how,
                    check_at=self.case.next_check(),
                )
            )
        return CaseWrite(facts=self.facts, cases=rows, folded=self.folded)


async def case_plan(
    histories: CaseHistories,
    ruleset: Ruleset,
    call: Call,
    result: RouteResult,
    story_id: str,
    now: datetime,
) -> CasePlan:
    """The story's case facts, and for a missed call its case (one store read per number
    and cycle, shared by ``histories``)."""
    facts = [
        (key, msgspec.structs.replace(fact, story_id=story_id))
        for key, fact in case_facts(ruleset, call, result)
    ]
    mine = next(((k, f) for k, f in facts if isinstance(f, Missed)), None)
    if mine is None:
        return CasePlan(facts)
    key, miss = mine
    history = await histories.history(key)
    together = [f for f in history.facts if fact_id(f) != fact_id(miss)]
    archived = history.archived_until
    if archived is None or miss.at > archived:
        together.append(miss)
    folded = {key: fingerprint(encode_fact(f) for f in together)}
    case = case_of(fold(key, together, now), story_id)
    capped = history.capped
    if case is None or case.id != story_id:
        return CasePlan(facts, quiet=True, folded=folded, capped=capped)
    return CasePlan(facts, case=case, folded=folded, capped=capped)
