"""Callback cases: the team's obligation to call one customer back, as a pure fold.

A case belongs to one customer number (E.164) within one *scope* (one organisation; see the
rules' ``callbacks``). Everything that happened to that number is a :data:`Fact`: a missed
call (on a route that alerts), an answered call from the number, an outbound call to it
(answered or not), a person's click (claim, release, done). :func:`fold` turns the facts of
one number, in any order and with any duplication, plus the clock, into its cases:

- a missed call opens a case when none is open; further missed calls while it is open are
  stacked on it (one alert, updated; one thread reply per new miss);
- the customer got through (an answered inbound call) or was called back (an answered
  outbound call) closes it, with who and when; an unanswered outbound call is an attempt;
- a claim marks who is calling back (a second person's claim is refused: the first stands),
  a release undoes it, *done* closes it by hand;
- an open, unclaimed case gets one escalation once it is older than the route's
  ``escalate_after`` (the deadline is computed by the rules, which may pause the clock
  outside office hours), and closes as not called back at its ``callback_window``.

Only facts at or after a case opened belong to it; facts of a number with no open case are
kept but change nothing. Clicks name the case they were made on (its id: the story id of its
first missed call), so a click on an old alert never touches a newer case.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Final, Literal

import msgspec

Action = Literal["claim", "release", "done"]
ACTIONS: Final[tuple[Action, ...]] = ("claim", "release", "done")
Closed = Literal["got_through", "called_back", "done", "expired"]
StepKind = Literal["missed", "attempt", "claimed", "released", "escalated", "closed"]


class CaseKey(msgspec.Struct, frozen=True, order=True):
    """Which cases a fact belongs to: one customer number in one organisation."""

    scope: str
    number: str  # E.164


class AlertTo(msgspec.Struct, frozen=True, array_like=True):
    """One destination of a missed call's alert, with the mentions its routing gave it
    there (the route's and that destination's own, as a missed alert without a case)."""

    destination: str
    mentions: tuple[str, ...] = ()


class Missed(msgspec.Struct, frozen=True, tag="missed", kw_only=True):
    """A missed inbound call from the number on a route that alerts (and keeps cases)."""

    story_id: str
    at: datetime  # when the customer called
    caller: str  # how the caller was shown (name or number)
    dialled: str  # the line they called
    rung: tuple[str, ...]  # who was rung, as shown
    destinations: tuple[str, ...]  # where its alert goes (the rules' destination names)
    mentions: tuple[str, ...] = ()  # every alert's mentions (the escalation's default)
    alerts: tuple[AlertTo, ...] = ()  # each alert's own (none in facts stored by earlier versions)
    escalate_at: datetime | None = None  # None: never escalate
    escalate_to: tuple[str, ...] = ()  # whom an escalation mentions
    expire_at: datetime | None = None  # None: never expires


class Answered(msgspec.Struct, frozen=True, tag="answered", kw_only=True):
    """An inbound call from the number that someone answered: the customer got through."""

    story_id: str
    at: datetime  # answered at
    by: str


class Attempt(msgspec.Struct, frozen=True, tag="attempt", kw_only=True):
    """An outbound call to the number (not internal): answered, or ended unanswered."""

    story_id: str
    at: datetime  # answered at, or started at when nobody answered
    by: str  # the colleague who called
    answered: bool


class Click(msgspec.Struct, frozen=True, tag="click", kw_only=True):
    """A person's button press on a case's alert."""

    click_id: str  # idempotency key (the platform's action id)
    case_id: str  # the case whose alert carried the button
    at: datetime  # when the bridge received it
    action: Action
    user_id: str  # the platform's user id (for mentions)
    user: str  # the name shown


Fact = Missed | Answered | Attempt | Click

_RANK: Final[dict[type[Fact], int]] = {Missed: 0, Answered: 1, Attempt: 1, Click: 2}


def fact_id(fact: Fact) -> str:
    """A stable identity of a fact within its number (a story contributes one per number)."""
    if isinstance(fact, Click):
        return f"click:{fact.click_id}"
    return f"story:{fact.story_id}"


def _order(fact: Fact) -> tuple[datetime, int, str, bytes]:
    """Fold order: time, then misses before calls before clicks, then identity, then content
    (so even two versions of one fact give the same fold whatever their arrival order)."""
    return (fact.at, _RANK[type(fact)], fact_id(fact), encode_fact(fact))


class Claim(msgspec.Struct, frozen=True, kw_only=True):
    user_id: str
    user: str
    at: datetime


class Closing(msgspec.Struct, frozen=True, kw_only=True):
    how: Closed
    at: datetime
    by: str | None = None  # who answered, called back or closed it (None: expired)
    by_id: str | None = None  # their platform user id, for a click


class Step(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One line of the case's story (a reply in its alert's thread)."""

    kind: StepKind
    at: datetime
    source: str = ""  # the fact it tells (fact_id; none for the clock's escalation)
    by: str | None = None
    rung: tuple[str, ...] = ()  # for a miss
    how: Closed | None = None  # for the closing
    mentions: tuple[str, ...] = ()  # for an escalation


class Case(msgspec.Struct, frozen=True, kw_only=True):
    """Everything known about one callback case, derived only from its facts and the clock."""

    id: str  # the story id of its first missed call (where its alert lives)
    key: CaseKey
    caller: str
    opened_at: datetime
    misses: tuple[Missed, ...]
    attempts: tuple[Attempt, ...]  # unanswered outbound calls
    claim: Claim | None
    escalated_at: datetime | None
    closing: Closing | None
    steps: tuple[Step, ...]  # after the first miss, in order

    @property
    def open(self) -> bool:
        return self.closing is None

    @property
    def first(self) -> Missed:
        return self.misses[0]

    @property
    def destinations(self) -> tuple[str, ...]:
        """Where the case's alert goes: every destination any of its misses alerts."""
        return tuple(dict.fromkeys(d for m in self.misses for d in m.destinations))

    def mentions_for(self, destination: str) -> tuple[str, ...]:
        """Whom the case's alert mentions at ``destination``: what the routing of the first
        miss alerting there gave it (a fact stored without ``alerts``: all its mentions)."""
        for miss in self.misses:
            for alert in miss.alerts:
                if alert.destination == destination:
                    return alert.mentions
            if not miss.alerts and destination in miss.destinations:
                return miss.mentions
        return ()

    def next_check(self) -> datetime | None:
        """When the clock alone will change this case next (None: never)."""
        if not self.open:
            return None
        due = [self.first.expire_at]
        if self.escalated_at is None and self.claim is None:
            due.append(self.first.escalate_at)
        found = [at for at in due if at is not None]
        return min(found) if found else None


class _Open:
    """A case being folded (mutable while its facts are applied)."""

    def __init__(self, miss: Missed, key: CaseKey) -> None:
        self.key = key
        self.misses = [miss]
        self.attempts: list[Attempt] = []
        self.claim: Claim | None = None
        self.escalated_at: datetime | None = None
        self.closing: Closing | None = None
        self.steps: list[Step] = []

    @property
    def first(self) -> Missed:
        return self.misses[0]

    def tick(self, until: datetime, *, inclusive: bool) -> None:
        """Let the clock run to ``until`` (a fact at exactly a deadline comes first, so a
        callback at the deadline is not also an escalation): escalate when due and
        unclaimed, expire."""
        expire, escalate = self.first.expire_at, self.first.escalate_at

        def due(at: datetime | None) -> bool:
            return at is not None and (at <= until if inclusive else at < until)

        if (
            due(escalate)
            and escalate is not None
            and self.escalated_at is None
            and self.claim is None
            and (expire is None or escalate < expire)
        ):
            self._escalate(escalate)
        if due(expire) and expire is not None:
            self._close(Closing(how="expired", at=expire))

    def apply(self, fact: Fact) -> None:
        if isinstance(fact, Missed):
            self.misses.append(fact)
            self.steps.append(Step(kind="missed", at=fact.at, source=fact_id(fact), rung=fact.rung))
        elif isinstance(fact, Answered):
            self._close(Closing(how="got_through", at=fact.at, by=fact.by), fact_id(fact))
        elif isinstance(fact, Attempt):
            if fact.answered:
                self._close(Closing(how="called_back", at=fact.at, by=fact.by), fact_id(fact))
            else:
                self.attempts.append(fact)
                self.steps.append(
                    Step(kind="attempt", at=fact.at, source=fact_id(fact), by=fact.by)
                )
        elif fact.case_id == self.first.story_id:
            self._click(fact)

    def _click(self, click: Click) -> None:
        if click.action == "claim" and self.claim is None:
            self.claim = Claim(user_id=click.user_id, user=click.user, at=click.at)
            self.steps.append(
                Step(kind="claimed", at=click.at, source=fact_id(click), by=click.user)
            )
        elif click.action == "release" and self.claim is not None:
            self.claim = None
            self.steps.append(
                Step(kind="released", at=click.at, source=fact_id(click), by=click.user)
            )
            escalate = self.first.escalate_at
            if escalate is not None and escalate <= click.at and self.escalated_at is None:
                self._escalate(click.at)  # released past the deadline: nobody is on it
        elif click.action == "done":
            closing = Closing(how="done", at=click.at, by=click.user, by_id=click.user_id)
            self._close(closing, fact_id(click))

    def _escalate(self, at: datetime) -> None:
        self.escalated_at = at
        self.steps.append(Step(kind="escalated", at=at, mentions=self.first.escalate_to))

    def _close(self, closing: Closing, source: str = "") -> None:
        self.closing = closing
        self.steps.append(
            Step(kind="closed", at=closing.at, source=source, by=closing.by, how=closing.how)
        )

    def freeze(self) -> Case:
        return Case(
            id=self.first.story_id,
            key=self.key,
            caller=self.first.caller,
            opened_at=self.first.at,
            misses=tuple(self.misses),
            attempts=tuple(self.attempts),
            claim=self.claim,
            escalated_at=self.escalated_at,
            closing=self.closing,
            steps=tuple(self.steps),
        )


def fold(key: CaseKey, facts: Iterable[Fact], now: datetime) -> list[Case]:
    """The cases of one number, oldest first, as of ``now`` (facts after ``now`` count too:
    the clock only decides escalations and expiries)."""
    distinct = {fact_id(f): f for f in sorted(facts, key=_order)}  # one per identity: the last
    cases: list[Case] = []
    current: _Open | None = None
    for fact in sorted(distinct.values(), key=_order):
        if current is not None:
            current.tick(fact.at, inclusive=False)
            if current.closing is not None:
                cases.append(current.freeze())
                current = None
        if current is None:
            if isinstance(fact, Missed):
                current = _Open(fact, key)
            continue
        current.apply(fact)
        if current.closing is not None:
            cases.append(current.freeze())
            current = None
    if current is not None:
        current.tick(now, inclusive=True)
        cases.append(current.freeze())
    return cases


def case_of(cases: Iterable[Case], story_id: str) -> Case | None:
    """The case a missed call (by its story id) belongs to, if any."""
    return next((c for c in cases if any(m.story_id == story_id for m in c.misses)), None)


def waited(case: Case) -> timedelta | None:
    """From the first miss until the case was closed (None while open)."""
    return None if case.closing is None else case.closing.at - case.opened_at


def step_slot(case: Case, step: Step) -> str:
    """The outbox slot of a step's reply in the alert's thread (stable as the case grows)."""
    identity = [case.id, step.kind, step.at.isoformat(), step.source, step.by or "", step.how or ""]
    return "alert:" + hashlib.sha256(msgspec.json.encode(identity)).hexdigest()[:20]


# -- the buttons' payload -----------------------------------------------------------------------


class CaseRef(msgspec.Struct, frozen=True, array_like=True):
    """What a case's button carries back: which case of which number (signed by the
    platform's request signature, so it cannot be forged)."""

    scope: str
    number: str
    case_id: str

    @property
    def key(self) -> CaseKey:
        return CaseKey(self.scope, self.number)


ACTION_PREFIX: Final = "callbridge_case_"  # a button's action_id: prefix + the action


def encode_ref(ref: CaseRef) -> str:
    return msgspec.json.encode(ref).decode()


def decode_ref(text: str) -> CaseRef:
    """Raises ``ValueError`` when ``text`` is not a case reference."""
    try:
        return msgspec.json.decode(text, type=CaseRef)
    except msgspec.DecodeError as err:
        raise ValueError(f"not a case reference: {err}") from None


def kind_of(fact: Fact) -> str:
    """The fact's kind as stored (its tag)."""
    return {Missed: "missed", Answered: "answered", Attempt: "attempt", Click: "click"}[type(fact)]


def fingerprint(bodies: Iterable[bytes]) -> str:
    """Identifies a set of encoded facts (:func:`encode_fact`), whatever their order: the
    store compares it with what a refold folded, to tell whether facts arrived meanwhile."""
    digest = hashlib.sha256()
    for body in sorted(bodies):
        digest.update(len(body).to_bytes(4, "big"))
        digest.update(body)
    return digest.hexdigest()[:32]


FACT_DECODER: Final = msgspec.json.Decoder(Fact)
FACT_ENCODER: Final = msgspec.json.Encoder(order="deterministic")


def encode_fact(fact: Fact) -> bytes:
    return FACT_ENCODER.encode(fact)


def decode_fact(data: bytes) -> Fact:
    fact: Fact = FACT_DECODER.decode(data)
    return fact
