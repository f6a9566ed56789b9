"""Callback cases in plain words (pure): what every renderer shows of a case.

:func:`case_view` turns a folded :class:`~bridge.core.cases.Case` into a :class:`CaseView`:
its state at a glance (waiting since when, who is calling back, how it closed, by whom,
after how long), every missed call with who was rung, the unanswered callback attempts and
the escalation, with local times in the rules' time zone. :func:`reply_line` is one step of
the case as a reply in its alert's thread.

Texts are *lines*: tuples of plain strings (escaped by each renderer) and a few marked
pieces a renderer shows its own way: :class:`Em` (emphasis), :class:`Who` (a person; Slack
mentions them when their Slack user id is known, from a button click), :class:`Mention` (a
mention from the rules, as written there) and :class:`Since` (a time Slack can show live,
"14:02 (5 minutes ago)"). Nothing here contains platform markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Final
from zoneinfo import ZoneInfo

from bridge.core.cases import Case, CaseRef, Closed, Closing, Step
from bridge.core.plan import CaseStepContent
from bridge.render.clock import shown_time
from bridge.render.phone import format_number


@dataclass(frozen=True, slots=True)
class Em:
    """Words to emphasise (bold)."""

    text: str


@dataclass(frozen=True, slots=True)
class Who:
    """A person who acted on the case; ``user_id``: their Slack user id, when known."""

    name: str
    user_id: str | None = None


@dataclass(frozen=True, slots=True)
class Mention:
    """A mention from the rules (an escalation target), exactly as written there."""

    raw: str


@dataclass(frozen=True, slots=True)
class Since:
    """A moment shown as ``shown`` (local ``HH:MM``); Slack adds the live "… ago"."""

    at: datetime
    shown: str


Piece = str | Em | Who | Mention | Since
Line = tuple[Piece, ...]

TIMES: Final = "\N{MULTIPLICATION SIGN}"  # "missed 3x" shows this sign (ruff: RUF001)
WAITING: Final = "⏳"
CLAIMED: Final = "📞"
CLOSED_EMOJI: Final[dict[Closed, str]] = {
    "got_through": "✅",
    "called_back": "✅",
    "done": "✅",
    "expired": "⌛",
}
HEADLINE: Final[dict[Closed, str]] = {  # the alert's header once closed
    "got_through": "got through",
    "called_back": "called back",
    "done": "done",
    "expired": "not called back",
}
MISSED: Final = "📵"
TRIED: Final = "🔁"
RELEASED: Final = "↩️"
ESCALATED: Final = "⚠️"


def plain(line: Line) -> str:
    """A line as plain text (people by name, rule mentions as written)."""
    out: list[str] = []
    for piece in line:
        match piece:
            case str():
                out.append(piece)
            case Em(text=text):
                out.append(text)
            case Who(name=name):
                out.append(name)
            case Mention(raw=raw):
                out.append(raw)
            case Since(shown=shown):
                out.append(shown)
    return "".join(out)


@dataclass(frozen=True, slots=True)
class MissView:
    at: str  # local time, with the date when not the first miss's day
    rung: tuple[str, ...]  # who was rung, as shown (numbers formatted)

    @property
    def rang(self) -> str:
        """``rang Johan | Voys, Sanne de Vries`` or ``nobody's phone rang``."""
        return f"rang {', '.join(self.rung)}" if self.rung else "nobody's phone rang"


@dataclass(frozen=True, slots=True)
class AttemptView:
    at: str
    by: str

    @property
    def text(self) -> str:
        """``Alice 14:25 (no answer)``."""
        return f"{self.by} {self.at} (no answer)"


@dataclass(frozen=True, slots=True)
class CaseView:
    """A callback case as people read it."""

    ref: CaseRef  # what its buttons carry
    open: bool
    claimed: bool  # open and someone is calling back
    how: Closed | None  # how it closed (None while open)
    caller: str  # the customer, as shown (number formatted)
    emoji: str  # of the state: ⏳ waiting, 📞 claimed, ✅ closed, ⌛ expired
    headline: str  # the state in a few words, for a header: "waiting for a callback"
    state: Line  # the state in one sentence, with who and when
    misses: tuple[MissView, ...]
    attempts: tuple[AttemptView, ...]  # unanswered callback attempts
    escalation: Line | None  # "⚠️ Escalated at 14:32 to @oncall", once escalated
    overdue: bool = False  # escalated, with nobody to escalate to (no mention here)

    @property
    def title(self) -> str:
        """``📵 Missed call x3 · waiting for a callback``, ``✅ Missed call · called back``
        (plain, for a header: the alert's look while nobody is on it, then the state's)."""
        count = f" {TIMES}{len(self.misses)}" if len(self.misses) > 1 else ""
        emoji = MISSED if self.emoji == WAITING else self.emoji
        return f"{emoji} Missed call{count} · {self.headline}"

    def misses_text(self, times: list[str]) -> str:
        """``Missed 3x · 14:02 · 14:09 · 14:21`` with the (renderer's) ``times``."""
        return " · ".join([f"Missed {len(self.misses)}{TIMES}", *times])

    def attempts_text(self, items: list[str]) -> str:
        """``Tried 2x · Alice 14:25 (no answer) · Bob 14:40 (no answer)``."""
        return " · ".join([f"Tried {len(self.attempts)}{TIMES}", *items])

    @property
    def summary(self) -> str:
        """The case in a few plain words, for notifications and previews:
        ``⏳ Waiting for a callback since 14:02 · missed 3x · tried 2x``."""
        parts = [plain(self.state)]
        if len(self.misses) > 1:
            parts.append(f"missed {len(self.misses)}{TIMES}")
        if self.attempts:
            parts.append(f"tried {len(self.attempts)}{TIMES}")
        if self.escalation is not None:
            parts.append("overdue" if self.overdue else "escalated")
        return " · ".join(parts)


def case_view(case: Case, tz: tzinfo) -> CaseView:
    """The people-facing view of ``case`` with times in ``tz``."""
    opened = case.opened_at

    def at(moment: datetime) -> str:
        return stamp(moment, tz, opened)

    claim = case.claim if case.open else None
    if case.closing is not None:
        how = case.closing.how
        emoji, headline = CLOSED_EMOJI[how], HEADLINE[how]
        state: Line = (emoji, " ", *closing_line(case.closing, opened, tz, with_time=True))
    elif claim is not None:
        who = Who(claim.user, claim.user_id or None)
        emoji, headline = CLAIMED, f"{claim.user} is calling back"
        state = (emoji, " ", who, " ", Em("is calling back"), f" since {at(claim.at)}")
    else:
        emoji, headline = WAITING, "waiting for a callback"
        state = (emoji, " ", Em("Waiting for a callback"), " since ", Since(opened, at(opened)))
    escalation: Line | None = None
    if case.escalated_at is not None:
        targets = tuple(Mention(m) for m in case.first.escalate_to)
        if targets:
            escalation = (f"{ESCALATED} Escalated at {at(case.escalated_at)}", *_to(targets))
        else:  # nobody to tell (no mention here): say what happened, not that it was escalated
            escalation = (
                f"{ESCALATED} Overdue since {at(case.escalated_at)}: nobody to escalate to",
            )
    return CaseView(
        ref=CaseRef(case.key.scope, case.key.number, case.id),
        open=case.open,
        claimed=claim is not None,
        how=None if case.closing is None else case.closing.how,
        caller=format_number(case.caller),
        emoji=emoji,
        headline=headline,
        state=state,
        misses=tuple(MissView(at(m.at), tuple(map(format_number, m.rung))) for m in case.misses),
        attempts=tuple(AttemptView(at(a.at), a.by) for a in case.attempts),
        escalation=escalation,
        overdue=case.escalated_at is not None and not case.first.escalate_to,
    )


def _to(targets: tuple[Mention, ...]) -> Line:
    out: list[Piece] = []
    for i, target in enumerate(targets):
        out += [" to " if i == 0 else " ", target]
    return tuple(out)


def closing_line(closing: Closing, opened: datetime, tz: tzinfo, *, with_time: bool) -> Line:
    """``Called back by Alice at 14:32, 30 min after the first miss`` (``with_time``: the
    "at 14:32"; a thread reply already starts with its time)."""
    when = f" at {stamp(closing.at, tz, opened)}" if with_time else ""
    by = Who(closing.by or "someone", closing.by_id)
    waited = f", {after(opened, closing.at)}"
    match closing.how:
        case "got_through":
            return (Em("Got through"), ": answered by ", by, when, waited)
        case "called_back":
            return (Em("Called back"), " by ", by, when, waited)
        case "done":
            return (Em("Closed"), " by ", by, when, " (marked done)", waited)
        case "expired":
            closed = f": closed{when}" if with_time else ""
            return (Em("Not called back in time"), closed, waited)


def reply_line(content: CaseStepContent) -> tuple[str, Line]:
    """One reply in a case alert's thread: its local time and its sentence."""
    step, tz = content.step, ZoneInfo(content.tz)
    opened = content.opened_at
    at = stamp(step.at, tz, opened)
    return at, _step(step, content, tz)


def _step(step: Step, content: CaseStepContent, tz: tzinfo) -> Line:
    by = Who(step.by or "someone")
    match step.kind:
        case "missed":
            rung = ", ".join(map(format_number, step.rung))
            return (f"{MISSED} ", Em("Missed again"), f" (rang {rung})" if rung else "")
        case "attempt":
            return (f"{TRIED} Tried by ", by, " (no answer)")
        case "claimed":
            return (f"{CLAIMED} ", by, " is calling back")
        case "released":
            return (f"{RELEASED} Released by ", by, ": nobody is calling back")
        case "escalated":
            since = stamp(content.opened_at, tz, content.opened_at)
            waiting = span(step.at - content.opened_at)
            mentions: Line = tuple(p for m in step.mentions for p in (Mention(m), " "))
            return (
                f"{ESCALATED} ",
                *mentions,
                Em("Still not called back"),
                f": {_customer(content)}, waiting since {since} ({waiting})",
            )
        case "closed":
            closing = Closing(how=step.how or "done", at=step.at, by=step.by)
            emoji = CLOSED_EMOJI[closing.how]
            return (f"{emoji} ", *closing_line(closing, content.opened_at, tz, with_time=False))


def _customer(content: CaseStepContent) -> str:
    """The customer as a reply names them: with the number to call when they have a name (an
    escalation is read in the channel, away from the alert)."""
    caller = format_number(content.caller)
    number = format_number(content.number) if content.number else ""
    return f"{caller} ({number})" if number and number != caller else caller


def listing(head: str, items: Sequence[str], limit: int, sep: str = " · ") -> str:
    """``head · a · b · … and N more``: whole items while they fit in ``limit`` (a renderer
    still cuts the rare line whose head or first item alone is longer)."""
    out = head
    for i, item in enumerate(items):
        left = len(items) - i
        more = f"{sep}… and {left} more"
        room = limit - (len(more) if left > 1 else 0)
        if len(out) + len(sep) + len(item) > room:
            return out + more
        out += sep + item
    return out


def stamp(at: datetime, tz: tzinfo, first: datetime) -> str:
    """``14:02``, or ``2026-12-05 14:02`` when not on the day of the first miss."""
    return shown_time(at, tz, first)


def after(first: datetime, then: datetime) -> str:
    """``30 min after the first miss`` (rounded down to the minute)."""
    return f"{span(then - first)} after the first miss"


def span(span: timedelta) -> str:
    """``3 d 2 h 5 min``; ``less than a minute`` under one."""
    minutes = max(int(span / timedelta(minutes=1)), 0)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [f"{n} {unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "min")) if n]
    return " ".join(parts) or "less than a minute"
