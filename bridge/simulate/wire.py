"""The provider's vocabulary for the scenarios: the company's lines and people, one call's
context (start time, seeded randomness, call ids) and the payload builders the flows share.

Pure: no I/O. Payloads are plain ``dict[str, Any]`` on purpose: they are wire documents (what
goes into the HTTP body), not domain objects.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

Payload = dict[str, Any]
Leg = Literal["original", "consult"]

SUPPORT_LINE = "+31508009000"
SALES_LINE = "+31508009010"
OUTBOUND_NUMBER = "0612345678"  # dialled as typed on the phone: not E.164


@dataclass(frozen=True)
class Person:
    """Someone on the phone platform (or an outside party when ``account_number`` is None)."""

    name: str | None
    number: str
    account_number: int | None = None
    user_numbers: tuple[str, ...] = ()
    user_emails: tuple[str, ...] | None = None  # None: the field is absent from the payload

    @property
    def label(self) -> str:
        """How :class:`bridge.core.events.Participant` labels this person (name, else number)."""
        return self.name or self.number

    def wire(self, *, number: str | None = None) -> Payload:
        doc: Payload = {
            "number": number or self.number,
            "name": self.name,
            "account_number": self.account_number,
            "user_numbers": list(self.user_numbers),
        }
        if self.user_emails is not None:
            doc["user_emails"] = list(self.user_emails)
        return doc

    def as_internal(self) -> Payload:
        """As the caller of an internal call or as a redirector: numbered by extension."""
        return self.wire(number=self.user_numbers[0] if self.user_numbers else None)


# The company's people. Fixed (not random) so that the expected facts can name them.
JOHAN = Person("Johan | Voys", "+31508009101", 201, ("201",), ("johan@example.com",))
SANNE = Person("Sanne de Vries", "+31508009102", 202, ("202",), ("sanne@example.com",))
PIETER = Person("Pieter Bakker", "+31508009103", 203, ("203",), ())
FATIMA = Person("Fatima El Amrani", "+31508009104", 204, ("204",), None)
LUCAS = Person("Lucas Jansen", "+31508009105", 205, ("205",), ("lucas@example.com",))
RECEPTION = Person(None, "+31508009106", 206, ("206",), None)  # a shared desk phone, no name

CUSTOMER_NAMES: tuple[str | None, ...] = (
    None,
    None,
    "M. de Jong",
    "Bakkerij de Zon",
    "Jansen | Installatietechniek",
    "Anouk Visser",
)


class ScenarioContext:
    """Everything random about one built call: start time, caller, call ids.

    Deterministic for a given seed and start, so a failing test or a demo run can be replayed.
    """

    def __init__(
        self,
        start: datetime | None = None,
        *,
        seed: int | random.Random = 0,
        node: str = "ua9-grq-prd",
        speed: float = 1.0,
    ) -> None:
        start = start or datetime(2024, 3, 5, 9, 41, 7, tzinfo=UTC)
        if start.tzinfo is None:
            raise ValueError("ScenarioContext start must be timezone-aware")
        if speed <= 0:
            raise ValueError(f"ScenarioContext speed must be greater than 0, got {speed}")
        self.speed = speed
        self.start = start.astimezone(UTC).replace(microsecond=0)
        # Reproducible sample data, not security: a seeded PRNG is what we want.
        self.rng = seed if isinstance(seed, random.Random) else random.Random(seed)  # noqa: S311
        self._node = node
        self._epoch = int(self.start.timestamp()) - self.rng.randrange(10_000, 90_000)
        self._seq = itertools.count(self.rng.randrange(10_000_000, 99_000_000))
        self.legs: dict[Leg, str] = {}

    def call_id(self, leg: Leg = "original") -> str:
        """The provider id of one leg, e.g. ``ua9-grq-prd-1693575683.22973164`` (stable per leg)."""
        if leg not in self.legs:
            self.legs[leg] = f"{self._node}-{self._epoch}.{next(self._seq)}"
        return self.legs[leg]

    def at(self, seconds: int, *, fraction: bool = False) -> str:
        """Timestamp ``seconds`` into the call after the start; whole seconds unless ``fraction``.

        A fractional timestamp adds less than a second, so events at increasing ``seconds`` keep
        their order and events at the same ``seconds`` share the second (as the provider's do).
        With ``speed`` S the call happens S times faster: the offset (fraction included) is
        divided by S, as the provider would stamp a call that short, still truncated to the
        second when whole.
        """
        offset = timedelta(seconds=seconds)
        if fraction:
            offset += timedelta(microseconds=self.rng.randrange(1, 1_000_000))
        value = self.start + offset / self.speed
        if fraction:
            return value.isoformat(timespec="microseconds")
        return value.replace(microsecond=0).isoformat(timespec="seconds")

    def customer(self) -> Person:
        """An outside caller: Groningen, Amsterdam or mobile number, name often unknown."""
        area = self.rng.choice(("+3150", "+3120", "+316"))
        digits = 8 if area == "+316" else 7
        number = area + "".join(str(self.rng.randrange(10)) for _ in range(digits))
        return Person(self.rng.choice(CUSTOMER_NAMES), number, None, (), ())


def event(
    ctx: ScenarioContext,
    *,
    leg: Leg = "original",
    at: str,
    status: str,
    direction: str,
    caller: Payload,
    destination: Payload,
    **extra: Any,
) -> Payload:
    doc: Payload = {
        "call_id": ctx.call_id(leg),
        "timestamp": at,
        "status": status,
        "version": "v2",
        "direction": direction,
        "caller": caller,
        "destination": destination,
    }
    doc.update(extra)
    return doc


def ringing_to(number: str, *people: Person) -> Payload:
    return {"number": number, "targets": [p.wire() for p in people]}


def answered_by(number: str, person: Person) -> Payload:
    return {"number": number, "target": person.wire()}


def inbound(ctx: ScenarioContext, caller: Person) -> Callable[..., Payload]:
    """Event factory for an inbound call from ``caller`` (leg ``original`` by default)."""

    def make(**kwargs: Any) -> Payload:
        kwargs.setdefault("direction", "inbound")
        kwargs.setdefault("caller", caller.wire())
        return event(ctx, **kwargs)

    return make


def answered_call(
    ctx: ScenarioContext, line: str, answerer: Person
) -> tuple[list[Payload], Callable[..., Payload]]:
    """created, ringing, in-progress (the start of the transfer scenarios) + event factory."""
    ev = inbound(ctx, ctx.customer())
    events = [
        ev(at=ctx.at(0, fraction=True), status="created", destination={"number": line}),
        ev(at=ctx.at(0), status="ringing", destination=ringing_to(line, answerer)),
        ev(
            at=ctx.at(7, fraction=True),
            status="in-progress",
            destination=answered_by(line, answerer),
        ),
    ]
    return events, ev


def consult(ctx: ScenarioContext, by: Person, to: Person, *, answered: bool) -> list[Payload]:
    """The consult call by -> to: its own id, outbound, dialled by extension."""
    number = to.user_numbers[0]
    events = [
        event(
            ctx,
            leg="consult",
            at=ctx.at(40, fraction=True),
            status="ringing",
            direction="outbound",
            caller=by.as_internal(),
            destination=ringing_to(number, to),
        )
    ]
    if answered:
        events.append(
            event(
                ctx,
                leg="consult",
                at=ctx.at(52),
                status="in-progress",
                direction="outbound",
                caller=by.as_internal(),
                destination=answered_by(number, to),
            )
        )
    return events
