"""The daily digest as an Adaptive Card (pure): the title (bold, large), the headline (bold)
and one line per outcome, then the cases still waiting (at most
:data:`~bridge.render.digest_view.MAX_WAITING`, then ``… and N more``). Names and numbers
are escaped; the digest mentions nobody."""

from __future__ import annotations

from typing import Any

from bridge.render.adaptivecard import Card, TeamsMessage, escape, fit, summary_text
from bridge.render.digest_view import DigestView


def digest(v: DigestView) -> TeamsMessage:
    """The digest card; its text (the activity's summary) is the title and the summary."""

    def build(c: Card) -> dict[str, Any]:
        c.text(escape(v.title), weight="Bolder", size="Large")
        c.text(escape(v.headline), weight="Bolder")
        for count in v.counts:
            c.text(escape(count), spacing="None")
        if v.waiting:
            c.text("Still waiting", weight="Bolder", spacing="Medium")
            for waiting in v.waiting:
                c.text(waiting.line(escape), spacing="None")
            if v.more_text is not None:
                c.text(escape(v.more_text), spacing="None")
        return c.build()

    return TeamsMessage(summary_text(f"{v.title}: {v.summary}"), fit(build))
