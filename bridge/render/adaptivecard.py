"""Adaptive Card building blocks for Teams (pure): escaping, mentions, size limits.

- TextBlocks render a markdown subset (bold, italic, lists, ``[links](url)``). Every
  user-controlled string (names, numbers, provider reasons) goes through :func:`escape`, which
  backslash-escapes the characters that start markup, so nobody can inject a link or
  formatting. ``<`` and ``>`` are escaped too, so a name cannot fake an ``<at>`` mention.
- People with a known Teams identity are mentioned as ``<at>Name</at>`` with a matching
  ``msteams.entities`` mention object (:class:`Mentions`). Route mentions from the rules file
  that are e-mail addresses (UPNs), bare or as ``<at>address</at>``, become real mentions; any
  other route mention is shown as ``@text`` (:func:`route_mention`).
- A card stays well under Teams' 28 KB activity limit: people lists end in ``… and N more``,
  lists show at most :data:`MAX_STEPS` lines, long texts are cut, and if the encoded card is
  still over :data:`MAX_CARD_BYTES` everything is rebuilt with tighter limits (:func:`fit`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from bridge.core.mentions import email_of
from bridge.render.view import PersonView, Phrase

SCHEMA: Final = "http://adaptivecards.io/schemas/adaptive-card.json"
VERSION: Final = "1.5"
MAX_CARD_BYTES: Final = 20_000  # Teams allows ~28 KB for the whole activity
MAX_TEXT: Final = 2000  # one TextBlock
MAX_PEOPLE: Final = 25  # people named in one phrase before "… and N more"
MAX_STEPS: Final = 40  # timeline lines in a summary
MAX_SUMMARY: Final = 500  # the plain activity summary
ELLIPSIS: Final = "…"

Element = dict[str, Any]


@dataclass(frozen=True, slots=True)
class TeamsMessage:
    text: str
    card: Mapping[str, Any]


_MARKUP: Final = re.compile(r"([\\`*_~\[\]<>])")
_AT_TAG: Final = re.compile(r"</?at>", re.IGNORECASE)


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
class Mentions:
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
class Limits:
    text: int = MAX_TEXT
    people: int = MAX_PEOPLE
    steps: int = MAX_STEPS

    def tighter(self) -> Limits:
        return Limits(max(self.text // 2, 80), max(self.people // 2, 2), max(self.steps // 2, 3))


class Card:
    """Builds one card: TextBlocks from phrases, with their mentions."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.mentions = Mentions()
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


def summary_text(text: str) -> str:
    return clip(" ".join(text.split()), MAX_SUMMARY) or ELLIPSIS


def fit(build: Callable[[Card], dict[str, Any]]) -> dict[str, Any]:
    """Build with the normal limits; rebuild tighter while the card is too large."""
    limits = Limits()
    card: dict[str, Any] = build(Card(limits))
    for _ in range(6):
        if card_bytes(card) <= MAX_CARD_BYTES:
            break
        limits = limits.tighter()
        card = build(Card(limits))
    return card


def route_mention(c: Card, mention: str) -> str:
    """A route's mention: a UPN (bare or in ``<at>…</at>``) is mentioned, the rest shown."""
    if (email := email_of(mention)) is not None:
        tag = c.mentions.tag(email, email.split("@", 1)[0])
        if tag is not None:
            return tag
    inner = _AT_TAG.sub("", mention).strip()
    return escape(inner if inner.startswith("@") else f"@{inner}")
