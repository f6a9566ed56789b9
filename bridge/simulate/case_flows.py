"""Callback case flows (issue 16): what happens to one customer number over several calls,
as the provider's payloads, with button presses in between, and how the case must end.

Pure: no I/O. A flow is a list of :class:`CaseCall` (one call's payloads, stamped relative to
"now": minutes or days in the past, so that an escalation or an expiry has already come due
when the bridge folds it) and :class:`Press` (a person's button press on the case's alert).
:class:`CaseExpected` is written by hand from the flow (never computed by the bridge).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from bridge.simulate.wire import (
    JOHAN,
    PIETER,
    SANNE,
    SUPPORT_LINE,
    Payload,
    Person,
    ScenarioContext,
    answered_by,
    event,
    ringing_to,
)

Closed = Literal["got_through", "called_back", "done", "expired"]


@dataclass(frozen=True)
class CaseCall:
    """One call of the flow, in the order the provider sends its events."""

    payloads: list[Payload]


@dataclass(frozen=True)
class Press:
    """A colleague presses a button on the case's alert (claim, release, done)."""

    action: Literal["claim", "release", "done"]
    user_id: str
    user: str


CaseAction = CaseCall | Press


@dataclass(frozen=True, kw_only=True)
class CaseExpected:
    """How the flow's case ends (hand-written)."""

    misses: int
    attempts: int  # unanswered callbacks
    closed: Closed | None  # None: still open at the end
    by: str | None = None  # who closed it (the answerer, the caller back, the presser)
    escalated: bool = False
    claimed_by: str | None = None  # who holds it at the end (an open case)


@dataclass(frozen=True)
class CaseFlow:
    name: str
    description: str
    build: Callable[[CaseContext], list[CaseAction]]
    expected: CaseExpected
    presses: bool = False  # needs the interactivity endpoint (a signing secret)


class CaseContext:
    """One flow's customer and clock: every call gets its own ids, the customer stays."""

    def __init__(self, now: datetime, *, seed: int = 0) -> None:
        self.now = now.astimezone(UTC).replace(microsecond=0)
        self.rng = random.Random(seed)  # noqa: S311 (sample data, not security)
        mobile = "+316" + "".join(str(self.rng.randrange(10)) for _ in range(8))
        self.customer = Person(self.rng.choice((None, "Anouk Visser")), mobile, None, (), ())
        self.first_call_id: str | None = None  # the case's id: its first missed call's

    def call(self, ago: timedelta) -> ScenarioContext:
        """A context for the next call, started ``ago`` before now."""
        return ScenarioContext(self.now - ago, seed=self.rng.randrange(2**31))

    @property
    def dialled_nationally(self) -> str:
        """The customer's number as a colleague dials it (``06…``: not E.164)."""
        return "0" + self.customer.number.removeprefix("+31")


def missed(case: CaseContext, ago: timedelta, *rung: Person) -> CaseCall:
    ctx = case.call(ago)

    def ev(**kw: Any) -> Payload:
        return event(ctx, direction="inbound", caller=case.customer.wire(), **kw)

    calls = [
        ev(at=ctx.at(0), status="created", destination={"number": SUPPORT_LINE}),
        ev(at=ctx.at(1), status="ringing", destination=ringing_to(SUPPORT_LINE, *rung)),
        ev(at=ctx.at(35), status="ended", reason="no-answer", destination={"number": SUPPORT_LINE}),
    ]
    if case.first_call_id is None:
        case.first_call_id = ctx.call_id()
    return CaseCall(calls)


def got_through(case: CaseContext, ago: timedelta, answerer: Person) -> CaseCall:
    ctx = case.call(ago)

    def ev(**kw: Any) -> Payload:
        return event(ctx, direction="inbound", caller=case.customer.wire(), **kw)

    return CaseCall(
        [
            ev(at=ctx.at(0), status="ringing", destination=ringing_to(SUPPORT_LINE, answerer)),
            ev(at=ctx.at(6), status="in-progress", destination=answered_by(SUPPORT_LINE, answerer)),
            ev(
                at=ctx.at(95),
                status="ended",
                reason="completed",
                destination={"number": SUPPORT_LINE},
            ),
        ]
    )


def called(case: CaseContext, ago: timedelta, by: Person, *, answered: bool) -> CaseCall:
    """``by`` calls the customer, dialling the number nationally (as people do)."""
    ctx = case.call(ago)
    dialled = case.dialled_nationally
    callee = Person(None, dialled, None, (), ())

    def ev(**kw: Any) -> Payload:
        return event(ctx, direction="outbound", caller=by.wire(), **kw)

    payloads = [ev(at=ctx.at(0), status="ringing", destination=ringing_to(dialled, callee))]
    if answered:
        payloads.append(
            ev(at=ctx.at(9), status="in-progress", destination=answered_by(dialled, callee))
        )
        payloads.append(
            ev(at=ctx.at(150), status="ended", reason="completed", destination={"number": dialled})
        )
    else:
        payloads.append(
            ev(at=ctx.at(25), status="ended", reason="no-answer", destination={"number": dialled})
        )
    return CaseCall(payloads)


MIN, DAY = timedelta(minutes=1), timedelta(days=1)


def _called_back(c: CaseContext) -> list[CaseAction]:
    return [missed(c, 25 * MIN, JOHAN, SANNE), called(c, 5 * MIN, SANNE, answered=True)]


def _twice_then_through(c: CaseContext) -> list[CaseAction]:
    return [
        missed(c, 20 * MIN, JOHAN),
        missed(c, 12 * MIN, JOHAN, SANNE),
        got_through(c, 2 * MIN, PIETER),
    ]


def _tried_then_expired(c: CaseContext) -> list[CaseAction]:
    return [missed(c, 3 * DAY + 60 * MIN, JOHAN), called(c, 2 * DAY, SANNE, answered=False)]


def _claimed_then_done(c: CaseContext) -> list[CaseAction]:
    return [
        missed(c, 10 * MIN, JOHAN),
        Press("claim", "U0ALICE", "Alice"),
        Press("claim", "U0BOB", "Bob"),  # refused: Alice is on it
        Press("done", "U0ALICE", "Alice"),
    ]


CASE_FLOWS: dict[str, CaseFlow] = {
    f.name: f
    for f in (
        CaseFlow(
            "case-called-back",
            "a customer's call is missed; Sanne calls them back 20 minutes later",
            _called_back,
            CaseExpected(misses=1, attempts=0, closed="called_back", by=SANNE.label),
        ),
        CaseFlow(
            "case-missed-twice-got-through",
            "the customer tries twice (one case, stacked), then gets through to Pieter",
            _twice_then_through,
            CaseExpected(misses=2, attempts=0, closed="got_through", by=PIETER.label),
        ),
        CaseFlow(
            "case-tried-expired",
            "missed three days ago; Sanne tried once (no answer); nobody reached them since",
            _tried_then_expired,
            CaseExpected(misses=1, attempts=1, closed="expired", escalated=True),
        ),
        CaseFlow(
            "case-claimed-done",
            "missed; Alice claims it (Bob's claim is refused), then marks it done",
            _claimed_then_done,
            CaseExpected(misses=1, attempts=0, closed="done", by="Alice"),
            presses=True,
        ),
    )
}
