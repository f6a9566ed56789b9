"""The provider's call flows (DESIGN.md §2) as realistic Voys v2 notification payloads.

Pure: no I/O. Each :class:`Scenario` builds the JSON documents the provider would POST for one
call, in the order it would send them, from a :class:`ScenarioContext` (start time, seeded
randomness, fresh call ids). Each scenario also carries :class:`Expected`: the facts a correct
fold of its events must produce, written by hand from the flow (they are the specification of
the flow, never computed by :mod:`bridge.core.calls`).

The payloads are plain ``dict[str, Any]`` on purpose: they are wire documents (what goes into
the HTTP body), not domain objects. Shapes follow tests/fixtures/voys/: ``account_number``
an integer or null, ``user_emails`` sometimes missing, redirectors named by extension, timestamps
sometimes whole seconds (several events then share one) and sometimes with microseconds.

Modules: :mod:`bridge.simulate.wire` (lines, people, a call's context, payload builders),
:mod:`bridge.simulate.flows` (one function per flow); this one is the catalogue.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from bridge.simulate import flows
from bridge.simulate.wire import (
    FATIMA,
    JOHAN,
    LUCAS,
    OUTBOUND_NUMBER,
    PIETER,
    RECEPTION,
    SANNE,
    Leg,
    Payload,
    Person,
    ScenarioContext,
)

__all__ = [
    "SCENARIOS",
    "Expected",
    "Leg",
    "Payload",
    "Person",
    "Scenario",
    "ScenarioContext",
    "build",
]


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
            flows.simple_answered,
            Expected(answered_by=J, rung=(J,), connected=J),
        ),
        Scenario(
            "no-answer",
            "inbound call rings Johan and Sanne for 30 s; nobody answers",
            flows.no_answer,
            _missed((J, S), "no-answer"),
        ),
        Scenario(
            "caller-hangs-up",
            "inbound call rings Pieter; the caller gives up after 12 s",
            flows.caller_hangs_up,
            _missed((P,), "cancelled"),
        ),
        Scenario(
            "unavailable",
            "callee unavailable: the only notification is `ended` with reason busy",
            flows.unavailable,
            _missed((), "busy"),
        ),
        Scenario(
            "auto-answer",
            "Fatima's phone answers automatically: the call starts at `in-progress`",
            flows.auto_answer,
            Expected(answered_by=F, rung=(), connected=F),
        ),
        Scenario(
            "pickup",
            "rings Johan and Sanne; Lucas picks it up from his own phone (pickup group)",
            flows.pickup,
            Expected(answered_by=L, rung=(J, S), connected=L, picked_up=True),
        ),
        Scenario(
            "forwarding",
            "rings Johan; after 20 s a second `ringing` adds Sanne, who answers",
            flows.forwarding,
            Expected(answered_by=S, rung=(J, S), connected=S),
        ),
        Scenario(
            "call-group",
            "sales line rings a group of five (one shared phone without a name); Pieter answers",
            flows.call_group,
            Expected(answered_by=P, rung=(J, S, P, F, RECEPTION.number), connected=P),
        ),
        Scenario(
            "warm-transfer",
            "attended transfer: Johan consults Sanne on a second call, then transfers; "
            "the customer's call id survives",
            lambda ctx: flows.warm(ctx, "original"),
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
            lambda ctx: flows.warm(ctx, "consult"),
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
            flows.cold,
            Expected(answered_by=J, rung=(J, P), connected=P, transfers=("cold",), legs=_BOTH),
        ),
        Scenario(
            "semi-attended-transfer",
            "Johan calls Fatima to consult but transfers while her phone still rings; she answers "
            "on the consult id, which survives",
            flows.semi_attended,
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
            flows.outbound,
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
            flows.internal,
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
