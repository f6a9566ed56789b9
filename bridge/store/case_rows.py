"""Callback cases as both stores keep them (bridge/store/*_cases.py run the SQL)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
