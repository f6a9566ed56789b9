"""From a call and its routing decision to the chat messages it should have (pure).

``plan(call, tz, targets)`` lists, per destination and platform, the slots of
:mod:`bridge.core.slots` with their render input (:data:`Content`), encoded so the store
can tell whether anything a person would see has changed. Rendering to Block Kit or an
Adaptive Card happens at send time (it needs the platform's user ids for mentions).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Final

import msgspec

from bridge.core import cases
from bridge.core.calls import Call, Step, step_identity
from bridge.core.cases import Case
from bridge.core.digest import DigestContent
from bridge.core.mentions import mentions_on
from bridge.core.routing import Delivery, Target
from bridge.core.slots import Decided, Planned

DECIDED: Final = "(decided earlier)"  # the route name of a delivery taken from the store


class RootContent(msgspec.Struct, frozen=True, tag="root"):
    call: Call
    tz: str


class ReplyContent(msgspec.Struct, frozen=True, tag="reply"):
    step: Step
    tz: str
    context: Call  # only the facts this step's sentence needs (see reply_context)
    again: bool = False  # an earlier ringing of the customer's call was already told


class MissedContent(msgspec.Struct, frozen=True, tag="missed"):
    call: Call
    tz: str
    mentions: tuple[str, ...] = ()
    case: Case | None = None  # the callback case this alert shows (its first missed call)


class CaseStepContent(msgspec.Struct, frozen=True, tag="case_step"):
    """A reply in a case alert's thread: one step of the case (a new miss, an attempt, a
    claim or release, the escalation, the closing). Only what the sentence needs, so the
    reply does not change as the case goes on."""

    step: cases.Step
    case_id: str
    caller: str  # how the customer is shown
    opened_at: datetime  # the first miss (for "30 min after the first miss")
    tz: str
    number: str = ""  # the customer's number (E.164), to call back from the reply alone


class SummaryContent(msgspec.Struct, frozen=True, tag="summary"):
    call: Call
    tz: str
    mentions: tuple[str, ...] = ()


Content = (
    RootContent | ReplyContent | MissedContent | SummaryContent | CaseStepContent | DigestContent
)

_encoder: Final = msgspec.json.Encoder(order="deterministic")
_decoder: Final = msgspec.json.Decoder(Content)


def encode(content: Content) -> bytes:
    return _encoder.encode(content)


def decode(data: bytes) -> Content:
    content: Content = _decoder.decode(data)
    return content


def visible(call: Call) -> Call:
    """The call without bookkeeping that nobody sees (so it does not bump versions)."""
    return msgspec.structs.replace(call, event_count=0, last_event_at=call.started_at)


def reply_context(call: Call, step: Step) -> Call:
    """The call reduced to what the step's sentence uses, so the reply's content (and so its
    version) does not change as the call goes on: answer facts only for an answer step,
    end facts only for the end step."""
    blank = msgspec.structs.replace(
        visible(call), rung=(), transfers=(), steps=(), connected=None, call_ids=()
    )
    if step.kind != "ended":
        blank = msgspec.structs.replace(blank, ended_at=None, end_reason=None)
    if step.kind not in ("answered", "ended"):
        blank = msgspec.structs.replace(blank, answered_by=None, answered_at=None, picked_up=False)
    return blank


def reply_slot(step: Step) -> str:
    """A slot id that depends only on the step's identity (who and what, when; not how the
    provider spelled names), so late steps never shift earlier ones and two spellings of one
    step share one reply."""
    return "reply:" + hashlib.sha256(_encoder.encode(step_identity(step))).hexdigest()[:20]


def plan_decided(call: Call, tz: str, decided: list[Decided]) -> list[Planned]:
    """The slots of a call whose routing was decided before it ended: the stored decisions
    (not the rules in force, which a reload may have changed) say where it goes."""
    targets: list[Target] = []
    for d in decided:
        if d.kind == "missed" and not call.missed:
            continue  # retracted: it was answered after all
        mentions: tuple[str, ...] = ()
        if d.content is not None:
            content = decode(d.content)
            if isinstance(content, MissedContent | SummaryContent):
                mentions = content.mentions
        delivery = Delivery(d.destination, d.kind, DECIDED, mentions)
        targets.append(Target(delivery, d.platform, d.channel))
    return plan(call, tz, targets)


def plan(call: Call, tz: str, targets: list[Target], *, case: Case | None = None) -> list[Planned]:
    """The slots of a call for its routing targets (``tz``: the rules' time zone).

    ``case``: the callback case whose alert this call carries (it is the case's first missed
    call): its missed alerts show the case, and their threads tell the case's steps."""
    shown = visible(call)
    out: list[Planned] = []
    for target in targets:
        out.extend(_slots(target.delivery, target.platform, target.channel, shown, tz, case))
    return out


def _slots(
    delivery: Delivery, platform: str, channel: str, call: Call, tz: str, case: Case | None
) -> list[Planned]:
    def slot(name: str, content: Content, order: int = 0, *, settles: bool = False) -> Planned:
        return Planned(
            destination=delivery.destination,
            platform=platform,
            channel=channel,
            slot=name,
            kind=delivery.kind,
            order=order,
            content=encode(content),
            final=call.ended,
            settles=settles,
        )

    mentions = mentions_on(platform, delivery.mentions)
    if delivery.kind == "missed":
        case = None if case is None else case_on(platform, case)
        alert = MissedContent(call=call, tz=tz, mentions=mentions, case=case)
        slots = [slot("missed", alert, settles=True)]
        if case is not None:
            for n, told in enumerate(case.steps, start=1):
                line = CaseStepContent(
                    step=told,
                    case_id=case.id,
                    caller=case.caller,
                    opened_at=case.opened_at,
                    tz=tz,
                    number=case.key.number,
                )
                slots.append(slot(cases.step_slot(case, told), line, order=n))
        return _first_per_slot(slots)
    if delivery.kind == "summary":
        return [slot("summary", SummaryContent(call=call, tz=tz, mentions=mentions))]
    slots = [slot("root", RootContent(call=call, tz=tz))]
    rang = False
    for n, step in enumerate(call.steps, start=1):
        content = ReplyContent(step=step, tz=tz, context=reply_context(call, step), again=rang)
        # "Missed: ..." waits, as the alert does, for an answer that may still come late.
        told_missed = step.kind == "ended" and call.missed
        slots.append(slot(reply_slot(step), content, order=n, settles=told_missed))
        rang = rang or (step.kind == "ringing" and not step.consult)
    return _first_per_slot(slots)


def case_on(platform: str, case: Case) -> Case:
    """``case`` as ``platform`` shows it: its escalation mentions only whom it can."""
    first = case.first
    steps = tuple(
        msgspec.structs.replace(s, mentions=mentions_on(platform, s.mentions)) if s.mentions else s
        for s in case.steps
    )
    escalate_to = mentions_on(platform, first.escalate_to)
    if escalate_to == first.escalate_to and steps == case.steps:
        return case
    misses = (msgspec.structs.replace(first, escalate_to=escalate_to), *case.misses[1:])
    return msgspec.structs.replace(case, misses=misses, steps=steps)


def _first_per_slot(slots: list[Planned]) -> list[Planned]:
    """One entry per slot (the fold keeps steps distinct; this keeps the store's key unique
    whatever a future fold change does: two rows for one slot would fail every write)."""
    seen: set[str] = set()
    out: list[Planned] = []
    for planned in slots:
        if planned.slot not in seen:
            seen.add(planned.slot)
            out.append(planned)
    return out
