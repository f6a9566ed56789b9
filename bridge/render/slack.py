"""Slack Block Kit messages for a call (pure).

Builders take a :class:`~bridge.render.view.CallView` (or one :class:`StepView`) and return a
:class:`SlackMessage`: ``text`` (always set; Slack shows it in notifications and to screen
readers) and ``blocks``.

Escaping and Slack's limits are :mod:`bridge.render.blockkit`'s; what a callback case adds
to its alert (state, misses, attempts, buttons) and its thread replies are
:mod:`bridge.render.slack_case`'s; the daily digest is :mod:`bridge.render.slack_digest`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from bridge.core.plan import CaseStepContent, Content
from bridge.render import slack_case, slack_digest
from bridge.render.blockkit import (
    ELLIPSIS,
    MAX_SECTION,
    SlackMessage,
    context,
    escape,
    header,
    message,
    mrkdwn,
    section,
)
from bridge.render.casetext import CaseView
from bridge.render.content import build
from bridge.render.message import OutgoingMessage
from bridge.render.view import STATUS_EMOJI, CallView, Phrase, StepView, plain

MISSED: Final = STATUS_EMOJI["missed"]  # the alert looks the same for a stale close


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
    blocks = [section(_title(v)), section(_who(v)), context(_facts(v))]
    return message(_fallback(v), blocks)


def reply(step: StepView) -> SlackMessage:
    """One thread reply: one step of the story with its local time."""
    text = f"`{step.at}` {mrkdwn(step.phrase, MAX_SECTION - 16)}"
    return message(escape(f"{step.at} {step.text}"), [section(text)])


def missed_alert(
    v: CallView,
    *,
    mentions: tuple[str, ...] = (),
    live_link: str | None = None,
    case: CaseView | None = None,
    buttons: bool = False,
) -> SlackMessage:
    """The prominent alert for a call nobody answered.

    ``mentions`` (the route's, e.g. ``<!subteam^S0123>`` or ``<!here>``) lead the text so they
    notify; ``live_link`` (a permalink to the live thread) is linked when given. ``case``: the
    callback case the alert shows (its header then says the case's state); ``buttons``: offer
    its buttons while it is open (only where Slack's clicks reach the bridge).
    """
    lead = " ".join(mentions)
    opening = f"{lead} " if lead else ""
    when = f"{v.started}, rang {v.ring_time}" if v.ring_time else v.started
    words = f"{MISSED} Missed call from {v.caller.with_number} on {v.line} at {when}"
    text = escape(words if case is None else f"{words} · {case.summary}")
    fields = [
        f"*Line*\n{escape(v.line)}",
        f"*When*\n{escape(v.started)}",
        f"*Rang for*\n{escape(_rang_for(v))}",
        f"*Reason*\n{escape(v.end_text or 'not answered')}",
    ]
    blocks = [
        header(f"{MISSED} Missed call" if case is None else case.title),
        section(f"{opening}Missed call from {_caller(v)}", fields=fields),
    ]
    if case is None:
        blocks.append(section(mrkdwn(v.who)))
    else:
        blocks += slack_case.alert_blocks(case, v.who, with_buttons=buttons)
    if live_link:
        blocks.append(context(f"<{escape(live_link)}|Open the live call thread>"))
    return message(opening + text, blocks)


def _rang_for(v: CallView) -> str:
    if v.ring_time:
        return v.ring_time
    return "unknown" if v.rung else "no phone rang"


def summary(v: CallView, *, mentions: tuple[str, ...] = ()) -> SlackMessage:
    """One message when the call ends: state, people, and the whole story.

    ``mentions`` (the route's) lead the text and the first block so they notify."""
    lead = " ".join(mentions)
    opening = f"{lead} " if lead else ""
    blocks = [section(opening + _title(v)), section(_who(v))]
    if v.steps:
        blocks.append(section(_timeline(v.steps)))
    blocks.append(context(_facts(v)))
    return message(opening + _fallback(v), blocks)


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


def render(
    content: Content, users: Mapping[str, str], link: str | None, *, buttons: bool = False
) -> OutgoingMessage:
    """Delivery's entry point: stored render input -> Slack message.

    ``users`` maps e-mail addresses to Slack user ids (``users.lookupByEmail``); those people
    are mentioned as ``<@U…>``, everyone else by name. ``buttons``: a callback case's alert
    offers its buttons (bind it only where Slack's interactivity reaches the bridge: a
    button nobody receives is worse than none). A case's escalation reply is broadcast to
    the channel.
    """
    mentions = {email: f"<@{user}>" for email, user in users.items()}
    built = build(
        content,
        mentions,
        link,
        root=root,
        reply=reply,
        missed_alert=lambda v, route, live, case: missed_alert(
            v, mentions=route, live_link=live, case=case, buttons=buttons
        ),
        summary=lambda v, route: summary(v, mentions=route),
        case_step=slack_case.reply,
        digest=slack_digest.digest,
    )
    broadcast = isinstance(content, CaseStepContent) and content.step.kind == "escalated"
    return OutgoingMessage(text=built.text, blocks=built.blocks, broadcast=broadcast)
