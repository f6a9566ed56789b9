"""Microsoft Teams Adaptive Cards for a call (pure).

Builders take a :class:`~bridge.render.view.CallView` (or one :class:`StepView`) and return a
:class:`TeamsMessage`: ``text`` (plain, for the activity's ``summary``: notifications and chat
previews) and ``card`` (an Adaptive Card 1.5, the version Teams renders everywhere).

Safety and limits:

- TextBlocks render a markdown subset (bold, italic, lists, ``[links](url)``). Every
  user-controlled string (names, numbers, provider reasons) goes through :func:`escape`, which
  backslash-escapes the characters that start markup, so nobody can inject a link or
  formatting. ``<`` and ``>`` are escaped too, so a name cannot fake an ``<at>`` mention.
- People with a known Teams identity (``users`` maps their e-mail to a user principal name) are
  mentioned as ``<at>Name</at>`` with a matching ``msteams.entities`` mention object; everyone
  else by name. Route mentions from the rules file that are e-mail addresses (UPNs), bare or as
  ``<at>address</at>``, become real mentions; any other route mention is shown as ``@text``.
- A card stays well under Teams' 28 KB activity limit: people lists end in ``… and N more``,
  the timeline shows at most :data:`MAX_STEPS` steps, long texts are cut, and if the encoded
  card is still over :data:`MAX_CARD_BYTES` everything is rebuilt with tighter limits.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
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

SCHEMA: Final = "http://adaptivecards.io/schemas/adaptive-card.json"
VERSION: Final = "1.5"
MAX_CARD_BYTES: Final = 20_000  # Teams allows ~28 KB for the whole activity
MAX_TEXT: Final = 2000  # one TextBlock
MAX_PEOPLE: Final = 25  # people named in one phrase before "… and N more"
MAX_STEPS: Final = 40  # timeline lines in a summary
MAX_SUMMARY: Final = 500  # the plain activity summary
ELLIPSIS: Final = "…"
MISSED: Final = STATUS_EMOJI["missed"]

Element = dict[str, Any]
_MARKUP: Final = re.compile(r"([\\`*_~\[\]<>])")
_AT_TAG: Final = re.compile(r"</?at>", re.IGNORECASE)
_EMAIL: Final = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


@dataclass(frozen=True, slots=True)
class TeamsMessage:
    text: str
    card: Mapping[str, Any]


def escape(text: str) -> str:
    """Backslash-escape what Teams' TextBlock markdown (or an ``<at>`` tag) could act on."""
    return _MARKUP.sub(r"\\\1", text)


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters with an ellipsis, never inside an
    ``<at>…</at>`` mention and never after a lone escaping backslash."""
    if len(text) <= limit:
        return text
    cut = text[: max(limit - len(ELLIPSIS), 0)]
    if cut.rfind("<at>") > cut.rfind("</at>"):
        cut = cut[: cut.rfind("<at>")]
    backslashes = len(cut) - len(cut.rstrip("\\"))
    if backslashes % 2:
        cut = cut[:-1]
    return cut + ELLIPSIS


@dataclass
class _Mentions:
    """The card's mention entities, one per mentioned identity, each with a unique text."""

    entities: list[Element] = field(default_factory=list)
    _by_id: dict[str, str] = field(default_factory=dict)

    def tag(self, identity: str, name: str) -> str | None:
        """``<at>Name</at>`` for ``identity`` (registering the entity), or None when another
        identity already uses that text (Teams would confuse them)."""
        known = self._by_id.get(identity.casefold())
        if known is not None:
            return known
        shown = " ".join(_MARKUP.sub("", name).split()) or identity
        text = f"<at>{shown}</at>"
        if text in self._by_id.values():
            return None
        self._by_id[identity.casefold()] = text
        self.entities.append(
            {"type": "mention", "text": text, "mentioned": {"id": identity, "name": shown}}
        )
        return text


@dataclass(frozen=True, slots=True)
class _Limits:
    text: int = MAX_TEXT
    people: int = MAX_PEOPLE
    steps: int = MAX_STEPS

    def tighter(self) -> _Limits:
        return _Limits(max(self.text // 2, 80), max(self.people // 2, 2), max(self.steps // 2, 3))


class _Card:
    """Builds one card: TextBlocks from phrases, with their mentions."""

    def __init__(self, limits: _Limits) -> None:
        self.limits = limits
        self.mentions = _Mentions()
        self.body: list[Element] = []
        self.actions: list[Element] = []

    def person(self, p: PersonView) -> str:
        if p.mention:
            tag = self.mentions.tag(p.mention, p.label)
            if tag is not None:
                return tag
        return escape(p.label)

    def phrase(self, phrase: Phrase) -> str:
        """A phrase as TextBlock markdown; past ``limits.people`` people, ``… and N more``."""
        out: list[str] = []
        shown = 0
        total = sum(isinstance(p, PersonView) for p in phrase)
        for piece in phrase:
            if isinstance(piece, PersonView):
                if shown == self.limits.people:
                    out.append(f"{ELLIPSIS} and {total - shown} more")
                    shown += 1
                    continue
                if shown > self.limits.people:
                    continue
                shown += 1
                out.append(self.person(piece))
            elif shown <= self.limits.people or not piece.startswith(", "):
                out.append(escape(piece))  # (the ", " between dropped people is dropped)
        return clip("".join(out), self.limits.text)

    def text(self, markdown: str, **style: Any) -> None:
        block: Element = {"type": "TextBlock", "text": clip(markdown, self.limits.text)}
        block["wrap"] = True
        block.update(style)
        self.body.append(block)

    def facts(self, facts: list[tuple[str, str]]) -> None:
        self.body.append(
            {
                "type": "FactSet",
                "facts": [{"title": t, "value": clip(v, self.limits.text)} for t, v in facts],
            }
        )

    def build(self) -> dict[str, Any]:
        card: dict[str, Any] = {
            "type": "AdaptiveCard",
            "$schema": SCHEMA,
            "version": VERSION,
            "body": self.body,
        }
        if self.actions:
            card["actions"] = self.actions
        msteams: dict[str, Any] = {"width": "Full"}
        if self.mentions.entities:
            msteams["entities"] = self.mentions.entities
        card["msteams"] = msteams
        return card


def card_bytes(card: Mapping[str, Any]) -> int:
    """The card's size as aiohttp sends it (``json.dumps``, non-ASCII as ``\\uXXXX``)."""
    return len(json.dumps(card).encode())


def _summary(text: str) -> str:
    return clip(" ".join(text.split()), MAX_SUMMARY) or ELLIPSIS


def _caller(c: _Card, v: CallView) -> str:
    p = v.caller
    if p.mention:
        return c.person(p)
    if p.name and p.number and p.number != p.name:
        return f"{escape(p.name)} ({escape(p.number)})"
    return escape(p.label)


def _title(c: _Card, v: CallView) -> None:
    """``🔔 Ringing · M. de Jong (+31 50 123 4567) → +31 50 800 9000``, bold."""
    c.text(
        f"{v.emoji} {escape(v.status_text)} · {_caller(c, v)} → {escape(v.line)}",
        weight="Bolder",
        size="Medium",
    )


def _who(c: _Card, v: CallView) -> None:
    c.text(c.phrase(v.who))
    for t in v.transfers[: c.limits.steps]:
        c.text(f"↪ {c.phrase(t.phrase)}", spacing="None")


def _facts(v: CallView) -> str:
    return escape(v.facts)


def _fallback(v: CallView) -> str:
    """Plain one-liner for notifications and previews (never a mention)."""
    return f"{v.emoji} {v.status_text}: {v.caller.with_number} → {v.line} · {plain(v.who)}"


def _fit(build: Any) -> dict[str, Any]:
    """Build with the normal limits; rebuild tighter while the card is too large."""
    limits = _Limits()
    card: dict[str, Any] = build(_Card(limits))
    for _ in range(6):
        if card_bytes(card) <= MAX_CARD_BYTES:
            break
        limits = limits.tighter()
        card = build(_Card(limits))
    return card


def root(v: CallView) -> TeamsMessage:
    """The live card of a call: its current state at a glance, updated in place."""

    def build(c: _Card) -> dict[str, Any]:
        _title(c, v)
        _who(c, v)
        c.text(_facts(v), isSubtle=True, size="Small")
        return c.build()

    return TeamsMessage(_summary(_fallback(v)), _fit(build))


def reply(step: StepView) -> TeamsMessage:
    """One thread reply: one step of the story with its local time."""

    def build(c: _Card) -> dict[str, Any]:
        c.text(f"{step.at} · {c.phrase(step.phrase)}")
        return c.build()

    return TeamsMessage(_summary(f"{step.at} {step.text}"), _fit(build))


def route_mention(c: _Card, mention: str) -> str:
    """A route's mention: a UPN (bare or in ``<at>…</at>``) is mentioned, the rest shown."""
    inner = _AT_TAG.sub("", mention).strip()
    if _EMAIL.match(inner):
        tag = c.mentions.tag(inner, inner.split("@", 1)[0])
        if tag is not None:
            return tag
    return escape(inner if inner.startswith("@") else f"@{inner}")


def missed_alert(
    v: CallView, *, mentions: tuple[str, ...] = (), live_link: str | None = None
) -> TeamsMessage:
    """The prominent alert for a call nobody answered; ``mentions`` (the route's) lead it and
    ``live_link`` becomes an "Open the live call thread" button."""

    def build(c: _Card) -> dict[str, Any]:
        c.text(f"{MISSED} Missed call", weight="Bolder", size="Large", color="Attention")
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
        c.text(c.phrase(v.who))
        if live_link and live_link.startswith("https://"):
            c.actions.append(
                {"type": "Action.OpenUrl", "title": "Open the live call thread", "url": live_link}
            )
        return c.build()

    when = f"{v.started}, rang {v.ring_time}" if v.ring_time else v.started
    text = f"{MISSED} Missed call from {v.caller.with_number} on {v.line} at {when}"
    return TeamsMessage(_summary(text), _fit(build))


def _rang_for(v: CallView) -> str:
    if v.ring_time:
        return v.ring_time
    return "unknown" if v.rung else "no phone rang"


def summary(v: CallView, *, mentions: tuple[str, ...] = ()) -> TeamsMessage:
    """One card when the call ends: state, people, and the whole story."""

    def build(c: _Card) -> dict[str, Any]:
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

    return TeamsMessage(_summary(_fallback(v)), _fit(build))


def render(content: Content, users: Mapping[str, str], link: str | None) -> OutgoingMessage:
    """Delivery's entry point: stored render input -> Teams message.

    ``users`` maps e-mail addresses to Teams identities (user principal names, from
    :meth:`TeamsNotifier.lookup_user`); those people are mentioned, everyone else named.
    """
    if isinstance(content, CaseStepContent):
        return OutgoingMessage(text=step_sentence(content))
    message = build(
        content,
        users,
        link,
        root=root,
        reply=reply,
        missed_alert=lambda v, route, live: missed_alert(v, mentions=route, live_link=live),
        summary=lambda v, route: summary(v, mentions=route),
    )
    return OutgoingMessage(text=message.text, card=message.card)
