"""Slack Block Kit messages for a call (pure).

Builders take a :class:`~bridge.render.view.CallView` (or one :class:`StepView`) and return a
:class:`SlackMessage`: ``text`` (always set; Slack shows it in notifications and to screen
readers) and ``blocks``.

Safety and limits:

- Every user-controlled string (names, numbers, provider reasons) goes through
  :func:`escape` (``&``, ``<``, ``>``), so nobody can inject mentions such as ``<!channel>`` or
  links; mention strings we were given (``<@U123>``, ``<!subteam^S1>``) are kept as they are.
- Blocks stay within Slack's limits (at most 50 blocks, section text 3000 characters, field
  2000, header 150): long people lists end in ``… and N more`` and any other overlong text is
  cut with an ellipsis, never inside a mention, link or ``&amp;`` entity.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from bridge.core.plan import CaseStepContent, Content
from bridge.render.casetext import step_sentence
from bridge.render.content import build
from bridge.render.message import OutgoingMessage
from bridge.render.view import (
    STATUS_EMOJI,
    CallView,
    PersonView,
    Phrase,
    StepView,
    plain,
)

MAX_BLOCKS: Final = 50
MAX_SECTION: Final = 3000
MAX_FIELD: Final = 2000
MAX_HEADER: Final = 150
MAX_TEXT: Final = 3000  # the fallback `text`; Slack allows 40000, notifications show far less
ELLIPSIS: Final = "…"
MISSED: Final = STATUS_EMOJI["missed"]  # the alert looks the same for a stale close

Block = dict[str, Any]


@dataclass(frozen=True, slots=True)
class SlackMessage:
    text: str
    blocks: tuple[Block, ...]


def escape(text: str) -> str:
    """Slack's three control characters as entities (the only escaping mrkdwn knows)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters with an ellipsis, never inside an
    ``<...>`` mention/link or an ``&...;`` entity."""
    if len(text) <= limit:
        return text
    return _cut(text, limit - len(ELLIPSIS)) + ELLIPSIS


def _cut(text: str, size: int) -> str:
    cut = text[: max(size, 0)]
    if cut.rfind("<") > cut.rfind(">"):
        cut = cut[: cut.rfind("<")]
    if cut.rfind("&") > cut.rfind(";"):
        cut = cut[: cut.rfind("&")]
    return cut


def person(p: PersonView) -> str:
    """A person in mrkdwn: their mention when known, else the escaped label."""
    return p.mention or escape(p.label)


def mrkdwn(phrase: Phrase, limit: int = MAX_SECTION) -> str:
    """A phrase as mrkdwn in at most ``limit`` characters.

    When it does not fit it ends with ``… and N more`` (N: the people not shown whole).
    Our own words may be cut; a person is shown whole or not at all, except that a single
    name longer than the limit is cut rather than dropped.
    """
    rendered = [person(p) if isinstance(p, PersonView) else escape(p) for p in phrase]
    if sum(map(len, rendered)) <= limit:
        return "".join(rendered)
    out: list[str] = []
    used = 0
    shown = 0  # people shown whole
    for i, text in enumerate(rendered):
        piece = phrase[i]
        left = sum(isinstance(p, PersonView) for p in phrase[i:])
        suffix = f"{ELLIPSIS} and {left} more" if left else ELLIPSIS
        if used + len(text) + len(suffix) > limit:
            cuttable = not isinstance(piece, PersonView) or (not shown and piece.mention is None)
            if cuttable:
                out.append(_cut(text, limit - used - len(suffix)))
            out.append(suffix)
            break
        out.append(text)
        used += len(text)
        shown += isinstance(piece, PersonView)
    return clip("".join(out), limit)


def _section(text: str, *, fields: Iterable[str] = ()) -> Block:
    block: Block = {"type": "section", "text": _md(clip(text, MAX_SECTION))}
    field_list = [_md(clip(f, MAX_FIELD)) for f in fields]
    if field_list:
        block["fields"] = field_list[:10]
    return block


def _md(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


def _context(text: str) -> Block:
    return {"type": "context", "elements": [_md(clip(text, MAX_SECTION))]}


def _header(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": clip(text, MAX_HEADER)}}


def _message(text: str, blocks: list[Block]) -> SlackMessage:
    return SlackMessage(text=clip(text, MAX_TEXT) or ELLIPSIS, blocks=tuple(blocks[:MAX_BLOCKS]))


def _caller(v: CallView) -> str:
    """The caller in mrkdwn: mention, or bold name with the formatted number."""
    c = v.caller
    if c.mention:
        return c.mention
    if c.name and c.number and c.number != c.name:
        return f"*{escape(c.name)}* ({escape(c.number)})"
    return f"*{escape(c.label)}*"


def _title(v: CallView) -> str:
    """``🔔 *Ringing* · *M. de Jong* (+31 50 123 4567) → +31 50 800 9000``."""
    return f"{v.emoji} *{escape(v.status_text)}* · {_caller(v)} → {escape(v.line)}"


def _fallback(v: CallView) -> str:
    """Plain one-liner for notifications: no mentions (updates must not notify anyone)."""
    return escape(f"{v.emoji} {v.status_text}: {v.caller.with_number} → {v.line} · {plain(v.who)}")


def _who(v: CallView) -> str:
    phrase: Phrase = v.who
    for t in v.transfers:
        phrase = (*phrase, "\n↪ ", *t.phrase)
    return mrkdwn(phrase)


def _facts(v: CallView) -> str:
    return escape(v.facts)


def root(v: CallView) -> SlackMessage:
    """The live message of a call: its current state at a glance, updated in place."""
    blocks = [_section(_title(v)), _section(_who(v)), _context(_facts(v))]
    return _message(_fallback(v), blocks)


def reply(step: StepView) -> SlackMessage:
    """One thread reply: one step of the story with its local time."""
    text = f"`{step.at}` {mrkdwn(step.phrase, MAX_SECTION - 16)}"
    return _message(escape(f"{step.at} {step.text}"), [_section(text)])


def missed_alert(
    v: CallView, *, mentions: tuple[str, ...] = (), live_link: str | None = None
) -> SlackMessage:
    """The prominent alert for a call nobody answered.

    ``mentions`` (the route's, e.g. ``<!subteam^S0123>`` or ``<!here>``) lead the text so they
    notify; ``live_link`` (a permalink to the live thread) is linked when given.
    """
    lead = " ".join(mentions)
    opening = f"{lead} " if lead else ""
    when = f"{v.started}, rang {v.ring_time}" if v.ring_time else v.started
    text = escape(f"{MISSED} Missed call from {v.caller.with_number} on {v.line} at {when}")
    fields = [
        f"*Line*\n{escape(v.line)}",
        f"*When*\n{escape(v.started)}",
        f"*Rang for*\n{escape(_rang_for(v))}",
        f"*Reason*\n{escape(v.end_text or 'not answered')}",
    ]
    blocks = [
        _header(f"{MISSED} Missed call"),
        _section(f"{opening}Missed call from {_caller(v)}", fields=fields),
        _section(mrkdwn(v.who)),
    ]
    if live_link:
        blocks.append(_context(f"<{escape(live_link)}|Open the live call thread>"))
    return _message(opening + text, blocks)


def _rang_for(v: CallView) -> str:
    if v.ring_time:
        return v.ring_time
    return "unknown" if v.rung else "no phone rang"


def summary(v: CallView, *, mentions: tuple[str, ...] = ()) -> SlackMessage:
    """One message when the call ends: state, people, and the whole story.

    ``mentions`` (the route's) lead the text and the first block so they notify."""
    lead = " ".join(mentions)
    opening = f"{lead} " if lead else ""
    blocks = [_section(opening + _title(v)), _section(_who(v))]
    if v.steps:
        blocks.append(_section(_timeline(v.steps)))
    blocks.append(_context(_facts(v)))
    return _message(opening + _fallback(v), blocks)


def _timeline(steps: tuple[StepView, ...]) -> str:
    lines: list[str] = []
    used = 0
    for i, step in enumerate(steps):
        line = f"`{step.at}` {mrkdwn(step.phrase, 500)}"
        suffix = f"\n{ELLIPSIS} and {len(steps) - i} more steps"
        if used + len(line) + 1 + len(suffix) > MAX_SECTION:
            return "\n".join(lines) + suffix
        lines.append(line)
        used += len(line) + 1
    return "\n".join(lines)


def render(content: Content, users: Mapping[str, str], link: str | None) -> OutgoingMessage:
    """Delivery's entry point: stored render input -> Slack message.

    ``users`` maps e-mail addresses to Slack user ids (``users.lookupByEmail``); those people
    are mentioned as ``<@U…>``, everyone else by name.
    """
    if isinstance(content, CaseStepContent):
        return OutgoingMessage(text=step_sentence(content))
    mentions = {email: f"<@{user}>" for email, user in users.items()}
    message = build(
        content,
        mentions,
        link,
        root=root,
        reply=reply,
        missed_alert=lambda v, route, live: missed_alert(v, mentions=route, live_link=live),
        summary=lambda v, route: summary(v, mentions=route),
    )
    return OutgoingMessage(text=message.text, blocks=message.blocks)
