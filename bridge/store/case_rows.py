"""Callback cases as both stores keep them (bridge/store/*_cases.py run the SQL)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from bridge.core.cases import CaseKey, Fact, encode_fact, fact_id, kind_of
from bridge.store import CaseRow, CaseWrite
from bridge.store.rows import from_us, to_us


@dataclass(frozen=True, slots=True)
class FactRow:
    scope: str
    number: str
    fact_id: str
    kind: str
    at_us: int
    body: bytes


@dataclass(frozen=True, slots=True)
class StoredCase:
    """:class:`~bridge.store.CaseRow` in stored form."""

    case_id: str
    scope: str
    number: str
    opened_us: int
    closed_us: int | None
    how: str | None
    check_us: int | None

    def row(self) -> CaseRow:
        return CaseRow(
            case_id=self.case_id,
            key=CaseKey(self.scope, self.number),
            opened_at=from_us(self.opened_us),
            closed_at=None if self.closed_us is None else from_us(self.closed_us),
            how=self.how,
            check_at=None if self.check_us is None else from_us(self.check_us),
        )


@dataclass(frozen=True, slots=True)
class CaseWriteRow:
    """:class:`~bridge.store.CaseWrite` in stored form, with what the refold folded."""

    facts: Sequence[FactRow]
    cases: Sequence[StoredCase]
    folded: dict[tuple[str, str], str]  # (scope, number) -> fingerprint of the facts folded
    now_us: int


def fact_row(key: CaseKey, fact: Fact) -> FactRow:
    return FactRow(
        key.scope, key.number, fact_id(fact), kind_of(fact), to_us(fact.at), encode_fact(fact)
    )


def stored_case(row: CaseRow) -> StoredCase:
    return StoredCase(
        row.case_id,
        row.key.scope,
        row.key.number,
        to_us(row.opened_at),
        None if row.closed_at is None else to_us(row.closed_at),
        row.how,
        None if row.check_at is None else to_us(row.check_at),
    )


def case_write_row(write: CaseWrite, now_us: int) -> CaseWriteRow:
    return CaseWriteRow(
        facts=[fact_row(key, fact) for key, fact in write.facts],
        cases=[stored_case(c) for c in write.cases],
        folded={(k.scope, k.number): f for k, f in write.folded.items()},
        now_us=now_us,
    )


# The stories to fold again when a number's facts change at time $3 (the earliest changed
# fact): a fact can change only the case open at its time (or closed after it: the alert of
# that case's first miss) and the cases opened after it (every miss from then on, stacked or
# first). Cases that closed before it are final. Without this bound every new miss refolded
# every story with a miss of the number: quadratic in a caller's misses. Placeholders: scope,
# number, time (µs).
# A number's facts a refold folds (placeholders: scope, number, after µs) and the time
# below which they are left out when the number has more than MAX_FACTS_PER_NUMBER of them
# (placeholders: scope, number, after µs, MAX_FACTS_PER_NUMBER): the at_us of the newest
# fact left out, so that ``at_us > cut`` keeps at most that many. Reads and the write's
# check of what a refold folded use both, so they agree on the window.
FACTS_SQL: Final = "SELECT body FROM case_facts WHERE scope = $1 AND number = $2 AND at_us > $3"
CUT_SQL: Final = (
    "SELECT at_us FROM case_facts WHERE scope = $1 AND number = $2 AND at_us > $3"
    " ORDER BY at_us DESC LIMIT 1 OFFSET $4"
)
ARCHIVED_SQL: Final = "SELECT until_us FROM case_archive WHERE scope = $1 AND number = $2"
NEVER_US: Final = -(2**62)  # before any fact: nothing archived


ANCHORS_SQL: Final = (
    "SELECT DISTINCT story_id FROM case_facts WHERE scope = $1 AND number = $2"
    " AND kind = 'missed' AND (at_us >= $3 OR story_id IN (SELECT case_id FROM cases"
    " WHERE scope = $1 AND number = $2 AND opened_us <= $3"
    " AND (closed_us IS NULL OR closed_us >= $3)))"
)


def changed_since(
    before: Iterable[tuple[str, str, str, bytes, int]],
    after: Iterable[tuple[str, str, str, bytes, int]],
) -> dict[tuple[str, str], int]:
    """(scope, number) -> the earliest time of a fact added, removed or changed."""
    since: dict[tuple[str, str], int] = {}
    for scope, number, _fact, _body, at_us in set(before) ^ set(after):
        key = (scope, number)
        since[key] = min(at_us, since.get(key, at_us))
    return since
