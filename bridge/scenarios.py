"""The provider's call flows (DESIGN.md §2) as realistic Voys v2 notification payloads.

Pure: no I/O. Each :class:`Scenario` builds the JSON documents the provider would POST for one
call, in the order it would send them, from a :class:`ScenarioContext` (start time, seeded
randomness, fresh call ids). Each scenario also carries :class:`Expected`: the facts a correct
fold of its events must produce, written by hand from the flow (they are the specification of
the flow, never computed by :mod:`bridge.calls`).

The payloads are plain ``dict[str, Any]`` on purpose: they are wire documents (what goes into
the HTTP body), not domain objects. Shapes follow /work/shared/fixtures/voys/: ``account_number``
an integer or null, ``user_emails`` sometimes missing, redirectors named by extension, timestamps
sometimes whole seconds (several events then share one) and sometimes with microseconds.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
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
        """How :class:`bridge.events.Participant` labels this person (name, else number)."""
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

_CUSTOMER_NAMES: tuple[str | None, ...] = (
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
    ) -> None:
        start = start or datetime(2024, 3, 5, 9, 41, 7, tzinfo=UTC)
        if start.tzinfo is None:
            raise ValueError("ScenarioContext start must be timezone-aware")
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
        """Timestamp ``seconds`` after the start; whole seconds unless ``fraction``.

        A fractional timestamp adds less than a second, so events at increasing ``seconds`` keep
        their order and events at the same ``seconds`` share the second (as the provider's do).
        """
        value = self.start + timedelta(seconds=seconds)
        if fraction:
            value += timedelta(microseconds=self.rng.randrange(1, 1_000_000))
            return value.isoformat()
        return value.isoformat(timespec="seconds")

    def customer(self) -> Person:
        """An outside caller: Groningen, Amsterdam or mobile number, name often unknown."""
        area = self.rng.choice(("+3150", "+3120", "+316"))
        digits = 8 if area == "+316" else 7
        number = area + "".join(str(self.rng.randrange(10)) for _ in range(digits))
        return Person(self.rng.choice(_CUSTOMER_NAMES), number, None, (), ())


@dataclass(frozen=True, kw_only=True)
class Expected:
    """What a correct fold of the scenario's events says (hand-written from the flow)."""

    answered_by: str | None  # label of the first answerer on the customer's call
    rung: tuple[str, ...]  # labels, in order of first ringing, without repeats
    connected: str | None  # label of whom the caller talks to last
    answered: bool = True
    missed: bool = False
    end_reason: str = "completed"
    direction: Literal["inbound", "outbound"] = "inbound"
    picked_up: bool = False
    transfers: tuple[Literal["warm", "cold", "blind"], ...] = ()
    consult_steps: int = 0  # steps that happened on a consult call before the merge
    ended_leg: Leg = "original"  # the id that carries `ended` (the survivor of a transfer)
    legs: tuple[Leg, ...] = ("original",)
    story_leg: Leg = "original"  # the id the story is known by: the customer's call


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    build: Callable[[ScenarioContext], list[Payload]] = field(repr=False)
    expected: Expected


def _event(
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


def _ringing(number: str, *people: Person) -> Payload:
    return {"number": number, "targets": [p.wire() for p in people]}


def _answered(number: str, person: Person) -> Payload:
    return {"number": number, "target": person.wire()}


def _inbound(ctx: ScenarioContext, caller: Person) -> Callable[..., Payload]:
    """Event factory for an inbound call from ``caller`` (leg ``original`` by default)."""

    def make(**kwargs: Any) -> Payload:
        kwargs.setdefault("direction", "inbound")
        kwargs.setdefault("caller", caller.wire())
        return _event(ctx, **kwargs)

    return make


def _answered_call(
    ctx: ScenarioContext, line: str, answerer: Person
) -> tuple[list[Payload], Callable[..., Payload]]:
    """created, ringing, in-progress (the start of the transfer scenarios) + event factory."""
    ev = _inbound(ctx, ctx.customer())
    events = [
        ev(at=ctx.at(0, fraction=True), status="created", destination={"number": line}),
        ev(at=ctx.at(0), status="ringing", destination=_ringing(line, answerer)),
        ev(
            at=ctx.at(7, fraction=True), status="in-progress", destination=_answered(line, answerer)
        ),
    ]
    return events, ev


def _consult(ctx: ScenarioContext, by: Person, to: Person, *, answered: bool) -> list[Payload]:
    """The consult call by -> to: its own id, outbound, dialled by extension."""
    number = to.user_numbers[0]
    events = [
        _event(
            ctx,
            leg="consult",
            at=ctx.at(40, fraction=True),
            status="ringing",
            direction="outbound",
            caller=by.as_internal(),
            destination=_ringing(number, to),
        )
    ]
    if answered:
        events.append(
            _event(
                ctx,
                leg="consult",
                at=ctx.at(52),
                status="in-progress",
                direction="outbound",
                caller=by.as_internal(),
                destination=_answered(number, to),
            )
        )
    return events


def _simple_answered(ctx: ScenarioContext) -> list[Payload]:
    ev = _inbound(ctx, ctx.customer())
    return [
        ev(at=ctx.at(0, fraction=True), status="created", destination={"number": SUPPORT_LINE}),
        ev(at=ctx.at(0), status="ringing", destination=_ringing(SUPPORT_LINE, JOHAN)),
        ev(at=ctx.at(9), status="in-progress", destination=_answered(SUPPORT_LINE, JOHAN)),
        ev(
            at=ctx.at(185), status="ended", reason="completed", destination={"number": SUPPORT_LINE}
        ),
    ]


def _no_answer(ctx: ScenarioContext) -> list[Payload]:
    ev = _inbound(ctx, ctx.customer())
    return [
        ev(at=ctx.at(0), status="created", destination={"number": SUPPORT_LINE}),
        ev(at=ctx.at(0), status="ringing", destination=_ringing(SUPPORT_LINE, JOHAN, SANNE)),
        ev(at=ctx.at(30), status="ended", reason="no-answer", destination={"number": SUPPORT_LINE}),
    ]


def _caller_hangs_up(ctx: ScenarioContext) -> list[Payload]:
    ev = _inbound(ctx, ctx.customer())
    return [
        ev(at=ctx.at(0, fraction=True), status="created", destination={"number": SALES_LINE}),
        ev(at=ctx.at(1, fraction=True), status="ringing", destination=_ringing(SALES_LINE, PIETER)),
        ev(at=ctx.at(12), status="ended", reason="cancelled", destination={"number": SALES_LINE}),
    ]


def _unavailable(ctx: ScenarioContext) -> list[Payload]:
    ev = _inbound(ctx, ctx.customer())
    return [ev(at=ctx.at(0), status="ended", reason="busy", destination={"number": SALES_LINE})]


def _auto_answer(ctx: ScenarioContext) -> list[Payload]:
    ev = _inbound(ctx, ctx.customer())
    return [
        ev(
            at=ctx.at(0, fraction=True),
            status="in-progress",
            destination=_answered(SUPPORT_LINE, FATIMA),
        ),
        ev(at=ctx.at(64), status="ended", reason="completed", destination={"number": SUPPORT_LINE}),
    ]


def _pickup(ctx: ScenarioContext) -> list[Payload]:
    ev = _inbound(ctx, ctx.customer())
    return [
        ev(at=ctx.at(0), status="created", destination={"number": SUPPORT_LINE}),
        ev(at=ctx.at(0), status="ringing", destination=_ringing(SUPPORT_LINE, JOHAN, SANNE)),
        ev(at=ctx.at(11), status="in-progress", destination=_answered(SUPPORT_LINE, LUCAS)),
        ev(
            at=ctx.at(240), status="ended", reason="completed", destination={"number": SUPPORT_LINE}
        ),
    ]


def _forwarding(ctx: ScenarioContext) -> list[Payload]:
    ev = _inbound(ctx, ctx.customer())
    return [
        ev(at=ctx.at(0, fraction=True), status="created", destination={"number": SUPPORT_LINE}),
        ev(
            at=ctx.at(0, fraction=True), status="ringing", destination=_ringing(SUPPORT_LINE, JOHAN)
        ),
        # after 20 s the dial plan also rings a colleague; Johan's phone keeps ringing
        ev(at=ctx.at(20), status="ringing", destination=_ringing(SUPPORT_LINE, JOHAN, SANNE)),
        ev(at=ctx.at(26), status="in-progress", destination=_answered(SUPPORT_LINE, SANNE)),
        ev(
            at=ctx.at(150), status="ended", reason="completed", destination={"number": SUPPORT_LINE}
        ),
    ]


def _call_group(ctx: ScenarioContext) -> list[Payload]:
    ev = _inbound(ctx, ctx.customer())
    group = (JOHAN, SANNE, PIETER, FATIMA, RECEPTION)
    return [
        ev(at=ctx.at(0), status="created", destination={"number": SALES_LINE}),
        ev(at=ctx.at(0), status="ringing", destination=_ringing(SALES_LINE, *group)),
        ev(
            at=ctx.at(6, fraction=True),
            status="in-progress",
            destination=_answered(SALES_LINE, PIETER),
        ),
        ev(at=ctx.at(98), status="ended", reason="completed", destination={"number": SALES_LINE}),
    ]


def _warm(ctx: ScenarioContext, survivor: Leg) -> list[Payload]:
    other: Leg = "consult" if survivor == "original" else "original"
    events, ev = _answered_call(ctx, SUPPORT_LINE, JOHAN)
    events += _consult(ctx, JOHAN, SANNE, answered=True)
    # After the merge the survivor is the customer's call, whichever id it has.
    events += [
        # the transfer shares the whole second of Sanne answering the consult call
        ev(
            leg=survivor,
            at=ctx.at(52),
            status="warm-transfer",
            destination=_answered(SANNE.number, SANNE),
            merged_id=ctx.call_id(other),
            redirector=JOHAN.as_internal(),
        ),
        ev(
            leg=survivor,
            at=ctx.at(300, fraction=True),
            status="ended",
            reason="completed",
            destination={"number": SUPPORT_LINE},
        ),
    ]
    return events


def _cold(ctx: ScenarioContext) -> list[Payload]:
    events, ev = _answered_call(ctx, SUPPORT_LINE, JOHAN)
    transfer_leg = ctx.call_id("consult")  # the blind leg: named at the transfer, never used
    events += [
        ev(
            at=ctx.at(35),
            status="cold-transfer",
            destination={"number": PIETER.number, "targets": [PIETER.wire()]},
            merged_id=transfer_leg,
            redirector=JOHAN.as_internal(),
        ),
        ev(
            at=ctx.at(35, fraction=True),
            status="ringing",
            destination=_ringing(SUPPORT_LINE, PIETER),
        ),
        ev(
            at=ctx.at(41, fraction=True),
            status="in-progress",
            destination=_answered(SUPPORT_LINE, PIETER),
        ),
        ev(
            at=ctx.at(210),
            status="ended",
            reason="completed",
            destination={"number": SUPPORT_LINE},
        ),
    ]
    return events


def _semi_attended(ctx: ScenarioContext) -> list[Payload]:
    events, ev = _answered_call(ctx, SUPPORT_LINE, JOHAN)
    events += _consult(ctx, JOHAN, FATIMA, answered=False)
    # Johan transfers while Fatima's phone still rings; the consult id survives.
    events += [
        ev(
            leg="consult",
            at=ctx.at(46, fraction=True),
            status="warm-transfer",
            destination=_answered(FATIMA.number, FATIMA),
            merged_id=ctx.call_id("original"),
            redirector=JOHAN.as_internal(),
        ),
        ev(
            leg="consult",
            at=ctx.at(49),
            status="in-progress",
            destination=_answered(FATIMA.number, FATIMA),
        ),
        ev(
            leg="consult",
            at=ctx.at(190),
            status="ended",
            reason="completed",
            destination={"number": FATIMA.number},
        ),
    ]
    return events


def _outbound(ctx: ScenarioContext) -> list[Payload]:
    dialled = OUTBOUND_NUMBER
    callee = Person(None, dialled, None, (), ())
    caller = JOHAN.wire()

    def ev(**kwargs: Any) -> Payload:
        return _event(ctx, direction="outbound", caller=caller, **kwargs)

    return [
        ev(at=ctx.at(0, fraction=True), status="ringing", destination=_ringing(dialled, callee)),
        ev(at=ctx.at(14), status="in-progress", destination=_answered(dialled, callee)),
        ev(at=ctx.at(131), status="ended", reason="completed", destination={"number": dialled}),
    ]


def _internal(ctx: ScenarioContext) -> list[Payload]:
    caller = SANNE.as_internal()
    dialled = LUCAS.user_numbers[0]

    def ev(**kwargs: Any) -> Payload:
        return _event(ctx, direction="outbound", caller=caller, **kwargs)

    return [
        ev(at=ctx.at(0), status="ringing", destination=_ringing(dialled, LUCAS)),
        ev(
            at=ctx.at(3, fraction=True), status="in-progress", destination=_answered(dialled, LUCAS)
        ),
        ev(
            at=ctx.at(47, fraction=True),
            status="ended",
            reason="completed",
            destination={"number": dialled},
        ),
    ]


_BOTH: tuple[Leg, ...] = ("original", "consult")
J, S, P, F, L = JOHAN.label, SANNE.label, PIETER.label, FATIMA.label, LUCAS.label


def _missed(rung: tuple[str, ...], reason: str) -> Expected:
    return Expected(
        answered=False, missed=True, answered_by=None, connected=None, rung=rung, end_reason=reason
    )


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "answered",
            "inbound call rings Johan, who answers; caller hangs up after three minutes",
            _simple_answered,
            Expected(answered_by=J, rung=(J,), connected=J),
        ),
        Scenario(
            "no-answer",
            "inbound call rings Johan and Sanne for 30 s; nobody answers",
            _no_answer,
            _missed((J, S), "no-answer"),
        ),
        Scenario(
            "caller-hangs-up",
            "inbound call rings Pieter; the caller gives up after 12 s",
            _caller_hangs_up,
            _missed((P,), "cancelled"),
        ),
        Scenario(
            "unavailable",
            "callee unavailable: the only notification is `ended` with reason busy",
            _unavailable,
            _missed((), "busy"),
        ),
        Scenario(
            "auto-answer",
            "Fatima's phone answers automatically: the call starts at `in-progress`",
            _auto_answer,
            Expected(answered_by=F, rung=(), connected=F),
        ),
        Scenario(
            "pickup",
            "rings Johan and Sanne; Lucas picks it up from his own phone (pickup group)",
            _pickup,
            Expected(answered_by=L, rung=(J, S), connected=L, picked_up=True),
        ),
        Scenario(
            "forwarding",
            "rings Johan; after 20 s a second `ringing` adds Sanne, who answers",
            _forwarding,
            Expected(answered_by=S, rung=(J, S), connected=S),
        ),
        Scenario(
            "call-group",
            "sales line rings a group of five (one shared phone without a name); Pieter answers",
            _call_group,
            Expected(answered_by=P, rung=(J, S, P, F, RECEPTION.number), connected=P),
        ),
        Scenario(
            "warm-transfer",
            "attended transfer: Johan consults Sanne on a second call, then transfers; "
            "the customer's call id survives",
            lambda ctx: _warm(ctx, "original"),
            Expected(
                answered_by=J,
                rung=(J, S),
                connected=S,
                transfers=("warm",),
                consult_steps=2,
                legs=_BOTH,
            ),
        ),
        Scenario(
            "warm-transfer-consult-survives",
            "attended transfer where the consult call's id survives: the transfer and `ended` "
            "arrive on the consult id",
            lambda ctx: _warm(ctx, "consult"),
            Expected(
                answered_by=J,
                rung=(J, S),
                connected=S,
                transfers=("warm",),
                consult_steps=2,
                ended_leg="consult",
                legs=_BOTH,
            ),
        ),
        Scenario(
            "cold-transfer",
            "blind transfer: Johan answers and transfers straight to Pieter, whose phone rings",
            _cold,
            Expected(answered_by=J, rung=(J, P), connected=P, transfers=("cold",), legs=_BOTH),
        ),
        Scenario(
            "semi-attended-transfer",
            "Johan calls Fatima to consult but transfers while her phone still rings; she answers "
            "on the consult id, which survives",
            _semi_attended,
            Expected(
                answered_by=J,
                rung=(J, F),
                connected=F,
                transfers=("warm",),
                consult_steps=1,
                ended_leg="consult",
                legs=_BOTH,
            ),
        ),
        Scenario(
            "outbound",
            f"Johan calls a customer's mobile, dialled as {OUTBOUND_NUMBER} (not E.164)",
            _outbound,
            # an outside number has no name: it is labelled by the number as dialled
            Expected(
                answered_by=OUTBOUND_NUMBER,
                rung=(OUTBOUND_NUMBER,),
                connected=OUTBOUND_NUMBER,
                direction="outbound",
            ),
        ),
        Scenario(
            "internal",
            "colleague to colleague: Sanne dials Lucas's extension 205 (direction outbound)",
            _internal,
            Expected(answered_by=L, rung=(L,), connected=L, direction="outbound"),
        ),
    )
}


def build(name: str, ctx: ScenarioContext) -> list[Payload]:
    """The payloads of scenario ``name`` in the order the provider sends them."""
    try:
        scenario = SCENARIOS[name]
    except KeyError:
        raise KeyError(
            f"unknown scenario {name!r}; choose one of: {', '.join(SCENARIOS)}"
        ) from None
    return scenario.build(ctx)
