"""What a click on a case's buttons did not do, as the clicker alone is told it (Slack's
ephemeral answer, Teams' answer to the invoke), whichever platform the button was on.

The click is already stored when this runs, and the alert changes through the normal
reconciliation; this only explains to the clicker what their click did not do:

- *I'll call back* on a case someone else claimed: "Alice is already calling back (since
  14:05)" (the first claim stands, as the fold says);
- any click on a case that was closed when it came: "This case is closed: called back by
  Alice at 14:32";
- *Release* (or *Done*) of someone else's claim is allowed, and says whose claim it was.

The decision (:func:`answer`) is pure: the case as it stood when the click came (its facts
up to the click, folded at the click's time), the click, the rules' time zone;
:func:`explanation` reads the facts it needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo

from bridge.core.cases import Case, CaseKey, Click, Closing, Fact, fact_id, fold
from bridge.store import Store

# -- the decision (pure) -------------------------------------------------------------------------


def _time(at: datetime, click: Click, tz: tzinfo) -> str:
    """``14:05``, with the date when it was another day than the click."""
    local, today = at.astimezone(tz), click.at.astimezone(tz)
    return local.strftime("%H:%M" if local.date() == today.date() else "%d %b %H:%M")


def _closed(closing: Closing, click: Click, tz: tzinfo) -> str:
    at = _time(closing.at, click, tz)
    by = closing.by or "someone"
    match closing.how:
        case "got_through":
            return f"the customer got through, answered by {by} at {at}"
        case "called_back":
            return f"called back by {by} at {at}"
        case "done":
            return f"closed by {by} at {at}"
        case "expired":
            return f"not called back in time (expired at {at})"


def _before(fact: Fact, click: Click) -> bool:
    """Whether the fold applies ``fact`` before ``click`` (its order: time, then calls
    before clicks, then identity)."""
    if fact.at != click.at:
        return fact.at < click.at
    return not isinstance(fact, Click) or fact_id(fact) < fact_id(click)


def case_at_click(key: CaseKey, facts: Sequence[Fact], click: Click) -> Case | None:
    """The case ``click`` was made on, as it stood when the click came: the facts the fold
    applies before it, folded at its time (None: no such case is kept). Two claims at the
    same instant: the one the fold lets win is not refused, the other is."""
    earlier = [f for f in facts if _before(f, click)]
    return next((c for c in fold(key, earlier, click.at) if c.id == click.case_id), None)


def answer(case: Case | None, click: Click, tz: tzinfo) -> str | None:
    """What to tell the clicker (None: nothing, the alert shows what they did)."""
    if case is None:
        return (
            "This callback case is no longer kept (retention removed it, or its call was "
            "merged into another): nothing changed."
        )
    if case.closing is not None:
        return f"This case is closed: {_closed(case.closing, click, tz)}. Nothing changed."
    claim = case.claim
    if click.action == "claim":
        if claim is not None and claim.user_id != click.user_id:
            return f"{claim.user} is already calling back (since {_time(claim.at, click, tz)})."
        return None
    if click.action == "release" and claim is None:
        return "Nobody is calling this customer back: there was no claim to release."
    if claim is not None and claim.user_id != click.user_id:
        since = _time(claim.at, click, tz)
        if click.action == "release":
            return (
                f"You released {claim.user}'s claim ({claim.user} was calling back since "
                f"{since}): nobody is calling back now."
            )
        return f"You closed the case {claim.user} had claimed (calling back since {since})."
    return None


async def facts_of(store: Store, key: CaseKey) -> list[Fact]:
    """The stored facts of one number (as a refold reads them); raises ``StoreError``."""
    history = (await store.case_facts([key])).get(key)
    return list(history.facts) if history else []


async def explanation(store: Store, key: CaseKey, click: Click, tz: tzinfo) -> str | None:
    """What to tell the clicker of a stored click (None: nothing); raises ``StoreError``."""
    return answer(case_at_click(key, await facts_of(store, key), click), click, tz)
