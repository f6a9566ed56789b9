"""The alert card a Teams button press is answered with: the case as the press left it.

Universal Actions let a bot answer ``Action.Execute`` with a card (an invoke response of type
``application/vnd.microsoft.card.adaptive``); Teams shows it at once in place of the pressed
card, to the presser alone ("replace for the interactor"). Everyone else's card changes through the
normal reconciliation (the Bot Connector's update), a moment later and paced, which ends up
showing the presser the same card. So the answer is the alert as delivery will show it next:

1. the story's missed-call alerts on Teams (:meth:`Store.shown_alerts`), and of them the one
   pressed (:func:`shown_on`: by the card's message id, ``replyToId``, else by conversation);
2. its stored content (what delivery shows) with the case folded again with every fact
   stored, the press included (:func:`refreshed`);
3. rendered by the Teams platform as delivery would render it (``Render``: mentions, the link
   to the live thread, the buttons);
4. with, for the presser alone, what their press did not do (:func:`with_note`: "Alice is
   already calling back (since 14:05)"), the same words as Slack's private answers.

When any of it cannot be had (the alert was retracted or never planned for Teams, the store
cannot be read, the case is no longer kept) the press is answered with those words as a
message instead, as before: the press itself is stored either way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import msgspec

from bridge.core import plan
from bridge.core.cases import Case, CaseRef, Fact, fold
from bridge.core.plan import MissedContent
from bridge.notify import decode_ref
from bridge.notify.teams_api import split_channel
from bridge.render.adaptivecard import escape
from bridge.store import ShownAlert, Store

Card = Mapping[str, Any]
Render = Callable[[MissedContent, str | None], Awaitable[Card | None]]
"""An alert's content and its story's live root (encoded ref) -> the Teams card delivery
would send for it (None: Teams does not post here, e.g. not configured)."""

PLATFORM: Final = "teams"


@dataclass(frozen=True, slots=True)
class Pressed:
    """Where the pressed card is, as the invoke activity says."""

    conversation: str  # conversation.id (a channel's may carry ";messageid=…")
    message_id: str | None  # replyToId: the message holding the card


def shown_on(alerts: Sequence[ShownAlert], pressed: Pressed) -> ShownAlert | None:
    """The alert whose card was pressed: the one posted as ``pressed.message_id``, else the
    one in the pressed conversation, else the only one (None: cannot tell)."""
    if pressed.message_id:
        for alert in alerts:
            posted = decode_ref(alert.ref)
            if posted is not None and posted.ts_or_id == pressed.message_id:
                return alert
    conversation = pressed.conversation.split(";", 1)[0]  # a channel's: ";messageid=…"
    there = [a for a in alerts if split_channel(a.channel)[1] == conversation]
    if len(there) == 1:
        return there[0]
    return alerts[0] if len(alerts) == 1 else None


def refreshed(
    content: bytes | None, ref: CaseRef, facts: Sequence[Fact], now: datetime
) -> MissedContent | None:
    """The alert ``content`` with its case folded again from ``facts`` (the facts of the
    number ``ref`` names) at ``now`` (None: the content is not an alert of that case, or the
    case is no longer kept)."""
    if content is None:
        return None
    shown = plan.decode(content)
    if not isinstance(shown, MissedContent) or shown.case is None:
        return None
    if (shown.case.id, shown.case.key) != (ref.case_id, ref.key):
        return None
    case = _case(fold(ref.key, facts, now), ref.case_id)
    return (
        None if case is None else msgspec.structs.replace(shown, case=plan.case_on("teams", case))
    )


def _case(cases: Sequence[Case], case_id: str) -> Case | None:
    return next((c for c in cases if c.id == case_id), None)


def with_note(card: Card, note: str) -> dict[str, Any]:
    """``card`` with ``note`` at the end of its body, above the buttons (only the presser is
    sent this card)."""
    text = {"type": "TextBlock", "text": f"ⓘ {escape(note)}", "wrap": True}
    body = [*card.get("body", ()), {**text, "separator": True, "spacing": "Medium"}]
    return {**card, "body": body}


async def alert_card(
    store: Store,
    render: Render,
    ref: CaseRef,
    pressed: Pressed,
    facts: Sequence[Fact],
    now: datetime,
) -> Card | None:
    """The pressed alert's card as delivery will show it next (None: cannot be had); raises
    ``StoreError``."""
    shown = shown_on(await store.shown_alerts(ref.case_id, PLATFORM), pressed)
    if shown is None:
        return None
    content = refreshed(shown.content, ref, facts, now)
    return None if content is None else await render(content, shown.root_ref)
