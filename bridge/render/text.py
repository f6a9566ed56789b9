"""Plain-text rendering of a call: dry-run log lines and `callbridge route` output (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from bridge.core.calls import Call, Step
from bridge.core.cases import Case
from bridge.core.digest import DigestContent
from bridge.core.events import Participant
from bridge.core.plan import (
    CaseStepContent,
    Content,
    MissedContent,
    ReplyContent,
    RootContent,
    SummaryContent,
)
from bridge.render.casetext import TIMES, case_view, plain, reply_line
from bridge.render.clock import shown_time
from bridge.render.digest_view import digest_view
from bridge.render.message import OutgoingMessage

_PHASE_ICON = {"new": "📞", "ringing": "🔔", "answered": "🟢", "ended": "⏹"}


def duration(value: timedelta | None) -> str:
    if value is None:
        return "-"
    seconds = int(value.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def person(p: Participant | None) -> str:
    if p is None:
        return "unknown"
    if p.name and p.number and p.name != p.number:
        return f"{p.name} ({p.number})"
    return p.label


def people(ps: tuple[Participant, ...]) -> str:
    return ", ".join(person(p) for p in ps) or "nobody"


def headline(call: Call) -> str:
    """The call's current state at a glance, on one line."""
    parts = [
        _PHASE_ICON[call.phase],
        f"{call.direction} call from {person(call.caller)} to {call.dialled}:",
    ]
    if call.phase == "ended":
        if call.missed:
            reason = call.end_reason or "unknown"
            parts.append(f"MISSED ({reason}), rang {duration(call.ring_time)}")
            if call.rung:
                parts.append(f"at {people(call.rung)}")
        else:
            parts.append(
                f"ended, answered by {person(call.answered_by)}, talked {duration(call.talk_time)}"
            )
    elif call.phase == "answered":
        parts.append(f"talking to {person(call.connected or call.answered_by)}")
    elif call.phase == "ringing":
        parts.append(f"ringing {people(call.rung)}")
    else:
        parts.append("new")
    if call.transfers:
        n = len(call.transfers)
        parts.append(f"[{n} transfer{'' if n == 1 else 's'}]")
    return " ".join(parts)


def case_line(case: Case, tz: tzinfo) -> str:
    """A callback case on one line: its state, every miss with who was rung, the
    unanswered attempts and the escalation."""
    v = case_view(case, tz)
    parts = [f"callback case: {plain(v.state)}"]
    if len(v.misses) > 1:
        misses = ", ".join(f"{m.at} ({m.rang})" for m in v.misses)
        parts.append(f"missed {len(v.misses)}{TIMES}: {misses}")
    if v.attempts:
        parts.append(f"tried {len(v.attempts)}{TIMES}: {', '.join(a.text for a in v.attempts)}")
    if v.escalation is not None:
        parts.append(plain(v.escalation))
    return "; ".join(parts)


def step_line(step: Step, tz: tzinfo, started: datetime) -> str:
    """One thread reply of the call's story (dated when not on the day the call started)."""
    at = shown_time(step.at, tz, started, seconds=True)
    consult = " (consultation)" if step.consult else ""
    match step.kind:
        case "created":
            text = "call came in"
        case "ringing":
            text = f"ringing {people(step.people)}{consult}"
        case "answered":
            text = f"answered by {people(step.people)}{consult}"
        case "transfer":
            kind = step.transfer_kind or "blind"
            text = f"{kind} transfer by {person(step.by)} to {people(step.people)}"
        case "ended":
            text = f"ended ({step.reason or 'unknown'})"
    return f"{at} {text}"


def digest_line(content: DigestContent) -> str:
    """``DIGEST support: 📊 Callbacks · Thu 3 Dec | <summary> | waiting: a; b; … and N more``."""
    v = digest_view(content)
    text = f"DIGEST {v.destination}: {v.title} | {v.summary}"
    waiting = [w.line(str) for w in v.waiting]
    if v.more_text is not None:
        waiting.append(v.more_text)
    return f"{text} | waiting: {'; '.join(waiting)}" if waiting else text


def render(content: Content, users: Mapping[str, str], link: str | None) -> OutgoingMessage:
    """Plain text for the dry-run notifier (and any platform without a richer renderer)."""
    tz = ZoneInfo(content.tz)
    match content:
        case CaseStepContent():
            at, line = reply_line(content)
            text = f"{at} {plain(line)}"
        case ReplyContent(step=step):
            text = step_line(step, tz, content.context.started_at)
        case MissedContent(call=call, mentions=mentions, case=case):
            text = " ".join([*mentions, "MISSED CALL:", headline(call)])
            if case is not None:
                text += f" | {case_line(case, tz)}"
            if link:
                text += f" (live thread: {link})"
        case SummaryContent(call=call, mentions=mentions):
            text = " ".join([*mentions, "Call summary:", headline(call)])
        case RootContent(call=call):
            text = headline(call)
        case DigestContent():
            text = digest_line(content)
    return OutgoingMessage(text=text)
