"""Call state as a pure fold over a call story's events.

A *story* is everything the caller experienced as one call: the provider's call plus any
calls merged into it by a transfer (the consult call B->C of an attended transfer has its
own ``call_id``; at the transfer one id survives and the other is named ``merged_id``).
The store keeps which ids belong together; this module only folds their events.

The fold sorts by (second, status rank, exact timestamp, canonical encoding; see
:func:`sort_key`) and drops exact duplicates,
so any arrival order and any duplication of the same events gives the same :class:`Call`.
(DESIGN.md mentions arrival order as the last tie-break; identical events are duplicates and
different ones are ordered by their content instead, which keeps the fold a function of the
*set* of events: the property the tests check.)
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Final, Literal

import msgspec

from bridge.core.events import Direction, Event, Participant, Rank, TransferKind

Phase = Literal["new", "ringing", "answered", "ended"]
StepKind = Literal["created", "ringing", "answered", "transfer", "ended"]

DEFAULT_STALE_AFTER: Final = timedelta(hours=4)
STALE_REASON: Final = "stale"


class Transfer(msgspec.Struct, frozen=True, kw_only=True):
    at: datetime
    kind: TransferKind
    by: Participant | None
    to: tuple[Participant, ...]


class Step(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One line of the call's story (a thread reply)."""

    at: datetime
    kind: StepKind
    call_id: str
    people: tuple[Participant, ...] = ()
    by: Participant | None = None
    transfer_kind: TransferKind | None = None
    reason: str | None = None
    consult: bool = False  # happened on a consult call before it was merged


class Call(msgspec.Struct, frozen=True, kw_only=True):
    """Everything known about one call story, derived only from its events."""

    call_id: str  # the customer's call: the id of the story's first event
    call_ids: tuple[str, ...]  # every provider id in the story, sorted
    direction: Direction
    caller: Participant
    dialled: str  # the number the caller dialled (destination.number of the first event)
    started_at: datetime
    last_event_at: datetime
    rung: tuple[Participant, ...]  # everyone whose phone rang, in order, without repeats
    answered_by: Participant | None
    answered_at: datetime | None
    picked_up: bool  # answered by someone who was not rung (pickup group)
    connected: Participant | None  # who the caller is talking to (last answer/transfer)
    transfers: tuple[Transfer, ...]
    ended_at: datetime | None
    end_reason: str | None  # provider reason, or "stale" when closed for lack of `ended`
    steps: tuple[Step, ...]
    event_count: int

    @property
    def ended(self) -> bool:
        return self.ended_at is not None

    @property
    def stale(self) -> bool:
        return self.end_reason == STALE_REASON

    @property
    def answered(self) -> bool:
        return self.answered_at is not None

    @property
    def missed(self) -> bool:
        """Ended and nobody ever answered (the provider's reason alone is not enough)."""
        return self.ended and not self.answered

    @property
    def phase(self) -> Phase:
        if self.ended:
            return "ended"
        if self.answered:
            return "answered"
        if self.rung:
            return "ringing"
        return "new"

    @property
    def ring_time(self) -> timedelta | None:
        """From the first event until answered (or until the end, when missed)."""
        stop = self.answered_at or self.ended_at
        return None if stop is None else max(stop - self.started_at, timedelta(0))

    @property
    def talk_time(self) -> timedelta | None:
        if self.answered_at is None or self.ended_at is None:
            return None
        return max(self.ended_at - self.answered_at, timedelta(0))

    @property
    def merged(self) -> bool:
        return len(self.call_ids) > 1


def sort_key(event: Event) -> tuple[datetime, Rank, datetime, bytes]:
    """Second, then status rank, then the exact time.

    The provider sends some timestamps with microseconds and some truncated to the second, so
    ``ringing`` at ``09:41:07`` may follow ``created`` at ``09:41:07.972``: within one second the
    status rank, not the fraction, decides.
    """
    second = event.timestamp.replace(microsecond=0)
    return (second, event.rank, event.timestamp, event.canonical())


def ordered(events: Iterable[Event]) -> list[Event]:
    """Distinct events in fold order."""
    unique = {event.canonical(): event for event in events}
    return sorted(unique.values(), key=sort_key)


def fold(
    events: Iterable[Event],
    *,
    now: datetime | None = None,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
    silence: timedelta | None = None,
) -> Call:
    """Fold a story's events into a :class:`Call`.

    A call with no ``ended`` is closed as stale once nothing was heard of it for
    ``stale_after``: ``silence`` says for how long (the caller measures it on its own clock,
    from when the last event was *received*); without it, ``now`` minus the last event's
    timestamp. Without either the fold depends on the events alone.
    """
    seq = ordered(events)
    if not seq:
        raise ValueError("a call needs at least one event")
    first = seq[0]
    primary = first.call_id
    ids = {e.call_id for e in seq} | {e.merged_id for e in seq if e.merged_id}
    # Events on another id before the first transfer (in fold order, so an event sharing the
    # transfer's whole-second timestamp is still placed correctly) belong to a consult call.
    merged_pos = next((i for i, e in enumerate(seq) if e.is_transfer), len(seq))

    rung: dict[str, Participant] = {}
    steps: list[Step] = []
    transfers: list[Transfer] = []
    answered_by: Participant | None = None
    answered_at: datetime | None = None
    connected: Participant | None = None
    talked: set[str] = set()  # everyone seen answering, on the call or a consult call
    end: Event | None = None

    for pos, event in enumerate(seq):
        consult = event.call_id != primary and pos < merged_pos
        if event.status == "ended":
            end = event
            continue
        end = None  # something happened after an earlier `ended`: that was only a leg
        if event.status == "created":
            steps.append(Step(at=event.timestamp, kind="created", call_id=event.call_id))
        elif event.status == "ringing":
            if new := _add_people(rung, event.destination.people):
                steps.append(_step(event, "ringing", new, consult))
        elif event.status == "in-progress":
            who = event.destination.people
            person = who[0] if who else None
            if person is not None:
                talked.add(person.key)
            if not consult and answered_at is None:
                answered_at, answered_by = event.timestamp, person
            if person is not None and (consult or connected is None or person.key != connected.key):
                steps.append(_step(event, "answered", (person,), consult))
            if not consult:
                connected = person
        else:  # a transfer
            to = event.destination.people
            transfers.append(
                Transfer(at=event.timestamp, kind=event.transfer_kind, by=event.redirector, to=to)
            )
            steps.append(_transfer_step(event))
            if event.transfer_kind == "warm" and to and to[0].key in talked:
                # Semi-attended: transferred while the target still rings; their own
                # `in-progress` will connect them (and show up as a step).
                connected = to[0]

    if answered_at is None:
        answered_at, answered_by = _any_answer(seq)

    last_at = seq[-1].timestamp
    quiet = silence if silence is not None else (None if now is None else now - last_at)
    closing = _closing(end, primary, last_at, quiet is not None and quiet >= stale_after)
    steps = _distinct([*steps, closing] if closing is not None else steps)

    rung_keys = set(rung)
    return Call(
        call_id=primary,
        call_ids=tuple(sorted(ids)),
        direction=first.direction,
        caller=first.caller,
        dialled=first.destination.number,
        started_at=first.timestamp,
        last_event_at=last_at,
        rung=tuple(rung.values()),
        answered_by=answered_by,
        answered_at=answered_at,
        # Auto-answer (nothing rang at all) is not a pickup.
        picked_up=answered_by is not None and bool(rung_keys) and answered_by.key not in rung_keys,
        connected=connected,
        transfers=_distinct_transfers(transfers),
        ended_at=closing.at if closing else None,
        end_reason=closing.reason if closing else None,
        steps=tuple(steps),
        event_count=len(seq),
    )


def step_identity(step: Step) -> tuple[str | bool | None, ...]:
    """What makes two steps the same step: who and what, not how the provider spelled it.

    Two events of one step may differ in content (a redelivered ``created`` without the
    caller's name, a transfer whose redirector lost its account number): they are told once,
    in the spelling of the first in fold order (which does not depend on arrival order)."""
    second = step.at.replace(microsecond=0).isoformat()
    people = " ".join(p.key for p in step.people)
    by = None if step.by is None else step.by.key
    return (step.kind, step.call_id, second, people, by, step.transfer_kind, step.consult)


def _distinct(steps: list[Step]) -> list[Step]:
    seen: set[tuple[str | bool | None, ...]] = set()
    out: list[Step] = []
    for step in steps:
        identity = step_identity(step)
        if identity not in seen:
            seen.add(identity)
            out.append(step)
    return out


def _distinct_transfers(transfers: list[Transfer]) -> tuple[Transfer, ...]:
    """One entry per transfer however its event was spelled (as :func:`step_identity`)."""
    seen: set[tuple[str | None, ...]] = set()
    out: list[Transfer] = []
    for t in transfers:
        identity = (
            t.at.replace(microsecond=0).isoformat(),
            t.kind,
            None if t.by is None else t.by.key,
            " ".join(p.key for p in t.to),
        )
        if identity not in seen:
            seen.add(identity)
            out.append(t)
    return tuple(out)


def _step(event: Event, kind: StepKind, people: tuple[Participant, ...], consult: bool) -> Step:
    return Step(
        at=event.timestamp, kind=kind, call_id=event.call_id, people=people, consult=consult
    )


def _any_answer(seq: list[Event]) -> tuple[datetime | None, Participant | None]:
    """Only consult-call answers were seen (events missing): any answer still means answered."""
    answer = next((e for e in seq if e.status == "in-progress"), None)
    if answer is None:
        return None, None
    people = answer.destination.people
    return answer.timestamp, people[0] if people else None


def _transfer_step(event: Event) -> Step:
    return Step(
        at=event.timestamp,
        kind="transfer",
        call_id=event.call_id,
        people=event.destination.people,
        by=event.redirector,
        transfer_kind=event.transfer_kind,
    )


def _closing(end: Event | None, primary: str, last_at: datetime, stale: bool) -> Step | None:
    """The final ``ended`` step: the provider's, or a stale close when it never came."""
    if end is not None:
        return Step(at=end.timestamp, kind="ended", call_id=end.call_id, reason=end.reason)
    if stale:
        return Step(at=last_at, kind="ended", call_id=primary, reason=STALE_REASON)
    return None


def _add_people(
    known: dict[str, Participant], people: tuple[Participant, ...]
) -> tuple[Participant, ...]:
    new: list[Participant] = []
    for person in people:
        if person.key not in known:
            known[person.key] = person
            new.append(person)
    return tuple(new)
