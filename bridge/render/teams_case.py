"""Adaptive Card parts for callback cases (pure): the case on its missed-call alert and its
steps as replies in the alert's thread.

The alert of a case shows, under the call's own facts: every missed call with who was rung
(when there was more than one, as a FactSet), then the state at a glance (waiting since when;
who is calling back; how, by whom and after how long it closed), the unanswered callback
attempts and the escalation (its targets mentioned where they are Teams users). While the
case is open, and only where Teams' clicks reach the bridge (``POST /teams/messages``, see
:mod:`bridge.ingest.teams_actions`), the card offers *I'll call back* (or *Release* once
claimed) and *Done* as Universal Actions (``Action.Execute``, card 1.4 and later): each
``verb`` is :data:`~bridge.core.cases.ACTION_PREFIX` + the action and its ``data`` carries the
case's :class:`~bridge.core.cases.CaseRef`. Adaptive Cards have no confirmation dialog, so
*Done* opens a short card under the alert (``Action.ShowCard``) whose own button closes it.
"""

from __future__ import annotations

from typing import Any, Final

from bridge.core.cases import ACTION_PREFIX, Action, encode_ref
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

CLAIM_TEXT: Final = "I'll call back"
RELEASE_TEXT: Final = "Release"
DONE_TEXT: Final = "Done"
CONFIRM_TEXT: Final = "Close the case"
DATA_KEY: Final = "case"  # an Action.Execute's data: {"case": the encoded CaseRef}


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


def buttons(c: Card, case: CaseView) -> None:
    """The buttons of an open case (none once it is closed), as the card's actions."""
    if not case.open:
        return
    data = {DATA_KEY: encode_ref(case.ref)}
    if case.claimed:
        c.actions.append(_execute("release", RELEASE_TEXT, data))
    else:
        c.actions.append({**_execute("claim", CLAIM_TEXT, data), "style": "positive"})
    question = (
        f"Nobody needs to call {escape(case.caller)} back any more? The case closes in your name."
    )
    confirm = {
        "type": "AdaptiveCard",
        "body": [{"type": "TextBlock", "text": question, "wrap": True}],
        "actions": [_execute("done", CONFIRM_TEXT, data)],
    }
    c.actions.append({"type": "Action.ShowCard", "title": DONE_TEXT, "card": confirm})


def _execute(action: Action, title: str, data: dict[str, str]) -> dict[str, Any]:
    return {"type": "Action.Execute", "title": title, "verb": ACTION_PREFIX + action, "data": data}


def reply(content: CaseStepContent) -> TeamsMessage:
    """One step of a case as a reply in its alert's thread (an escalation's targets are
    mentioned)."""
    at, pieces = reply_line(content)

    def build(c: Card) -> dict[str, Any]:
        c.text(f"{escape(at)} · {line(c, pieces)}")
        return c.build()

    return TeamsMessage(summary_text(f"{at} {plain(pieces)}"), fit(build))
