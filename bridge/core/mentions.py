"""Which of the rules' free-form mentions a chat platform can show (pure).

A route's ``mention`` and a case's ``escalate_to`` go to every destination the call's messages
go to, Slack and Teams alike. A Slack mention token (``<@U…>``, ``<!subteam^S…>``,
``<!here>``) mentions nobody in Teams and reads there as markup; a Teams mention (an e-mail
address, bare or as ``<at>…</at>``) mentions nobody in Slack. Each platform gets the
mentions written in its own syntax, and any other text (``@oncall``) as written.
"""

from __future__ import annotations

import re
from typing import Final

_SLACK: Final = re.compile(r"^<[@!][^<>]*>$")
_TEAMS: Final = re.compile(r"^(<at>)?\s*[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+\s*(</at>)?$", re.IGNORECASE)


def shown_on(platform: str, mentions: tuple[str, ...]) -> tuple[str, ...]:
    """``mentions`` without those written in another platform's syntax."""
    if platform == "teams":
        return tuple(m for m in mentions if not _SLACK.match(m.strip()))
    if platform == "slack":
        return tuple(m for m in mentions if not _TEAMS.match(m.strip()))
    return mentions
