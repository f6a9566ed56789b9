"""Immutable types of a compiled rules file and of a routing decision (no logic, no I/O)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Final, Literal
from zoneinfo import ZoneInfo

# The routing decision's types live in the pure core; re-exported for the rules' modules.
from bridge.core.routing import KINDS as KINDS  # noqa: PLC0414 (re-export)
from bridge.core.routing import Delivery as Delivery  # noqa: PLC0414 (re-export)
from bridge.core.routing import Kind as Kind  # noqa: PLC0414 (re-export)
from bridge.core.routing import RouteResult as RouteResult  # noqa: PLC0414 (re-export)

Direction = Literal["inbound", "outbound"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a rules file, located at a 1-based line and column."""

    file: str
    line: int
    col: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class RulesError(ValueError):
    """The rules file is not usable; ``problems`` lists everything found in one pass."""

    def __init__(self, problems: tuple[Problem, ...]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class SlackTarget:
    channel: str
    mention: tuple[str, ...] = ()


@dataclass(frozen=True)
class TeamsTarget:
    conversation: str
    service_url: str | None = None
    mention: tuple[str, ...] = ()


@dataclass(frozen=True)
class Destination:
    name: str
    slack: SlackTarget | None = None
    teams: TeamsTarget | None = None

    @property
    def mention(self) -> tuple[str, ...]:
        target = self.slack or self.teams
        return target.mention if target is not None else ()

    @property
    def describe(self) -> str:
        if self.slack is not None:
            return f"Slack channel {self.slack.channel}"
        if self.teams is not None:
            return f"Teams conversation {self.teams.conversation}"
        return "nowhere"  # pragma: no cover - the loader requires one of both


@dataclass(frozen=True)
class TimeRange:
    start: time
    end: time | None  # None means the end of the day ("24:00")

    def contains(self, at: time) -> bool:
        return self.start <= at and (self.end is None or at < self.end)

    def __str__(self) -> str:
        end = "24:00" if self.end is None else self.end.strftime("%H:%M")
        return f"{self.start.strftime('%H:%M')}-{end}"


@dataclass(frozen=True)
class Hours:
    """A named weekly schedule: open ranges per ISO weekday (1 = Monday) and closed dates."""

    name: str
    timezone: ZoneInfo
    week: tuple[tuple[TimeRange, ...], ...]  # 7 entries, Monday first
    closed: frozenset[date] = frozenset()


@dataclass(frozen=True)
class Pattern:
    """A number or e-mail pattern as written, compiled to an anchored regex."""

    text: str
    regex: re.Pattern[str]


@dataclass(frozen=True)
class When:
    """Conditions of a route; ``None`` means "not restricted". All given ones must hold."""

    direction: frozenset[Direction] | None = None
    caller: tuple[Pattern, ...] | None = None
    destination: tuple[Pattern, ...] | None = None
    caller_name: tuple[re.Pattern[str], ...] | None = None
    target: tuple[Pattern, ...] | None = None
    internal: bool | None = None
    during: tuple[Hours, ...] | None = None
    outside: tuple[Hours, ...] | None = None


@dataclass(frozen=True)
class CallbackPolicy:
    """How the missed calls of a route become callback cases (bridge/core/cases.py)."""

    scope: str = "default"  # cases are shared by the routes of one scope (one organisation)
    escalate_after: timedelta | None = timedelta(minutes=30)  # None: never escalate
    callback_window: timedelta = timedelta(days=3)  # closes as not called back after this
    escalate_to: tuple[str, ...] = ()  # whom the escalation mentions (else the alert's mentions)
    hours: Hours | None = None  # the clock runs only while these hours are open


@dataclass(frozen=True)
class Callbacks:
    """The file's ``callbacks:`` block: how customer numbers are read, and the defaults."""

    region: str  # ISO country code for numbers dialled without a country code ("NL")
    policy: CallbackPolicy  # of every route that does not say otherwise


@dataclass(frozen=True)
class Actions:
    """What a route (or the ``unmatched`` fallback) posts, and where."""

    live: tuple[str, ...] = ()
    missed: tuple[str, ...] = ()
    summary: tuple[str, ...] = ()
    mention: tuple[str, ...] = ()
    min_ring: timedelta | None = None
    missed_reason: frozenset[str] | None = None
    # Its missed calls open callback cases with this policy (None: ``callback: off``). The
    # loader fills in the file's default policy when a route does not say.
    callback: CallbackPolicy | None = CallbackPolicy()

    def destinations(self, kind: Kind) -> tuple[str, ...]:
        return {"live": self.live, "missed": self.missed, "summary": self.summary}[kind]


@dataclass(frozen=True)
class Route:
    name: str
    when: When
    actions: Actions
    continue_: bool = False
    drop: bool = False


@dataclass(frozen=True)
class SampleCall:
    """A call described in the rules file's ``tests:`` section."""

    direction: Direction
    caller: str
    caller_name: str | None
    destination: str
    at: datetime  # aware, in the ruleset's time zone
    rung: tuple[str, ...]
    answered_by: str | None
    missed: bool
    ended: bool
    reason: str | None
    ring: timedelta


NEVER: Final = "never"


@dataclass(frozen=True)
class CaseExpectation:
    """A test's ``case:``: ``none`` (the call adds nothing to any case), or what it must add.

    Each field is checked only when given; a deadline is an aware time or ``"never"``."""

    none: bool = False
    scope: str | None = None
    escalates_at: datetime | Literal["never"] | None = None
    expires_at: datetime | Literal["never"] | None = None
    escalate_to: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Expectation:
    deliveries: Mapping[Kind, tuple[str, ...]]
    routes: tuple[str, ...] | None = None  # checked only when given
    case: CaseExpectation | None = None  # checked only when given


@dataclass(frozen=True)
class RuleTest:
    name: str
    line: int
    col: int
    call: SampleCall
    expect: Expectation


@dataclass(frozen=True)
class DigestRule:
    """``digest:``: once a day at ``at`` (local, the rules' time zone) on ``days`` (ISO
    weekdays, 1 = Monday), each destination in ``to`` gets its callback case digest."""

    at: time
    to: tuple[str, ...]
    days: frozenset[int]


@dataclass(frozen=True)
class Ruleset:
    source: str
    version: str  # sha256 of the file's text: which rules made a decision
    timezone: ZoneInfo
    destinations: Mapping[str, Destination]
    hours: Mapping[str, Hours]
    routes: tuple[Route, ...]
    unmatched: Actions | None = None
    tests: tuple[RuleTest, ...] = field(default=())
    text: str = field(default="", repr=False)  # the file as loaded (``version`` is its hash)
    callbacks: Callbacks = Callbacks(region="NL", policy=CallbackPolicy())
    digest: DigestRule | None = None

    @property
    def shape(self) -> str:
        """What the file holds, for people: "1 route, 3 destinations"."""
        routes, destinations = len(self.routes), len(self.destinations)
        return f"{counted(routes, 'route')}, {counted(destinations, 'destination')}"


def counted(n: int, noun: str) -> str:
    """ "1 route", "2 routes", "0 routes" (nouns that take an -s)."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
