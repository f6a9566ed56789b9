"""A call as people should read it, for every chat platform (pure).

:func:`view` turns a folded :class:`~bridge.core.calls.Call` into a :class:`CallView`: status
emoji and word, the caller with a formatted number, who is being rung, who answered, who is
on the line now, the transfers, the end reason in words, durations, local times in the rules'
time zone, and one :class:`StepView` per step of the story.

Texts that mention people are *phrases*: tuples of plain strings and :class:`PersonView`
items. A renderer turns a plain string into text (escaping it for its platform) and a person
into the platform mention when one is known, otherwise into the escaped label. Nothing here
contains platform markup except the mention strings the caller passed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Final, Literal

from bridge.core.calls import Call, Step, StepKind, Transfer
from bridge.core.events import Direction, Participant, TransferKind
from bridge.render.clock import shown_time
from bridge.render.phone import format_number
from bridge.render.text import duration

Status = Literal[
    "new", "ringing", "answered", "transferred", "missed", "unanswered", "ended", "stale"
]

STATUS_EMOJI: Final[Mapping[Status, str]] = {
    "new": "📞",
    "ringing": "🔔",
    "answered": "🟢",
    "transferred": "🔀",
    "missed": "📵",
    "unanswered": "🔕",  # our outbound call nobody picked up: not a customer missed
    "ended": "✅",
    "stale": "❔",
}
STATUS_TEXT: Final[Mapping[Status, str]] = {
    "new": "New call",
    "ringing": "Ringing",
    "answered": "Answered",
    "transferred": "Transferred",
    "missed": "Missed",
    "unanswered": "No answer",
    "ended": "Ended",
    "stale": "Closed (no end received)",
}
END_REASON_TEXT: Final[Mapping[str, str]] = {
    "completed": "completed",
    "busy": "line busy",
    "no-answer": "not answered",
    "cancelled": "caller hung up",
    "abandon": "caller abandoned the call",
    "failed": "call failed",
    "stale": "no end received",
}
TRANSFER_TEXT: Final[Mapping[TransferKind, str]] = {
    "warm": "warm/attended",
    "cold": "cold/blind",
    "blind": "blind",
}


@dataclass(frozen=True, slots=True)
class PersonView:
    """Someone on the call. ``mention`` is the platform mention when one of their e-mail
    addresses was in the ``mentions`` map (``email`` is that address), else None."""

    label: str  # the name as given (e.g. "Johan | Voys"), else the formatted number
    number: str  # formatted (see bridge.render.phone); "" when the provider sent none
    name: str | None = None
    mention: str | None = None
    email: str | None = None

    @property
    def with_number(self) -> str:
        """``Name (+31 50 800 9000)``, or just the label when there is no separate number."""
        if self.name and self.number and self.number != self.name:
            return f"{self.name} ({self.number})"
        return self.label


Piece = str | PersonView
Phrase = tuple[Piece, ...]


def plain(phrase: Phrase) -> str:
    """A phrase as plain text, people by label (for logs, fallbacks and tests)."""
    return "".join(p if isinstance(p, str) else p.label for p in phrase)


@dataclass(frozen=True, slots=True)
class TransferView:
    at: str  # local HH:MM:SS
    kind: TransferKind
    kind_text: str  # "warm/attended", "cold/blind", "blind"
    by: PersonView | None
    to: tuple[PersonView, ...]

    @property
    def phrase(self) -> Phrase:
        """``B → C (warm/attended)``."""
        by: Phrase = (self.by,) if self.by else ("someone",)
        return (*by, " → ", *_join(self.to, empty="nobody"), f" ({self.kind_text})")


@dataclass(frozen=True, slots=True)
class StepView:
    """One line of the story (a thread reply)."""

    at: str  # local HH:MM:SS
    kind: StepKind
    phrase: Phrase  # a short sentence
    consult: bool  # happened on the consult call of an attended transfer
    call_id: str

    @property
    def text(self) -> str:
        return plain(self.phrase)


@dataclass(frozen=True, slots=True)
class CallView:
    call_id: str
    status: Status
    emoji: str
    status_text: str
    direction: Direction
    caller: PersonView
    line: str  # the dialled number, formatted
    rung: tuple[PersonView, ...]  # everyone whose phone rang, in order
    answered_by: PersonView | None
    picked_up: bool  # answered by someone who was not rung (pickup group)
    connected: PersonView | None  # who the caller talks to now (or last)
    transfers: tuple[TransferView, ...]
    ended: bool
    missed: bool
    end_reason: str | None  # the provider's reason ("stale" when closed without `ended`)
    end_text: str | None  # the reason in words
    ring_time: str | None  # "1m05s"; None while ringing and when no phone rang
    talk_time: str | None  # None until ended, and for a stale close
    started_at: datetime  # local, in the rules' time zone
    started: str  # "HH:MM", or "YYYY-MM-DD HH:MM" when the date is needed
    steps: tuple[StepView, ...]

    @property
    def facts(self) -> str:
        """``Inbound · 10:41 · rang 9s · talked 4m51s`` (plain text; escape it to render)."""
        facts = [self.direction.capitalize(), self.started]
        if self.ring_time is not None:
            facts.append(f"rang {self.ring_time}")
        if self.talk_time is not None:
            facts.append(f"talked {self.talk_time}")
        if self.end_text is not None and self.end_reason != "completed":
            facts.append(self.end_text)
        return " · ".join(facts)

    @property
    def who(self) -> Phrase:
        """Who the call is about right now, as one phrase."""
        if self.missed:
            if self.rung:
                return ("Rang ", *_join(self.rung))
            return ("Nobody's phone rang",)
        if self.answered_by is not None:
            pickup = " (picked up)" if self.picked_up else ""
            who: Phrase = ("Answered by ", self.answered_by, pickup)
            if self.connected is not None and self.connected != self.answered_by:
                verb = "talked to " if self.ended else "now talking to "
                who = (*who, ", ", verb, self.connected)
            return who
        if self.rung:
            return ("Ringing ", *_join(self.rung))
        return ("Waiting for a phone to ring",)


def view(
    call: Call,
    tz: tzinfo,
    *,
    mentions: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> CallView:
    """The people-facing view of ``call`` with times in ``tz``.

    ``mentions`` maps e-mail addresses (any case) to platform mention strings. The start time
    carries its date when the call spans midnight or, given ``now``, did not start today.
    """
    people = _People({k.casefold(): v for k, v in (mentions or {}).items()})
    status = _status(call)
    started_at = call.started_at.astimezone(tz)
    answered_by = people.maybe(call.answered_by)
    return CallView(
        call_id=call.call_id,
        status=status,
        emoji=STATUS_EMOJI[status],
        status_text=STATUS_TEXT[status],
        direction=call.direction,
        caller=people.of(call.caller),
        line=format_number(call.dialled),
        rung=people.all(call.rung),
        answered_by=answered_by,
        picked_up=call.picked_up,
        connected=people.maybe(call.connected),
        transfers=tuple(_transfer(t, call, tz, people) for t in call.transfers),
        ended=call.ended,
        missed=call.missed,
        end_reason=call.end_reason,
        end_text=_reason_text(call.end_reason) if call.ended else None,
        ring_time=_ring_time(call),
        talk_time=_talk_time(call),
        started_at=started_at,
        started=_started(call, tz, now),
        steps=_steps(call, tz, people),
    )


def step_view(
    step: Step,
    call: Call,
    tz: tzinfo,
    *,
    again: bool,
    mentions: Mapping[str, str] | None = None,
) -> StepView:
    """One step on its own (a thread reply); ``again``: an earlier ringing was told."""
    people = _People({k.casefold(): v for k, v in (mentions or {}).items()})
    return _step(step, call, tz, people, again=again)


class _People:
    """Participants -> :class:`PersonView`, with mentions looked up by e-mail."""

    def __init__(self, mentions: Mapping[str, str]) -> None:
        self._mentions = mentions

    def of(self, p: Participant) -> PersonView:
        number = format_number(p.number)
        name = (p.name or "").strip() or None  # kept as given, but not blank
        mention, email = None, None
        for address in p.user_emails:
            found = self._mentions.get(address.casefold())
            if found:
                mention, email = found, address
                break
        return PersonView(
            label=name or number or "unknown",
            number=number,
            name=name,
            mention=mention,
            email=email,
        )

    def maybe(self, p: Participant | None) -> PersonView | None:
        return None if p is None else self.of(p)

    def all(self, ps: tuple[Participant, ...]) -> tuple[PersonView, ...]:
        return tuple(self.of(p) for p in ps)


def _transfer(t: Transfer, call: Call, tz: tzinfo, people: _People) -> TransferView:
    return TransferView(
        at=shown_time(t.at, tz, call.started_at, seconds=True),
        kind=t.kind,
        kind_text=TRANSFER_TEXT[t.kind],
        by=people.maybe(t.by),
        to=people.all(t.to),
    )


def _step(step: Step, call: Call, tz: tzinfo, people: _People, *, again: bool) -> StepView:
    return StepView(
        at=shown_time(step.at, tz, call.started_at, seconds=True),
        kind=step.kind,
        phrase=_sentence(step, call, people, again=again),
        consult=step.consult,
        call_id=step.call_id,
    )


def _steps(call: Call, tz: tzinfo, people: _People) -> tuple[StepView, ...]:
    out: list[StepView] = []
    rang = False  # a ringing step on the customer's call was already told
    for step in call.steps:
        out.append(_step(step, call, tz, people, again=rang))
        rang = rang or (step.kind == "ringing" and not step.consult)
    return tuple(out)


def _sentence(step: Step, call: Call, people: _People, *, again: bool) -> Phrase:
    who = _join(people.all(step.people))
    consult: Phrase = ("Consultation: ",) if step.consult else ()
    match step.kind:
        case "created":
            return ("Call came in on ", format_number(call.dialled))
        case "ringing":
            verb = "also ringing " if again and not step.consult else "ringing "
            if not consult:
                verb = verb.capitalize()
            return (*consult, verb, *who)
        case "answered":
            if step.consult:
                return (*consult, *who, " answered")
            first = call.answered_by
            pickup = (
                call.picked_up
                and first is not None
                and step.people[:1] == (first,)
                and step.at == call.answered_at
            )
            return ("Picked up by " if pickup else "Answered by ", *who)
        case "transfer":
            kind = TRANSFER_TEXT[step.transfer_kind or "blind"]
            if step.by is None:
                return ("Transferred to ", *who, f" ({kind})")
            return (people.of(step.by), " transferred the call to ", *who, f" ({kind})")
        case "ended":
            return (_ending(step, call),)


def _ending(step: Step, call: Call) -> str:
    if step.reason == "stale":
        return "Closed: no end received"
    words = _reason_text(step.reason)
    if not call.answered:
        rang = _ring_time(call)
        if call.direction == "outbound":  # a call out nobody picked up: no customer missed
            head = "No answer" if step.reason in (None, "no-answer") else f"No answer: {words}"
        else:
            head = f"Missed: {words}"
        return f"{head}, rang {rang}" if rang else head
    extra = "" if step.reason in (None, "completed") else f" ({words})"
    return f"Call ended{extra}, talked {duration(call.talk_time)}"


def _status(call: Call) -> Status:
    if call.stale:
        return "stale"
    if call.missed:
        return "unanswered" if call.direction == "outbound" else "missed"
    if call.ended:
        return "ended"
    if call.transfers and call.answered:
        return "transferred"
    if call.answered:
        return "answered"
    if call.rung:
        return "ringing"
    return "new"


def _ring_time(call: Call) -> str | None:
    """How long phones rang before an answer or the end; None while ringing or when no phone
    rang at all (auto-answer, line busy), or when a call closed as stale was never answered
    (it may have rung for any time after the last event we saw)."""
    if not call.rung or call.ring_time is None or (call.stale and not call.answered):
        return None
    return duration(call.ring_time)


def _talk_time(call: Call) -> str | None:
    """None until the end, and for a stale close (the real end is unknown)."""
    if call.talk_time is None or call.stale:
        return None
    return duration(call.talk_time)


def _reason_text(reason: str | None) -> str:
    if reason is None:
        return "ended"
    return END_REASON_TEXT.get(reason, reason)


def _started(call: Call, tz: tzinfo, now: datetime | None) -> str:
    start = call.started_at.astimezone(tz)
    end = (call.ended_at or call.last_event_at).astimezone(tz)
    dated = end.date() != start.date() or (
        now is not None and now.astimezone(tz).date() != start.date()
    )
    return start.strftime("%Y-%m-%d %H:%M" if dated else "%H:%M")


def rang(labels: tuple[str, ...]) -> Phrase:
    """``Rang A, B`` for people known only as they were shown (a callback case's earlier
    misses), so renderers cut the list as they cut any people."""
    if not labels:
        return ("Nobody's phone rang",)
    return ("Rang ", *_join(tuple(PersonView(label=label, number="") for label in labels)))


def _join(people: tuple[PersonView, ...], *, empty: str = "nobody") -> Phrase:
    if not people:
        return (empty,)
    out: list[Piece] = []
    for i, person in enumerate(people):
        if i:
            out.append(", ")
        out.append(person)
    return tuple(out)
