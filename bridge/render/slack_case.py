"""Slack Block Kit for callback cases (pure): the case on its missed-call alert, its buttons,
and its steps as replies in the alert's thread.

The alert of a case shows, under the call's own facts: every missed call with who was rung
(when there was more than one), then the state at a glance (waiting since when, with Slack's
live "… ago"; who is calling back; how, by whom and after how long it closed), the
unanswered callback attempts and the escalation. While the case is open, and only when the
deployment receives Slack's button clicks, an ``actions`` block offers *I'll call back*
(or *Release* once claimed) and *Done* (with a confirmation dialog). Each button's
``action_id`` is :data:`~bridge.core.cases.ACTION_PREFIX` + the action and its ``value`` the
case's :class:`~bridge.core.cases.CaseRef` (:func:`~bridge.core.cases.encode_ref`).
"""

from __future__ import annotations

import re
from typing import Final

from bridge.core.cases import ACTION_PREFIX, Action, encode_ref
from bridge.core.plan import CaseStepContent
from bridge.render.blockkit import (
    ELLIPSIS,
    MAX_SECTION,
    Block,
    SlackMessage,
    clip,
    escape,
    message,
    mrkdwn,
    plain_text,
    section,
)
from bridge.render.casetext import (
    TIMES,
    CaseView,
    Em,
    Line,
    Mention,
    Since,
    Who,
    listing,
    plain,
    reply_line,
)
from bridge.render.view import Phrase, rang

MAX_VALUE: Final = 2000  # a button's value
MAX_BUTTON: Final = 75  # a button's text
MAX_CONFIRM_TITLE: Final = 100
MAX_CONFIRM_TEXT: Final = 300
MAX_LINE: Final = 500  # one miss's "who was rung", before "… and N more"
_USER_ID: Final = re.compile(r"^[UW][A-Z0-9]{2,}$")

CLAIM_TEXT: Final = "I'll call back"
RELEASE_TEXT: Final = "Release"
DONE_TEXT: Final = "Done"


def line(pieces: Line) -> str:
    """A case line as mrkdwn: words escaped, a clicker mentioned by their Slack id, rule
    mentions as written, a :class:`Since` as Slack's live date ("14:02 (5 minutes ago)" in
    the reader's time zone; ``14:02`` in the rules' where dates cannot be shown)."""
    out: list[str] = []
    for piece in pieces:
        match piece:
            case str():
                out.append(escape(piece))
            case Em(text=text):
                out.append(f"*{escape(text)}*")
            case Who(name=name, user_id=user_id):
                known = user_id is not None and _USER_ID.match(user_id)
                out.append(f"<@{user_id}>" if known else escape(name))
            case Mention(raw=raw):
                out.append(raw)
            case Since(at=at, shown=shown):
                out.append(f"<!date^{int(at.timestamp())}^{{time}} ({{ago}})|{escape(shown)}>")
    return "".join(out)


def fallback(pieces: Line) -> str:
    """A case line for a notification: plain words (escaped), rule mentions as written (so
    an escalation notifies), nobody else mentioned."""
    return "".join(p.raw if isinstance(p, Mention) else escape(plain((p,))) for p in pieces)


def misses(case: CaseView, first: str) -> str:
    """``*Missed 3x* · 14:02 · 14:09 · 14:21`` and one line per miss with who was rung
    (``first``: the alert's own call's people, in mrkdwn with their mentions)."""
    times = [escape(m.at) for m in case.misses]
    head = clip(listing(f"*Missed {len(case.misses)}{TIMES}*", times, 600), 600)
    lines = [head]
    used = len(head)
    for i, miss in enumerate(case.misses):
        who = first if i == 0 else mrkdwn(rang(miss.rung), MAX_LINE)
        text = f"`{escape(miss.at)}` {who}"
        more = f"\n{ELLIPSIS} and {len(case.misses) - i} more"
        if used + 1 + len(text) + len(more) > MAX_SECTION:
            lines.append(more.lstrip("\n"))
            break
        lines.append(text)
        used += 1 + len(text)
    return "\n".join(lines)


def state(case: CaseView) -> str:
    """The state at a glance, then the attempts and the escalation, one per line."""
    lines = [clip(line(case.state), 1000)]
    if case.attempts:
        head = f"{escape(case.attempts_text([]))}"
        items = [escape(a.text) for a in case.attempts]
        lines.append(clip(listing(head, items, 1000), 1000))
    if case.escalation is not None:
        lines.append(clip(line(case.escalation), 900))
    return "\n".join(lines)


def buttons(case: CaseView) -> Block | None:
    """The ``actions`` block of an open case (None once closed, or if its reference would
    not fit in a button)."""
    value = encode_ref(case.ref)
    if not case.open or len(value) > MAX_VALUE:
        return None
    first = _button("release", RELEASE_TEXT, value) if case.claimed else _claim(value)
    done = _button("done", DONE_TEXT, value)
    done["confirm"] = {
        "title": plain_text("Close this callback?", MAX_CONFIRM_TITLE),
        "text": plain_text(
            f"Nobody needs to call {case.caller} back any more? The case closes in your name.",
            MAX_CONFIRM_TEXT,
        ),
        "confirm": plain_text("Done", 30),
        "deny": plain_text("Cancel", 30),
    }
    return {"type": "actions", "elements": [first, done]}


def _claim(value: str) -> Block:
    button = _button("claim", CLAIM_TEXT, value)
    button["style"] = "primary"
    return button


def _button(action: Action, text: str, value: str) -> Block:
    return {
        "type": "button",
        "action_id": ACTION_PREFIX + action,
        "text": plain_text(text, MAX_BUTTON),
        "value": value,
    }


def alert_blocks(case: CaseView, rung: Phrase, *, with_buttons: bool) -> list[Block]:
    """What a case adds to its alert after the call's facts: the misses (for a single miss:
    ``rung``, who the alert's own call rang), the state, and (``with_buttons``) the buttons."""
    many = len(case.misses) > 1
    blocks = [section(misses(case, mrkdwn(rung, MAX_LINE)) if many else mrkdwn(rung))]
    blocks.append(section(state(case)))
    actions = buttons(case) if with_buttons else None
    return blocks if actions is None else [*blocks, actions]


def reply(content: CaseStepContent) -> SlackMessage:
    """One step of a case as a reply in its alert's thread. An escalation's mentions are in
    its text, so they notify."""
    at, pieces = reply_line(content)
    text = f"`{escape(at)}` {line(pieces)}"
    return message(f"{escape(at)} {fallback(pieces)}", [section(text)])
