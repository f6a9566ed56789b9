"""Adaptive Card parts for callback cases (pure): the case on its missed-call alert and its
steps as replies in the alert's thread.

The alert of a case shows, under the call's own facts: every missed call with who was rung
(when there was more than one, as a FactSet), then the state at a glance (waiting since when;
who is calling back; how, by whom and after how long it closed), the unanswered callback
attempts and the escalation (its targets mentioned where they are Teams users). No buttons
yet: Teams' Universal Actions come later.
"""

from __future__ import annotations

from typing import Any

from bridge.core.plan import CaseStepContent
from bridge.render.adaptivecard import (
    ELLIPSIS,
    Card,
    TeamsMessage,
    escape,
    fit,
    route_mention,
    summary_text,
)
from bridge.render.casetext import (
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


def line(c: Card, pieces: Line) -> str:
    """A case line as TextBlock markdown: words escaped, emphasis in bold, rule mentions as
    :func:`~bridge.render.adaptivecard.route_mention` shows them."""
    out: list[str] = []
    for piece in pieces:
        match piece:
            case str():
                out.append(escape(piece))
            case Em(text=text):
                out.append(f"**{escape(text)}**")
            case Who(name=name):
                out.append(escape(name))
            case Mention(raw=raw):
                out.append(route_mention(c, raw))
            case Since(shown=shown):
                out.append(escape(shown))
    return "".join(out)


def color(case: CaseView) -> str:
    """The title's colour: attention while nobody is on it, good once called back."""
    if case.open:
        return "Warning" if case.claimed else "Attention"
    return "Attention" if case.how == "expired" else "Good"


def alert(c: Card, case: CaseView, rung: Phrase) -> None:
    """What a case adds to its alert card after the call's facts (``rung``: who the alert's
    own call rang, shown as it is for a single miss)."""
    if len(case.misses) == 1:
        c.text(c.phrase(rung))
    else:
        head = escape(case.misses_text([]))
        c.text(listing(head, [escape(m.at) for m in case.misses], c.limits.text), weight="Bolder")
        shown = case.misses[: c.limits.steps]
        c.facts([(escape(m.at), c.phrase(rang(m.rung))) for m in shown])
        if len(case.misses) > len(shown):
            c.text(f"{ELLIPSIS} and {len(case.misses) - len(shown)} more", spacing="None")
    c.text(line(c, case.state), spacing="Medium")
    if case.attempts:
        head = escape(case.attempts_text([]))
        items = [escape(a.text) for a in case.attempts]
        c.text(listing(head, items, c.limits.text), spacing="None")
    if case.escalation is not None:
        c.text(line(c, case.escalation), spacing="None")


def reply(content: CaseStepContent) -> TeamsMessage:
    """One step of a case as a reply in its alert's thread (an escalation's targets are
    mentioned)."""
    at, pieces = reply_line(content)

    def build(c: Card) -> dict[str, Any]:
        c.text(f"{escape(at)} · {line(c, pieces)}")
        return c.build()

    return TeamsMessage(summary_text(f"{at} {plain(pieces)}"), fit(build))
