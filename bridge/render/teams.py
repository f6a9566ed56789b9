"""Microsoft Teams Adaptive Cards for a call (pure).

Builders take a :class:`~bridge.render.view.CallView` (or one :class:`StepView`) and return a
:class:`TeamsMessage`: ``text`` (plain, for the activity's ``summary``: notifications and chat
previews) and ``card`` (an Adaptive Card 1.5, the version Teams renders everywhere).

People with a known Teams identity (``users`` maps their e-mail to a user principal name) are
mentioned, everyone else named. Escaping, mentions and size limits are
:mod:`bridge.render.adaptivecard`'s; what a callback case adds to its alert (state, misses,
attempts, escalation) and its thread replies are :mod:`bridge.render.teams_case`'s; the
daily digest is :mod:`bridge.render.teams_digest`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from bridge.core.plan import Content
from bridge.render import teams_case, teams_digest
from bridge.render.adaptivecard import (
    ELLIPSIS,
    Card,
    TeamsMessage,
    escape,
    fit,
    route_mention,
    summary_text,
)
from bridge.render.casetext import CaseView
from bridge.render.content import build
from bridge.render.message import OutgoingMessage
from bridge.render.view import STATUS_EMOJI, CallView, StepView, plain

MISSED: Final = STATUS_EMOJI["missed"]


def _caller(c: Card, v: CallView) -> str:
    p = v.caller
    if p.mention:
        return c.person(p)
    if p.name and p.number and p.number != p.name:
        return f"{escape(p.name)} ({escape(p.number)})"
    return escape(p.label)


def _title(c: Card, v: CallView) -> None:
    """``🔔 Ringing · M. de Jong (+31 50 123 4567) → +31 50 800 9000``, bold."""
    c.text(
        f"{v.emoji} {escape(v.status_text)} · {_caller(c, v)} → {escape(v.line)}",
        weight="Bolder",
        size="Medium",
    )


def _who(c: Card, v: CallView) -> None:
    c.text(c.phrase(v.who))
    for t in v.transfers[: c.limits.steps]:
        c.text(f"↪ {c.phrase(t.phrase)}", spacing="None")


def _facts(v: CallView) -> str:
    return escape(v.facts)


def _fallback(v: CallView) -> str:
    """Plain one-liner for notifications and previews (never a mention)."""
    return f"{v.emoji} {v.status_text}: {v.caller.with_number} → {v.line} · {plain(v.who)}"


def root(v: CallView) -> TeamsMessage:
    """The live card of a call: its current state at a glance, updated in place."""

    def build(c: Card) -> dict[str, Any]:
        _title(c, v)
        _who(c, v)
        c.text(_facts(v), isSubtle=True, size="Small")
        return c.build()

    return TeamsMessage(summary_text(_fallback(v)), fit(build))


def reply(step: StepView) -> TeamsMessage:
    """One thread reply: one step of the story with its local time."""

    def build(c: Card) -> dict[str, Any]:
        c.text(f"{step.at} · {c.phrase(step.phrase)}")
        return c.build()

    return TeamsMessage(summary_text(f"{step.at} {step.text}"), fit(build))


def missed_alert(
    v: CallView,
    *,
    mentions: tuple[str, ...] = (),
    live_link: str | None = None,
    case: CaseView | None = None,
    buttons: bool = False,
) -> TeamsMessage:
    """The prominent alert for a call nobody answered; ``mentions`` (the route's) lead it and
    ``live_link`` becomes an "Open the live call thread" button. ``case``: the callback case
    the alert shows (its title then says the case's state); ``buttons``: offer its buttons
    while it is open (only where Teams' clicks reach the bridge)."""

    def build(c: Card) -> dict[str, Any]:
        title = f"{MISSED} Missed call" if case is None else case.title
        color = "Attention" if case is None else teams_case.color(case)
        c.text(escape(title), weight="Bolder", size="Large", color=color)
        lead = " ".join(route_mention(c, m) for m in mentions)
        opening = f"{lead} " if lead else ""
        c.text(f"{opening}Missed call from {_caller(c, v)}")
        c.facts(
            [
                ("Line", escape(v.line)),
                ("When", escape(v.started)),
                ("Rang for", escape(_rang_for(v))),
                ("Reason", escape(v.end_text or "not answered")),
            ]
        )
        if case is None:
            c.text(c.phrase(v.who))
        else:
            teams_case.alert(c, case, v.who)
            if buttons:
                teams_case.buttons(c, case)
        if live_link and live_link.startswith("https://"):
            c.actions.append(
                {"type": "Action.OpenUrl", "title": "Open the live call thread", "url": live_link}
            )
        return c.build()

    when = f"{v.started}, rang {v.ring_time}" if v.ring_time else v.started
    text = f"{MISSED} Missed call from {v.caller.with_number} on {v.line} at {when}"
    return TeamsMessage(
        summary_text(text if case is None else f"{text} · {case.summary}"), fit(build)
    )


def _rang_for(v: CallView) -> str:
    if v.ring_time:
        return v.ring_time
    return "unknown" if v.rung else "no phone rang"


def summary(v: CallView, *, mentions: tuple[str, ...] = ()) -> TeamsMessage:
    """One card when the call ends: state, people, and the whole story."""

    def build(c: Card) -> dict[str, Any]:
        _title(c, v)
        if mentions:
            c.text(" ".join(route_mention(c, m) for m in mentions))
        _who(c, v)
        steps = v.steps[: c.limits.steps]
        for i, step in enumerate(steps):
            c.text(f"{step.at} · {c.phrase(step.phrase)}", spacing="Small" if i else "Medium")
        if len(v.steps) > len(steps):
            c.text(f"{ELLIPSIS} and {len(v.steps) - len(steps)} more steps", spacing="None")
        c.text(_facts(v), isSubtle=True, size="Small")
        return c.build()

    return TeamsMessage(summary_text(_fallback(v)), fit(build))


def render(
    content: Content, users: Mapping[str, str], link: str | None, *, buttons: bool = False
) -> OutgoingMessage:
    """Delivery's entry point: stored render input -> Teams message.

    ``users`` maps e-mail addresses to Teams identities (user principal names, from
    :meth:`TeamsNotifier.lookup_user`); those people are mentioned, everyone else named.
    ``buttons``: a callback case's alert offers its buttons (bind it only where Teams'
    clicks reach the bridge: ``POST /teams/messages``).
    """
    message = build(
        content,
        users,
        link,
        root=root,
        reply=reply,
        missed_alert=lambda v, route, live, case: missed_alert(
            v, mentions=route, live_link=live, case=case, buttons=buttons
        ),
        summary=lambda v, route: summary(v, mentions=route),
        case_step=teams_case.reply,
        digest=teams_digest.digest,
    )
    return OutgoingMessage(text=message.text, card=message.card)
