"""What both stores keep in the same form: times as integer microseconds since 1970 UTC
(they sort and compare correctly in either database), an accepted event's row, and a
refold's state and plan as the dialects' operations take them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from bridge.core.events import Event, dedupe_key, encode_event
from bridge.core.slots import Planned
from bridge.store import Emitted, PlanRequest

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)


def to_us(value: datetime) -> int:
    """Microseconds since the epoch (UTC); naive datetimes are a programming error."""
    if value.utcoffset() is None:
        raise ValueError(f"expected a timezone-aware datetime, got {value.isoformat()}")
    return (value - _EPOCH) // _MICROSECOND


def from_us(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


@dataclass(frozen=True, slots=True)
class Row:
    """What the store writes for one event (encoded on the event loop, not in a writer)."""

    call_id: str
    merged_id: str | None
    status: str
    timestamp_us: int
    received_us: int
    dedupe_key: str
    body: bytes


def event_row(event: Event, received_at: datetime) -> Row:
    """What the store keeps of an event (encoded on the event loop, not in a writer)."""
    body = encode_event(event)
    return Row(
        call_id=event.call_id,
        merged_id=event.merged_id,
        status=event.status,
        timestamp_us=to_us(event.timestamp),
        received_us=to_us(received_at),
        dedupe_key=dedupe_key(body),
        body=body,
    )


@dataclass(frozen=True, slots=True)
class StateRow:
    """:class:`~bridge.store.Emitted` in stored form."""

    upto_seq: int
    digest: str
    ended_us: int | None
    last_event_us: int
    rules_version: str | None
    calls: int | None = None  # Emitted.calls


def state_row(state: Emitted) -> StateRow:
    ended = None if state.ended_at is None else to_us(state.ended_at)
    last = to_us(state.last_event_at)
    return StateRow(state.upto_seq, state.digest, ended, last, state.rules_version, state.calls)


@dataclass(frozen=True, slots=True)
class PlanRow:
    """:class:`~bridge.store.PlanRequest` in stored form."""

    planned: Sequence[Planned]
    now_us: int
    missed_due_us: int
    allow_new: bool


def plan_row(request: PlanRequest) -> PlanRow:
    return PlanRow(
        request.planned, to_us(request.now), to_us(request.missed_due), request.allow_new
    )
