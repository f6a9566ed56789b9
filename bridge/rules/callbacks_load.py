"""The callback-case settings of a rules file (issue 16), read strictly with positions.

- The top-level ``callbacks:`` block: ``region`` (how numbers dialled without a country
  code are read; default: the country of the file's ``timezone``) and the policy every route
  gets unless it says otherwise: ``scope``, ``escalate_after``, ``callback_window``,
  ``escalate_to``, ``hours``.
- A route's (or ``unmatched``'s) ``callback:``: ``off`` (its calls take no part in cases),
  or a mapping overriding the block's keys for that route. The clock keys only apply to the
  cases a route's own ``missed`` alerts open, so on a route without ``missed`` only
  ``scope`` may be given.

docs/rules.md ("Callback cases") is the user's description of all of this.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from bridge.core.duration import HINT as DURATION_HINT
from bridge.core.duration import LONGEST, TooLong, format_duration, parse_duration
from bridge.rules.fields import Reader, suggest
from bridge.rules.model import CallbackPolicy, Hours
from bridge.rules.region import alias_hint, is_region, region_of_zone
from bridge.rules.yamlpos import Map, Node, Scalar, describe, join

POLICY_KEYS: Final = ("scope", "escalate_after", "callback_window", "escalate_to", "hours")
BLOCK_KEYS: Final = ("region", *POLICY_KEYS)
CLOCK_KEYS: Final = ("escalate_after", "callback_window", "escalate_to", "hours")
NO_REGION: Final = "ZZ"  # phonenumbers' "unknown region": only +numbers can be read
MAX_OPEN_WEEKS: Final = 52  # a callback window must fit in a year of a schedule's open time
NEVER_WORDS: Final = ("never",)
_SCOPE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
SCOPE_HINT: Final = "letters, digits, - _ and ., at most 64 characters, e.g. acme"
REGION_HINT: Final = "an ISO 3166 country code like NL, BE, DE, GB or US"


@dataclass(frozen=True)
class Block:
    """The ``callbacks:`` block as read."""

    policy: CallbackPolicy = field(default_factory=CallbackPolicy)
    region: str | None = None  # as written and valid; None: derive from the time zone
    region_given: bool = False  # written (even if invalid: then nothing more is said)
    node: Map | None = None


def read_block(reader: Reader, node: Node | None, hours: dict[str, Hours]) -> Block:
    if node is None:
        return Block()
    spec = reader.mapping(node, "callbacks", allowed=BLOCK_KEYS)
    if spec is None:
        return Block()
    region = None
    if (sub := spec.get("region")) is not None:
        region = _region(reader, sub, join("callbacks", "region"))
    policy = _policy(reader, spec, "callbacks", CallbackPolicy(), hours)
    return Block(policy, region, sub is not None, spec)


def read_route(
    reader: Reader,
    node: Node,
    path: str,
    block: Block,
    hours: dict[str, Hours],
    *,
    alerts: bool,
) -> CallbackPolicy | None:
    """A route's ``callback:`` (``path`` ends in ``.callback``); ``alerts``: the route has a
    ``missed`` destination. None means ``off``."""
    if _is_off(node):
        return None
    if isinstance(node, Scalar) and node.boolean:
        reader.error(
            node,
            path,
            "callback cases are on by default (with the policy under `callbacks:`): write "
            "`callback: off`, or a mapping of the keys to change for this route",
        )
        return block.policy
    spec = reader.mapping(
        node, path, allowed=POLICY_KEYS, what="`off` or a mapping of " + ", ".join(POLICY_KEYS)
    )
    if spec is None:
        return block.policy
    if not alerts:
        for key in CLOCK_KEYS:
            if (sub := spec.get(key)) is not None:
                reader.error(
                    sub,
                    join(path, key),
                    f"`{key}` only applies to the cases this route's `missed` alerts open, and "
                    "this route has no `missed` destination (set it on the route that alerts, "
                    "or under `callbacks:` for every route; here only `scope` counts)",
                )
        spec = Map(tuple((k, v) for k, v in spec.items if k.text == "scope"), spec.line, spec.col)
    return _policy(reader, spec, path, block.policy, hours)


def region(
    reader: Reader,
    block: Block,
    tz_node: Node | None,
    tz: ZoneInfo | None,
    *,
    needed: bool,
) -> str:
    """The region numbers are read in: the block's, else the time zone's country. When it
    cannot be derived and some route opens cases, that is a problem asking for ``region``."""
    if block.region is not None:
        return block.region
    if block.region_given or tz is None:
        return NO_REGION  # its problem is already reported
    found = region_of_zone(tz.key)
    if found is not None:
        return found
    if needed:
        alias = alias_hint(tz.key)
        why = (
            f'timezone "{tz.key}" is an alias of {alias[0]}: if your numbers are dialled '
            f"as in {alias[1]}, add `region: {alias[1]}`"
            if alias is not None
            else f'timezone "{tz.key}" is in no country: add `region:` with {REGION_HINT}'
        )
        message = (
            "callback cases read numbers dialled without a country code (0612345678) in a "
            f"region, and it cannot be derived: {why} under `callbacks:` (or set "
            "`callback: off` on the routes with `missed`)"
        )
        if block.node is not None:
            reader.error(block.node, "callbacks", message)
        elif tz_node is not None:
            reader.error(tz_node, "timezone", message)
    return NO_REGION


def _region(reader: Reader, node: Node, path: str) -> str | None:
    # Read as written: YAML 1.1 reads a bare `NO` (Norway) as a boolean.
    text = node.text.strip() if isinstance(node, Scalar) and not node.is_null else ""
    code = text.upper()
    if code and is_region(code):
        return code
    shown = f'"{text}"' if text else describe(node)
    hint = " (the United Kingdom's is GB)" if code == "UK" else f" (expected {REGION_HINT})"
    reader.error(node, path, f"{shown} is not a region phone numbers can be read in{hint}")
    return None


def _is_off(node: Node) -> bool:
    """``off`` (also quoted), or another YAML false (``no``, ``false``)."""
    return isinstance(node, Scalar) and (
        node.boolean is False or (node.is_text and node.text.strip().lower() == "off")
    )


def _policy(
    reader: Reader, spec: Map, path: str, base: CallbackPolicy, hours: dict[str, Hours]
) -> CallbackPolicy:
    """``base`` with the keys given in ``spec`` replaced (the unusable ones left as they were)."""
    changes: dict[str, Any] = {}
    before = len(reader.problems)
    if (sub := spec.get("scope")) is not None:
        scope = reader.text(sub, join(path, "scope"), example="acme")
        if scope is not None and not _SCOPE.match(scope):
            reader.error(sub, join(path, "scope"), f'"{scope}" is not a scope name ({SCOPE_HINT})')
        elif scope is not None:
            changes["scope"] = scope
    if (sub := spec.get("escalate_after")) is not None:
        if _is_off(sub) or (isinstance(sub, Scalar) and sub.text.strip().lower() in NEVER_WORDS):
            changes["escalate_after"] = None
        elif (value := _duration(reader, sub, join(path, "escalate_after"), off=True)) is not None:
            changes["escalate_after"] = value
    if (sub := spec.get("callback_window")) is not None:
        value = _duration(reader, sub, join(path, "callback_window"), off=False)
        if value is not None:
            changes["callback_window"] = value
    if (sub := spec.get("escalate_to")) is not None:
        mentions = reader.texts(sub, join(path, "escalate_to"), example='"<!subteam^S0123ABCD>"')
        changes["escalate_to"] = tuple(v for v, _, _ in mentions)
    if (sub := spec.get("hours")) is not None:
        if _is_off(sub):
            changes["hours"] = None
        elif (name := _hours_name(reader, sub, join(path, "hours"), hours)) is not None:
            changes["hours"] = hours[name]
    policy = dataclasses.replace(base, **changes)
    if len(reader.problems) == before:  # an unusable value explains itself once
        _check(reader, spec, path, policy)
    return policy


def _duration(reader: Reader, node: Node, path: str, *, off: bool) -> timedelta | None:
    alternative = ", or off to never escalate" if off else ""
    value = None
    if isinstance(node, Scalar) and not node.is_null and node.boolean is None:
        try:
            value = parse_duration(node.text)
        except TooLong:
            reader.error(node, path, f'"{node.text}" is too long (at most {LONGEST})')
            return None
        except ValueError:
            value = None
    if value is None:
        shown = f'"{node.text}"' if isinstance(node, Scalar) else describe(node)
        if not off and _is_off(node):
            reader.error(
                node,
                path,
                "a case always ends: give the time after which it closes as not called back "
                "(e.g. 3d)",
            )
        else:
            reader.error(
                node, path, f"{shown} is not a duration (expected {DURATION_HINT}{alternative})"
            )
        return None
    if value <= timedelta(0):
        instead = " (write off to never escalate)" if off else " (e.g. 3d)"
        reader.error(node, path, f"must be longer than 0s{instead}")
        return None
    return value


def _hours_name(reader: Reader, node: Node, path: str, hours: dict[str, Hours]) -> str | None:
    name = reader.text(node, path, example="office")
    if name is None:
        return None
    if name not in hours:
        known = ", ".join(sorted(hours)) or "none"
        reader.error(
            node,
            path,
            f'unknown hours "{name}"{suggest(name, hours)} (defined under hours: {known}; '
            "or `off`: the clock always runs)",
        )
        return None
    if _weekly_open(hours[name]) == timedelta(0) and not _has_problems(reader, name):
        reader.error(
            node,
            path,
            f'hours "{name}" is never open, so the clock would never run (give it open '
            "ranges, or write `hours: off`)",
        )
        return None
    return name


def _check(reader: Reader, spec: Map, path: str, policy: CallbackPolicy) -> None:
    """The policy as a whole: escalation before the window; the window within a year of open
    time (only where this mapping set one of the keys involved)."""
    after, window = policy.escalate_after, policy.callback_window
    given = [k for k in ("escalate_after", "callback_window") if spec.get(k) is not None]
    if after is not None and after >= window and given:
        node = spec.get(given[0])
        assert node is not None
        reader.error(
            node,
            join(path, given[0]),
            f"escalate_after ({format_duration(after)}) must be shorter than callback_window "
            f"({format_duration(window)}): at its window a case closes as not called back, so "
            "it would never escalate (shorten escalate_after, lengthen callback_window, or "
            "write escalate_after: off)",
        )
    hours = policy.hours
    involved = [k for k in ("callback_window", "hours") if spec.get(k) is not None]
    if hours is None or not involved:
        return
    weekly = _weekly_open(hours)
    if timedelta(0) < weekly and window > weekly * MAX_OPEN_WEEKS:
        node = spec.get(involved[0])
        assert node is not None
        reader.error(
            node,
            join(path, involved[0]),
            f"callback_window {format_duration(window)} counts only while hours "
            f'"{hours.name}" is open ({format_duration(weekly)} a week): more than a year '
            "(shorten the window, or use hours that are open longer)",
        )


def _weekly_open(hours: Hours) -> timedelta:
    day = date(2000, 1, 1)  # wall-clock arithmetic only
    total = timedelta(0)
    for ranges in hours.week:
        for r in ranges:
            end = datetime.combine(day, r.end or time.min) + timedelta(days=r.end is None)
            total += end - datetime.combine(day, r.start)
    return total


def _has_problems(reader: Reader, name: str) -> bool:
    path = join("hours", name)
    return any(p.path == path or p.path.startswith(path + ".") for p in reader.problems)
