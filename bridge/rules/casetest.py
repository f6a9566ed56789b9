"""A rules test's ``case:`` expectation: what a sample call must do to callback cases.

``case: none`` means the call adds nothing to any case (no case opened, stacked, closed or
tried). A mapping means it must add something, and checks what is given:

- ``scope``: the scope of the case it opens or closes;
- ``escalates_at`` / ``expires_at``: local times ``YYYY-MM-DDTHH:MM`` in the rules' time
  zone, or ``never`` (only a missed call that opens or stacks a case has deadlines);
- ``escalate_to``: the mentions of its escalation (``[]``: none).

They are checked against :func:`bridge.rules.callbacks.outcome` of the sample call, so a
test shows exactly what the office hours do to a case's clock.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final, Literal
from zoneinfo import ZoneInfo

from bridge.core.cases import Missed
from bridge.rules.callbacks import CaseOutcome
from bridge.rules.casewords import fact_text, stamp
from bridge.rules.fields import Reader
from bridge.rules.model import NEVER, CaseExpectation
from bridge.rules.yamlpos import Node, Scalar, Seq, join

CASE_KEYS: Final = ("scope", "escalates_at", "expires_at", "escalate_to")
TIME_HINT: Final = '(e.g. "2026-12-01T23:10"; the rules\' timezone applies)'


def local_time(reader: Reader, node: Node | None, path: str, tz: ZoneInfo) -> datetime | None:
    """A local date and time in ``tz`` (an explicit UTC offset is taken as written); a time
    a daylight-saving change skips is an error, a repeated one means the first."""
    if node is None:
        return None
    text = node.text.strip() if isinstance(node, Scalar) else ""
    try:
        naive = datetime.fromisoformat(text)
    except ValueError:
        reader.error(node, path, f'"{text}" is not a local date and time {TIME_HINT}')
        return None
    if naive.tzinfo is not None:
        return naive
    local = naive.replace(tzinfo=tz)
    if local.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != naive:
        reader.error(
            node,
            path,
            f'"{text}" does not exist in {tz.key} (the clocks '
            "skip that hour for daylight saving time; pick another time)",
        )
        return None
    return local


def parse_case(reader: Reader, node: Node, path: str, tz: ZoneInfo) -> CaseExpectation | None:
    if isinstance(node, Scalar) and node.text.strip() == "none":
        return CaseExpectation(none=True)
    spec = reader.mapping(
        node, path, allowed=CASE_KEYS, what="`none` or a mapping of " + ", ".join(CASE_KEYS)
    )
    if spec is None:
        return None
    before = len(reader.problems)
    scope = None
    if (sub := spec.get("scope")) is not None:
        scope = reader.text(sub, join(path, "scope"), example="acme")

    def deadline(key: str) -> datetime | Literal["never"] | None:
        sub = spec.get(key)
        if sub is None:
            return None
        if isinstance(sub, Scalar) and sub.text.strip() == NEVER:
            return NEVER
        return local_time(reader, sub, join(path, key), tz)

    escalates, expires = deadline("escalates_at"), deadline("expires_at")
    mentions = None
    if (sub := spec.get("escalate_to")) is not None:
        empty = isinstance(sub, Seq) and not sub.items
        mentions = (
            () if empty else tuple(v for v, _, _ in reader.texts(sub, join(path, "escalate_to")))
        )
    if len(reader.problems) > before:
        return None
    return CaseExpectation(
        scope=scope, escalates_at=escalates, expires_at=expires, escalate_to=mentions
    )


def check_case(expect: CaseExpectation, got: CaseOutcome, tz: ZoneInfo) -> list[str]:
    """The differences, one line each (none when the expectation holds)."""
    if not got.facts:
        return [] if expect.none else [f"case: expected a case, got none ({got.why})"]
    key, fact = got.facts[0]
    if expect.none:
        return [f"case: expected none, got: {fact_text(key, fact, tz)}"]
    lines = []
    if expect.scope is not None and expect.scope != key.scope:
        lines.append(f"case.scope: expected {expect.scope}, got {key.scope}")
    checks = (
        ("escalates_at", expect.escalates_at, "escalate_at"),
        ("expires_at", expect.expires_at, "expire_at"),
    )
    for name, want, attribute in checks:
        if want is None:
            continue
        shown = want if isinstance(want, str) else stamp(want, tz)
        if not isinstance(fact, Missed):
            lines.append(
                f"case.{name}: expected {shown}, got no deadline (only a missed call that opens "
                f"a case has one; this call {fact_text(key, fact, tz)})"
            )
            continue
        actual: datetime | None = getattr(fact, attribute)
        wanted = None if isinstance(want, str) else want.astimezone(UTC)
        if wanted != (None if actual is None else actual.astimezone(UTC)):
            lines.append(f"case.{name}: expected {shown}, got {stamp(actual, tz)}")
    if expect.escalate_to is not None:
        actual_to = fact.escalate_to if isinstance(fact, Missed) else ()
        if sorted(set(expect.escalate_to)) != sorted(set(actual_to)):
            lines.append(
                f"case.escalate_to: expected {_names(expect.escalate_to)}, got {_names(actual_to)}"
            )
    return lines


def _names(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(values) + "]" if values else "nothing"
