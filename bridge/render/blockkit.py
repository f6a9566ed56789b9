"""Slack Block Kit building blocks (pure): escaping, cutting to Slack's limits, blocks.

- Every user-controlled string (names, numbers, provider reasons) goes through
  :func:`escape` (``&``, ``<``, ``>``), so nobody can inject mentions such as ``<!channel>`` or
  links; mention strings we were given (``<@U123>``, ``<!subteam^S1>``) are kept as they are.
- Blocks stay within Slack's limits (at most 50 blocks, section text 3000 characters, field
  2000, header 150): long people lists end in ``… and N more`` and any other overlong text is
  cut with an ellipsis, never inside a mention, link or ``&amp;`` entity.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from bridge.render.view import PersonView, Phrase

MAX_BLOCKS: Final = 50
MAX_SECTION: Final = 3000
MAX_FIELD: Final = 2000
MAX_HEADER: Final = 150
MAX_TEXT: Final = 3000  # the fallback `text`; Slack allows 40000, notifications show far less
ELLIPSIS: Final = "…"

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


def section(text: str, *, fields: Iterable[str] = ()) -> Block:
    block: Block = {"type": "section", "text": md(clip(text, MAX_SECTION))}
    field_list = [md(clip(f, MAX_FIELD)) for f in fields]
    if field_list:
        block["fields"] = field_list[:10]
    return block


def md(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


def context(text: str) -> Block:
    return {"type": "context", "elements": [md(clip(text, MAX_SECTION))]}


def header(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": clip(text, MAX_HEADER)}}


def message(text: str, blocks: list[Block]) -> SlackMessage:
    return SlackMessage(text=clip(text, MAX_TEXT) or ELLIPSIS, blocks=tuple(blocks[:MAX_BLOCKS]))


def plain_text(text: str, limit: int) -> dict[str, Any]:
    """A ``plain_text`` object (shown literally: no escaping) of at most ``limit``."""
    return {"type": "plain_text", "text": clip(text, limit) or ELLIPSIS, "emoji": True}
