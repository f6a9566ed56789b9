"""The provider's call flows (DESIGN.md §2), one function each: the payloads the provider
POSTs for one call, in the order it sends them. Pure: no I/O."""

from __future__ import annotations

from typing import Any

from bridge.simulate.wire import (
    FATIMA,
    JOHAN,
    LUCAS,
    OUTBOUND_NUMBER,
    PIETER,
    RECEPTION,
    SALES_LINE,
    SANNE,
    SUPPORT_LINE,
    Leg,
    Payload,
    Person,
    ScenarioContext,
    answered_by,
    answered_call,
    consult,
    event,
    inbound,
    ringing_to,
)


def simple_answered(ctx: ScenarioContext) -> list[Payload]:
    ev = inbound(ctx, ctx.customer())
    return [
        ev(at=ctx.at(0, fraction=True), status="created", destination={"number": SUPPORT_LINE}),
        ev(at=ctx.at(0), status="ringing", destination=ringing_to(SUPPORT_LINE, JOHAN)),
        ev(at=ctx.at(9), status="in-progress", destination=answered_by(SUPPORT_LINE, JOHAN)),
        ev(
            at=ctx.at(185), status="ended", reason="completed", destination={"number": SUPPORT_LINE}
        ),
    ]


def no_answer(ctx: ScenarioContext) -> list[Payload]:
    ev = inbound(ctx, ctx.customer())
    return [
        ev(at=ctx.at(0), status="created", destination={"number": SUPPORT_LINE}),
        ev(at=ctx.at(0), status="ringing", destination=ringing_to(SUPPORT_LINE, JOHAN, SANNE)),
        ev(at=ctx.at(30), status="ended", reason="no-answer", destination={"number": SUPPORT_LINE}),
    ]


def caller_hangs_up(ctx: ScenarioContext) -> list[Payload]:
    ev = inbound(ctx, ctx.customer())
    return [
        ev(at=ctx.at(0, fraction=True), status="created", destination={"number": SALES_LINE}),
        ev(
            at=ctx.at(1, fraction=True),
            status="ringing",
            destination=ringing_to(SALES_LINE, PIETER),
        ),
        ev(at=ctx.at(12), status="ended", reason="cancelled", destination={"number": SALES_LINE}),
    ]


def unavailable(ctx: ScenarioContext) -> list[Payload]:
    ev = inbound(ctx, ctx.customer())
    return [ev(at=ctx.at(0), status="ended", reason="busy", destination={"number": SALES_LINE})]


def auto_answer(ctx: ScenarioContext) -> list[Payload]:
    ev = inbound(ctx, ctx.customer())
    return [
        ev(
            at=ctx.at(0, fraction=True),
            status="in-progress",
            destination=answered_by(SUPPORT_LINE, FATIMA),
        ),
        ev(at=ctx.at(64), status="ended", reason="completed", destination={"number": SUPPORT_LINE}),
    ]


def pickup(ctx: ScenarioContext) -> list[Payload]:
    ev = inbound(ctx, ctx.customer())
    return [
        ev(at=ctx.at(0), status="created", destination={"number": SUPPORT_LINE}),
        ev(at=ctx.at(0), status="ringing", destination=ringing_to(SUPPORT_LINE, JOHAN, SANNE)),
        ev(at=ctx.at(11), status="in-progress", destination=answered_by(SUPPORT_LINE, LUCAS)),
        ev(
            at=ctx.at(240), status="ended", reason="completed", destination={"number": SUPPORT_LINE}
        ),
    ]


def forwarding(ctx: ScenarioContext) -> list[Payload]:
    ev = inbound(ctx, ctx.customer())
    return [
        ev(at=ctx.at(0, fraction=True), status="created", destination={"number": SUPPORT_LINE}),
        ev(
            at=ctx.at(0, fraction=True),
            status="ringing",
            destination=ringing_to(SUPPORT_LINE, JOHAN),
        ),
        # after 20 s the dial plan also rings a colleague; Johan's phone keeps ringing
        ev(at=ctx.at(20), status="ringing", destination=ringing_to(SUPPORT_LINE, JOHAN, SANNE)),
        ev(at=ctx.at(26), status="in-progress", destination=answered_by(SUPPORT_LINE, SANNE)),
        ev(
            at=ctx.at(150), status="ended", reason="completed", destination={"number": SUPPORT_LINE}
        ),
    ]


def call_group(ctx: ScenarioContext) -> list[Payload]:
    ev = inbound(ctx, ctx.customer())
    group = (JOHAN, SANNE, PIETER, FATIMA, RECEPTION)
    return [
        ev(at=ctx.at(0), status="created", destination={"number": SALES_LINE}),
        ev(at=ctx.at(0), status="ringing", destination=ringing_to(SALES_LINE, *group)),
        ev(
            at=ctx.at(6, fraction=True),
            status="in-progress",
            destination=answered_by(SALES_LINE, PIETER),
        ),
        ev(at=ctx.at(98), status="ended", reason="completed", destination={"number": SALES_LINE}),
    ]


def warm(ctx: ScenarioContext, survivor: Leg) -> list[Payload]:
    other: Leg = "consult" if survivor == "original" else "original"
    events, ev = answered_call(ctx, SUPPORT_LINE, JOHAN)
    events += consult(ctx, JOHAN, SANNE, answered=True)
    # After the merge the survivor is the customer's call, whichever id it has.
    events += [
        # the transfer shares the whole second of Sanne answering the consult call
        ev(
            leg=survivor,
            at=ctx.at(52),
            status="warm-transfer",
            destination=answered_by(SANNE.number, SANNE),
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


def cold(ctx: ScenarioContext) -> list[Payload]:
    events, ev = answered_call(ctx, SUPPORT_LINE, JOHAN)
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
            destination=ringing_to(SUPPORT_LINE, PIETER),
        ),
        ev(
            at=ctx.at(41, fraction=True),
            status="in-progress",
            destination=answered_by(SUPPORT_LINE, PIETER),
        ),
        ev(
            at=ctx.at(210),
            status="ended",
            reason="completed",
            destination={"number": SUPPORT_LINE},
        ),
    ]
    return events


def semi_attended(ctx: ScenarioContext) -> list[Payload]:
    events, ev = answered_call(ctx, SUPPORT_LINE, JOHAN)
    events += consult(ctx, JOHAN, FATIMA, answered=False)
    # Johan transfers while Fatima's phone still rings; the consult id survives.
    events += [
        ev(
            leg="consult",
            at=ctx.at(46, fraction=True),
            status="warm-transfer",
            destination=answered_by(FATIMA.number, FATIMA),
            merged_id=ctx.call_id("original"),
            redirector=JOHAN.as_internal(),
        ),
        ev(
            leg="consult",
            at=ctx.at(49),
            status="in-progress",
            destination=answered_by(FATIMA.number, FATIMA),
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


def outbound(ctx: ScenarioContext) -> list[Payload]:
    dialled = OUTBOUND_NUMBER
    callee = Person(None, dialled, None, (), ())
    caller = JOHAN.wire()

    def ev(**kwargs: Any) -> Payload:
        return event(ctx, direction="outbound", caller=caller, **kwargs)

    return [
        ev(at=ctx.at(0, fraction=True), status="ringing", destination=ringing_to(dialled, callee)),
        ev(at=ctx.at(14), status="in-progress", destination=answered_by(dialled, callee)),
        ev(at=ctx.at(131), status="ended", reason="completed", destination={"number": dialled}),
    ]


def internal(ctx: ScenarioContext) -> list[Payload]:
    caller = SANNE.as_internal()
    dialled = LUCAS.user_numbers[0]

    def ev(**kwargs: Any) -> Payload:
        return event(ctx, direction="outbound", caller=caller, **kwargs)

    return [
        ev(at=ctx.at(0), status="ringing", destination=ringing_to(dialled, LUCAS)),
        ev(
            at=ctx.at(3, fraction=True),
            status="in-progress",
            destination=answered_by(dialled, LUCAS),
        ),
        ev(
            at=ctx.at(47, fraction=True),
            status="ended",
            reason="completed",
            destination={"number": dialled},
        ),
    ]
