"""Callback cases for rendering tests, folded by bridge.core.cases.fold from hand-written facts.

The story (Europe/Amsterdam, CET = UTC+1, on Wednesday 2026-12-02): M. de Jong
(+31 50 123 4567) calls the support line +31 50 800 9000 at 14:02; Johan and Sanne are rung,
nobody answers. The case escalates to ``<!subteam^S0123>`` 30 minutes after the first miss
unless someone claims it, and closes as not called back after 3 days. Alice (Slack user
``UALICE``) and Bob are colleagues. Every state the alert can show has a builder here (its
``now``: minutes after the first miss, when the case is looked at); the expected renderings are
written by hand in the test modules.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bridge.core.calls import Call
from bridge.core.cases import Answered, Attempt, Case, CaseKey, Click, Fact, Missed, fold
from bridge.core.plan import CaseStepContent, MissedContent
from tests.render import JOHAN, SANNE, ev
from tests.render import call as fold_call

TZ = "Europe/Amsterdam"
KEY = CaseKey("acme", "+31501234567")
FIRST = datetime(2026, 12, 2, 13, 2, tzinfo=UTC)  # 14:02 in Amsterdam
ESCALATE_TO = ("<!subteam^S0123>",)
BOTH = ("Johan | Voys", "Sanne de Vries")


def at(minutes: float) -> datetime:
    """``minutes`` after the first miss (14:02 local)."""
    return FIRST + timedelta(minutes=minutes)


def miss(story: str, minutes: float, rung: tuple[str, ...] = BOTH) -> Missed:
    start = at(minutes)
    return Missed(
        story_id=story,
        at=start,
        caller="M. de Jong",
        dialled="+31508009000",
        rung=rung,
        destinations=("support",),
        mentions=("<!here>",),
        escalate_at=start + timedelta(minutes=30),
        escalate_to=ESCALATE_TO,
        expire_at=start + timedelta(days=3),
    )


def click(minutes: float, action: str, user: str = "Alice", case: str = "c1") -> Click:
    return Click(
        click_id=f"{user}-{action}-{minutes}",
        case_id=case,
        at=at(minutes),
        action=action,  # type: ignore[arg-type]
        user_id=f"U{user.upper()}",
        user=user,
    )


def tried(minutes: float, by: str, *, answered: bool = False, story: str = "") -> Attempt:
    return Attempt(story_id=story or f"o-{by}-{minutes}", at=at(minutes), by=by, answered=answered)


def case_of(facts: list[Fact], now_minutes: float) -> Case:
    """The one case the facts make, as of ``now_minutes`` after the first miss."""
    (case,) = fold(KEY, facts, at(now_minutes))
    return case


def first_call() -> Call:
    """The alert's own call: the first miss, 14:02, ringing Johan and Sanne for 30 s."""
    start = at(0)
    return fold_call(
        ev("created", 0, start=start),
        ev("ringing", 0, start=start, targets=[JOHAN, SANNE]),
        ev("ended", 30, start=start, reason="no-answer"),
    )


def alert(case: Case | None, mentions: tuple[str, ...] = ()) -> MissedContent:
    return MissedContent(call=first_call(), tz=TZ, mentions=mentions, case=case)


def step_content(case: Case, index: int = -1) -> CaseStepContent:
    """The thread reply of one of the case's steps, as planning makes it."""
    return CaseStepContent(
        step=case.steps[index],
        case_id=case.id,
        caller=case.caller,
        opened_at=case.opened_at,
        tz=TZ,
        number=case.key.number,
    )


# -- every state, as the alert shows it -----------------------------------------------------


def open_case(now: float = 8) -> Case:
    """Missed once at 14:02; nobody on it yet (14:10)."""
    return case_of([miss("c1", 0)], now)


def stacked(now: float = 20) -> Case:
    """Missed at 14:02, 14:09 (rang Johan) and 14:21 (no phone rang); 14:22."""
    return case_of([miss("c1", 0), miss("c2", 7, ("Johan | Voys",)), miss("c3", 19, ())], now)


def claimed(now: float = 38) -> Case:
    """Alice pressed *I'll call back* at 14:05; 14:40 (a claimed case does not escalate)."""
    return case_of([miss("c1", 0), click(3, "claim")], now)


def tried_twice(now: float = 28) -> Case:
    """Alice tried at 14:25 and Bob at 14:28, nobody answered; 14:30."""
    return case_of([miss("c1", 0), tried(23, "Alice"), tried(26, "Bob")], now)


def escalated(now: float = 43) -> Case:
    """Nobody claimed it; escalated at 14:32; 14:45."""
    return case_of([miss("c1", 0)], now)


def got_through(now: float = 60) -> Case:
    """The customer rang again at 14:40 and Bob answered."""
    return case_of([miss("c1", 0), Answered(story_id="a1", at=at(38), by="Bob")], now)


def called_back(now: float = 60) -> Case:
    """Alice tried at 14:25 (no answer), then called back at 14:32 and got the customer."""
    facts = [miss("c1", 0), tried(23, "Alice"), tried(30, "Alice", answered=True, story="o2")]
    return case_of(facts, now)


def done(now: float = 60) -> Case:
    """Alice claimed it at 14:05 and pressed *Done* at 14:11."""
    return case_of([miss("c1", 0), click(3, "claim"), click(9, "done")], now)


def expired(now: float = 4 * 1440) -> Case:
    """Nobody called back within 3 days: escalated at 14:32, closed on Saturday 14:02."""
    return case_of([miss("c1", 0)], now)
