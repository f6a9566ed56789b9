"""The two chat platforms' mention syntaxes, and which of the rules' free-form mentions a
platform can show (pure).

A route's ``mention`` and a case's ``escalate_to`` go to every destination the call's messages
go to, Slack and Teams alike. A Slack mention token (``<@U…>``, ``<!subteam^S…>``,
``<!here>``) mentions nobody in Teams and reads there as markup; a Teams mention (an e-mail
address, bare or as ``<at>…</at>``) mentions nobody in Slack. Each platform gets the
mentions written in its own syntax, and any other text (``@oncall``) as written.
"""

from __future__ import annotations

import re
from typing import Final

_SLACK_MARKUP: Final = re.compile(r"^<[@!#]")  # <@U…>, <!here>, <!subteam^S…>, <#C…>
_AT_TAG: Final = re.compile(r"</?at>", re.IGNORECASE)
_EMAIL: Final = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


def is_slack_markup(mention: str) -> bool:
    """Written in Slack's syntax (a person, a group, ``<!here>``, a channel link)."""
    return bool(_SLACK_MARKUP.match(mention.strip()))


def email_of(mention: str) -> str | None:
    """The e-mail address (UPN) a Teams mention names, bare or in ``<at>…</at>`` (None: it
    names none)."""
    inner = _AT_TAG.sub("", mention).strip()
    return inner if _EMAIL.match(inner) else None


def mentions_on(platform: str, mentions: tuple[str, ...]) -> tuple[str, ...]:
    """``mentions`` without those written in another platform's syntax."""
    if platform == "teams":
        return tuple(m for m in mentions if not is_slack_markup(m))
    if platform == "slack":
        return tuple(m for m in mentions if email_of(m) is None)
    return mentions
