"""The rules file's own ``tests:``: sample calls and the deliveries they must produce.

Each sample call is turned into the provider events such a call would produce and folded
with :func:`bridge.core.calls.fold`, so a test exercises exactly what a real call would.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

from bridge.core.calls import Call, fold
from bridge.core.events import END_REASONS, Event, Participant
from bridge.core.events import Destination as EventDestination
from bridge.rules.callbacks import outcome
from bridge.rules.casetest import check_case, local_time, parse_case
from bridge.rules.fields import Reader
from bridge.rules.match import UNMATCHED_ROUTE, route
from bridge.rules.model import (
    KINDS,
    Direction,
    Expectation,
    Kind,
    Problem,
    Ruleset,
    RuleTest,
    SampleCall,
)
from bridge.rules.yamlpos import Node, Scalar, Seq, join

CALL_KEYS: Final = (
    "direction",
    "caller",
    "caller_name",
    "destination",
    "at",
    "rung",
    "answered_by",
    "missed",
    "ended",
    "reason",
    "ring",
)
DEFAULT_RING: Final = timedelta(seconds=10)
TALK: Final = timedelta(minutes=1)
_COLLEAGUE_ACCOUNTS: Final = 1000


def parse_tests(reader: Reader, node: Node, ruleset: Ruleset) -> tuple[RuleTest, ...]:
    if not isinstance(node, Seq):
        reader.error(node, "tests", "expected a list of tests (each starting with `- name:`)")
        return ()
    out = []
    for i, item in enumerate(node.items):
        path = f"tests[{i}]"
        spec = reader.mapping(
            item,
            path,
            allowed=("name", "call", "expect"),
            required={
                "name": "say what the test checks",
                "call": "describe the sample call",
                "expect": "list the deliveries, or `expect: none`",
            },
        )
        if spec is None:
            continue
        name_node, call_node, expect_node = spec.get("name"), spec.get("call"), spec.get("expect")
        name = reader.text(name_node, join(path, "name")) if name_node else None
        call = _call(reader, call_node, join(path, "call"), ruleset) if call_node else None
        expect = (
            _expect(reader, expect_node, join(path, "expect"), ruleset) if expect_node else None
        )
        if name and call and expect:
            out.append(RuleTest(name, spec.line, spec.col, call, expect))
    return tuple(out)


def _call(reader: Reader, node: Node, path: str, ruleset: Ruleset) -> SampleCall | None:
    spec = reader.mapping(
        node,
        path,
        allowed=CALL_KEYS,
        required={
            "destination": 'the number dialled, e.g. "+31508009000"',
            "at": 'local time the call starts, e.g. "2026-12-01T23:10"',
        },
    )
    if spec is None:
        return None
    before = len(reader.problems)

    def text(key: str, default: str | None = None) -> str | None:
        sub = spec.get(key)
        return default if sub is None else reader.text(sub, join(path, key))

    def flag(key: str, default: bool) -> bool:
        sub = spec.get(key)
        return default if sub is None else bool(reader.boolean(sub, join(path, key)))

    direction: Direction = "inbound"
    if (value := text("direction")) == "outbound":
        direction = "outbound"
    elif value not in (None, "inbound"):
        reader.error(
            spec.get("direction") or spec,
            join(path, "direction"),
            f'"{value}" is not a direction (inbound or outbound)',
        )
    at = local_time(reader, spec.get("at"), join(path, "at"), ruleset.timezone)
    rung_node = spec.get("rung")
    rung = tuple(v for v, _, _ in reader.texts(rung_node, join(path, "rung"))) if rung_node else ()
    missed, ended = flag("missed", False), flag("ended", True)
    answered_by = text("answered_by")
    reason = text("reason")
    if reason is not None and reason not in END_REASONS:
        reader.error(
            spec.get("reason") or spec,
            join(path, "reason"),
            f'unknown reason "{reason}" (one of: {", ".join(END_REASONS)})',
        )
    if missed and (answered_by is not None or not ended):
        reader.error(
            spec,
            path,
            "a missed call has ended and nobody answered it: remove "
            "`answered_by` / `ended: false`, or `missed: true`",
        )
    ring_node = spec.get("ring")
    ring = reader.duration(ring_node, join(path, "ring")) if ring_node else DEFAULT_RING
    if len(reader.problems) > before or at is None or ring is None:
        return None
    return SampleCall(
        direction=direction,
        caller=text("caller", "anonymous") or "anonymous",
        caller_name=text("caller_name"),
        destination=text("destination") or "",
        at=at,
        rung=rung,
        answered_by=answered_by,
        missed=missed,
        ended=ended,
        reason=reason,
        ring=ring,
    )


def _expect(reader: Reader, node: Node, path: str, ruleset: Ruleset) -> Expectation | None:
    if isinstance(node, Scalar) and node.text.strip() == "none":
        return Expectation(deliveries={}, routes=None)
    spec = reader.mapping(
        node,
        path,
        allowed=(*KINDS, "routes", "case"),
        what="`none` or a mapping of live/missed/summary/routes/case",
    )
    if spec is None:
        return None
    deliveries: dict[Kind, tuple[str, ...]] = {}
    for kind in KINDS:
        if (sub := spec.get(kind)) is None:
            continue
        names = [] if _empty_list(sub) else reader.texts(sub, join(path, kind))
        for value, item, at in names:
            if value not in ruleset.destinations:
                reader.error(item, at, f'unknown destination "{value}"')
        deliveries[kind] = tuple(v for v, _, _ in names)
    routes = None
    if (sub := spec.get("routes")) is not None:
        names = [] if _empty_list(sub) else reader.texts(sub, join(path, "routes"))
        known = {r.name for r in ruleset.routes}
        for value, item, at in names:
            if value not in known:
                reader.error(item, at, f'no route is named "{value}"')
        routes = tuple(v for v, _, _ in names)
    case = None
    if (sub := spec.get("case")) is not None:
        case = parse_case(reader, sub, join(path, "case"), ruleset.timezone)
        if case is None:
            return None
    return Expectation(deliveries=deliveries, routes=routes, case=case)


def _empty_list(node: Node) -> bool:
    return isinstance(node, Seq) and not node.items


def sample_events(sample: SampleCall) -> list[Event]:
    """The provider events a call like ``sample`` produces."""
    t0 = sample.at.astimezone(UTC)
    caller = Participant(
        number=sample.caller,
        name=sample.caller_name,
        account_number=_COLLEAGUE_ACCOUNTS if sample.direction == "outbound" else None,
    )
    rung = tuple(_colleague(who, n) for n, who in enumerate(sample.rung, start=1))
    if not rung and sample.direction == "outbound":
        rung = (Participant(number=sample.destination),)  # someone outside the company

    def event(
        status: str, at: datetime, dest: EventDestination, reason: str | None = None
    ) -> Event:
        return Event(
            call_id="sample",
            timestamp=at,
            status=status,
            direction=sample.direction,
            caller=caller,
            destination=dest,
            reason=reason,
        )

    number = sample.destination
    events = []
    if sample.direction == "inbound":
        events.append(event("created", t0, EventDestination(number=number)))
    if rung:
        events.append(event("ringing", t0, EventDestination(number=number, targets=rung)))
    answered = not sample.missed and (sample.answered_by is not None or sample.ended)
    end_at = t0 + sample.ring
    if answered:
        who = (
            _colleague(sample.answered_by, len(rung) + 1)
            if sample.answered_by is not None
            else rung[0]
            if rung
            else Participant(number=number)
        )
        events.append(event("in-progress", end_at, EventDestination(number=number, target=who)))
        end_at += TALK
    if sample.ended:
        reason = sample.reason or ("completed" if answered else "no-answer")
        events.append(event("ended", end_at, EventDestination(number=number), reason))
    return events


def _colleague(who: str, n: int) -> Participant:
    if "@" in who:
        return Participant(
            number=str(200 + n),
            name=who,
            account_number=_COLLEAGUE_ACCOUNTS + n,
            user_emails=(who,),
        )
    return Participant(number=who, account_number=_COLLEAGUE_ACCOUNTS + n, user_numbers=(who,))


def sample_call(sample: SampleCall) -> Call:
    return fold(sample_events(sample))


def run_tests(ruleset: Ruleset) -> list[Problem]:
    """Run every test; one problem (with a readable diff) per failing test."""
    problems = []
    for i, test in enumerate(ruleset.tests):
        call = sample_call(test.call)
        result = route(ruleset, call)
        lines = []
        for kind in KINDS:
            want = test.expect.deliveries.get(kind, ())
            got = tuple(d.destination for d in result.deliveries if d.kind == kind)
            if sorted(set(want)) != sorted(set(got)):
                lines.append(f"{kind}: expected {_names(want)}, got {_names(got)}")
        routes = result.matched_routes or ((UNMATCHED_ROUTE,) if ruleset.unmatched else ())
        if test.expect.routes is not None and test.expect.routes != result.matched_routes:
            lines.append(
                f"routes: expected {_names(test.expect.routes)}, "
                f"got {_names(result.matched_routes)}"
            )
        if test.expect.case is not None:
            facts = outcome(ruleset, call, result)
            lines.extend(check_case(test.expect.case, facts, ruleset.timezone))
        if lines:
            shown = ", ".join(routes) or "none (no route matched)"
            details = "".join(f"\n    {line}" for line in [*lines, f"matched routes: {shown}"])
            problems.append(
                Problem(
                    ruleset.source,
                    test.line,
                    test.col,
                    f"tests[{i}]",
                    f'test "{test.name}" failed (fix the rules or the test):' + details,
                )
            )
    return problems


def _names(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(values) + "]" if values else "nothing"
