"""Slack Block Kit for the daily digest (pure): a header with the title, a section with the
headline and one line per outcome, and a section listing the cases still waiting (at most
:data:`~bridge.render.digest_view.MAX_WAITING`, then ``… and N more``). Names and numbers
are escaped; the digest mentions nobody."""

from __future__ import annotations

from typing import Final

from bridge.render.blockkit import SlackMessage, clip, escape, header, message, section
from bridge.render.digest_view import DigestView

MAX_LINE: Final = 250  # one waiting case (a caller's name may be long)


def digest(v: DigestView) -> SlackMessage:
    """The digest message; its text (for notifications) is the title and the summary."""
    blocks = [
        header(v.title),
        section("\n".join([f"*{escape(v.headline)}*", *map(escape, v.counts)])),
    ]
    if v.waiting:
        lines = ["*Still waiting*", *(f"• {clip(w.line(escape), MAX_LINE)}" for w in v.waiting)]
        if v.more_text is not None:
            lines.append(escape(v.more_text))
        blocks.append(section("\n".join(lines)))
    return message(escape(f"{v.title}: {v.summary}"), blocks)
