"""Rules file -> :class:`Ruleset`, strictly: every problem found in one pass, with positions.

``load_text`` is pure; ``load_file`` only adds reading the file. Both also run the file's
own ``tests:`` and refuse the rules when one fails, exactly like a syntax error.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from types import MappingProxyType
from typing import Final
from zoneinfo import ZoneInfo

from bridge.core.calls import STALE_REASON
from bridge.core.events import END_REASONS
from bridge.rules import callbacks_load, patterns
from bridge.rules import hours as hours_mod
from bridge.rules.callbacks_load import Block
from bridge.rules.destinations import read_destinations
from bridge.rules.digest_load import read_digest
from bridge.rules.fields import Reader, suggest
from bridge.rules.model import (
    Actions,
    CallbackPolicy,
    Callbacks,
    Direction,
    Hours,
    Pattern,
    Problem,
    Route,
    RulesError,
    Ruleset,
    When,
)
from bridge.rules.selftest import parse_tests, run_tests
from bridge.rules.yamlpos import Map, Node, Scalar, Seq, join, parse

VERSION: Final = 1
MISSED_REASONS: Final = (*END_REASONS, STALE_REASON)
TOP_KEYS: Final = (
    "version",
    "timezone",
    "destinations",
    "hours",
    "callbacks",
    "digest",
    "routes",
    "unmatched",
    "tests",
)
WHEN_KEYS: Final = (
    "direction",
    "caller",
    "destination",
    "caller_name",
    "target",
    "internal",
    "during",
    "outside",
)
ACTION_KEYS: Final = (
    "live",
    "missed",
    "summary",
    "mention",
    "min_ring",
    "missed_reason",
    "callback",
)
ROUTE_KEYS: Final = ("name", "when", *ACTION_KEYS, "continue", "drop")


def load_file(path: Path, *, own_tests: bool = True) -> Ruleset:
    """Read and load a rules file. Raises :class:`RulesError`, or ``OSError`` if unreadable."""
    return load_text(_utf8(path.read_bytes(), str(path)), str(path), own_tests=own_tests)


def _utf8(data: bytes, filename: str) -> str:
    """The file's text; a byte that is not UTF-8 is a problem at its line and column."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        before = data[: err.start]
        line = before.count(b"\n") + 1
        col = len(before[before.rfind(b"\n") + 1 :].decode("utf-8", "replace")) + 1
        message = f"not UTF-8 text (byte 0x{data[err.start]:02x}): save the file as UTF-8"
        raise RulesError((Problem(filename, line, col, "", message),)) from None


def load_text(text: str, filename: str, *, own_tests: bool = True) -> Ruleset:
    """Load rules from text; raises :class:`RulesError` listing every problem found.
    ``own_tests=False``: the file's ``tests`` are read but not run (:func:`run_tests`)."""
    root, problems = parse(text, filename)
    reader = Reader(filename)
    reader.problems.extend(problems)
    ruleset = None if root is None else _ruleset(reader, root, text, filename)
    if ruleset is not None and not reader.problems:
        tests_node = root.get("tests") if isinstance(root, Map) else None
        tests = parse_tests(reader, tests_node, ruleset) if tests_node is not None else ()
        if not reader.problems:
            ruleset = dataclasses.replace(ruleset, tests=tests)
            if own_tests:
                reader.problems.extend(run_tests(ruleset))
    if reader.problems or ruleset is None:
        ordered = sorted(reader.problems, key=lambda p: (p.line, p.col))
        raise RulesError(tuple(ordered))
    return ruleset


def _ruleset(reader: Reader, root: Node, text: str, filename: str) -> Ruleset | None:
    required = {
        "version": "add `version: 1` at the top",
        "timezone": "e.g. `timezone: Europe/Amsterdam`; hours are evaluated in it",
        "destinations": "name at least one place to post to",
        "routes": "list the routes, top to bottom",
    }
    top = reader.mapping(root, "", allowed=TOP_KEYS, required=required)
    if top is None:
        return None
    if (node := top.get("version")) is not None and not (
        isinstance(node, Scalar) and node.integer == VERSION
    ):
        shown = f'"{node.text}"' if isinstance(node, Scalar) else "a collection"
        reader.error(node, "version", f"unsupported version {shown} (this bridge reads version: 1)")
    tz_node = top.get("timezone")
    tz = hours_mod.timezone(reader, tz_node, "timezone") if tz_node is not None else None
    destinations = read_destinations(reader, top.get("destinations"))
    hours: dict[str, Hours] = {}
    if (hours_node := top.get("hours")) is not None:
        # A missing or unknown time zone is one problem: read the schedules anyway (in UTC,
        # never used) so their own problems show and routes naming them find them.
        hours = _hours(reader, hours_node, tz or ZoneInfo("UTC"))
    block = callbacks_load.read_block(reader, top.get("callbacks"), hours)
    names = set(destinations)
    routes: list[Route] = []
    if (routes_node := top.get("routes")) is not None:
        routes = _routes(reader, routes_node, names, hours, block)
    unmatched = None
    if (node := top.get("unmatched")) is not None:
        unmatched = _unmatched(reader, node, names, hours, block)
    every = [*(r.actions for r in routes), *([unmatched] if unmatched else [])]
    opens_cases = any(a.missed and a.callback is not None for a in every)
    region = callbacks_load.region(reader, block, tz_node, tz, needed=opens_cases)
    alerted = {d for a in every for d in a.missed}
    digest = read_digest(reader, top.get("digest"), names, alerted)
    if tz is None or reader.problems:
        return None
    return Ruleset(
        source=filename,
        version=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        text=text,
        timezone=tz,
        destinations=MappingProxyType(destinations),
        hours=MappingProxyType(hours),
        routes=tuple(routes),
        unmatched=unmatched,
        callbacks=Callbacks(region=region, policy=block.policy),
        digest=digest,
    )


def _hours(reader: Reader, node: Node, tz: ZoneInfo) -> dict[str, Hours]:
    block = reader.mapping(node, "hours", allowed=None, what="a mapping of schedule names")
    out: dict[str, Hours] = {}
    for key, value in block.items if block is not None else ():
        parsed = hours_mod.parse(reader, key.text, value, join("hours", key.text), tz)
        # An invalid schedule is still a known name (its own problems are reported).
        out[key.text] = parsed or Hours(key.text, tz, ((),) * 7)
    return out


def _routes(
    reader: Reader, node: Node, names: set[str], hours: dict[str, Hours], block: Block
) -> list[Route]:
    if not isinstance(node, Seq):
        reader.error(node, "routes", "expected a list of routes (each starting with `- name:`)")
        return []
    out: list[Route] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(node.items):
        path = f"routes[{i}]"
        spec = reader.mapping(
            item,
            path,
            allowed=ROUTE_KEYS,
            required={"name": "every route needs a name; it shows in `route` output and logs"},
        )
        if spec is None:
            continue
        name_node = spec.get("name")
        name = reader.text(name_node, join(path, "name")) if name_node is not None else None
        if name is not None and name_node is not None:
            if name in seen:
                reader.error(
                    name_node,
                    join(path, "name"),
                    f'"{name}" is already the name of '
                    f"routes[{seen[name]}] (route names must be unique)",
                )
            seen.setdefault(name, i)
        when = _when(reader, spec.get("when"), join(path, "when"), hours)
        actions = _actions(reader, spec, path, names, hours, block)
        flags = {}
        for flag in ("continue", "drop"):
            flag_node = spec.get(flag)
            flags[flag] = bool(
                flag_node is not None and reader.boolean(flag_node, join(path, flag))
            )
        posts = actions.live or actions.missed or actions.summary
        if flags["drop"] and (posts or flags["continue"]):
            reader.error(
                spec,
                path,
                "a route with `drop: true` posts nothing and stops; remove "
                "live/missed/summary/continue, or remove drop",
            )
        elif (
            not flags["drop"]
            and not posts
            and not (flags["continue"] and spec.get("callback") is not None)
            and _has_no_errors_at(reader, path)
        ):
            reader.error(
                spec,
                path,
                "this route does nothing: give it live, missed or summary "
                "destinations, `drop: true` to ignore the calls it matches, or "
                "`callback:` with `continue: true` to choose their callback scope",
            )
        out.append(
            Route(name or "", when, actions, continue_=flags["continue"], drop=flags["drop"])
        )
    return out


def _has_no_errors_at(reader: Reader, path: str) -> bool:
    return not any(p.path.startswith(path + ".") for p in reader.problems)


def _actions(
    reader: Reader,
    spec: Map,
    path: str,
    names: set[str],
    hours: dict[str, Hours],
    block: Block,
) -> Actions:
    def dests(key: str) -> tuple[str, ...]:
        node = spec.get(key)
        if node is None:
            return ()
        out = []
        for value, item, item_path in reader.texts(node, join(path, key), example="support"):
            if value not in names:
                known = ", ".join(sorted(names)) or "none"
                reader.error(
                    item,
                    item_path,
                    f'unknown destination "{value}"'
                    f"{suggest(value, names)} (defined under destinations: {known})",
                )
            out.append(value)
        return tuple(out)

    live, missed, summary = dests("live"), dests("missed"), dests("summary")
    mention: tuple[str, ...] = ()
    if (node := spec.get("mention")) is not None:
        mention = tuple(v for v, _, _ in reader.texts(node, join(path, "mention")))
    min_ring = None
    if (node := spec.get("min_ring")) is not None:
        min_ring = reader.duration(node, join(path, "min_ring"))
    reasons = None
    if (node := spec.get("missed_reason")) is not None:
        reasons = frozenset(_reasons(reader, node, join(path, "missed_reason")))
    for key in ("min_ring", "missed_reason"):
        if (node := spec.get(key)) is not None and spec.get("missed") is None:
            reader.error(
                node,
                join(path, key),
                f"`{key}` only applies to `missed` alerts, and "
                "this has no `missed` destination (add one, or remove the key)",
            )
    callback: CallbackPolicy | None = block.policy
    if (node := spec.get("callback")) is not None:
        callback = callbacks_load.read_route(
            reader, node, join(path, "callback"), block, hours, alerts=bool(missed)
        )
    return Actions(live, missed, summary, mention, min_ring, reasons, callback)


def _reasons(reader: Reader, node: Node, path: str) -> list[str]:
    out = []
    for value, item, item_path in reader.texts(node, path, example="no-answer"):
        if value not in MISSED_REASONS:
            reader.error(
                item,
                item_path,
                f'unknown reason "{value}"{suggest(value, MISSED_REASONS)} '
                f"(one of: {', '.join(MISSED_REASONS)})",
            )
        out.append(value)
    return out


def _unmatched(
    reader: Reader, node: Node, names: set[str], hours: dict[str, Hours], block: Block
) -> Actions | None:
    if isinstance(node, Map):
        spec = reader.mapping(node, "unmatched", allowed=ACTION_KEYS)
        return None if spec is None else _actions(reader, spec, "unmatched", names, hours, block)
    shorthand = Map(
        ((Scalar("live", "tag:yaml.org,2002:str", node.line, node.col), node),), node.line, node.col
    )
    return _actions(reader, shorthand, "unmatched", names, hours, block)


def _when(reader: Reader, node: Node | None, path: str, hours: dict[str, Hours]) -> When:
    if node is None:
        return When()
    bad = (
        next((k for k, _ in node.items if k.text == "missed_reason"), None)
        if isinstance(node, Map)
        else None
    )
    if isinstance(node, Map) and bad is not None:
        reader.error(
            bad,
            join(path, "missed_reason"),
            "move `missed_reason` out of `when`, next "
            "to `missed`: it chooses which missed calls alert, not which calls match",
        )
        node = Map(
            tuple((k, v) for k, v in node.items if k.text != "missed_reason"), node.line, node.col
        )
    spec = reader.mapping(node, path, allowed=WHEN_KEYS)
    if spec is None:
        return When()

    def items(key: str, example: str) -> list[tuple[str, Node, str]] | None:
        sub = spec.get(key)
        return None if sub is None else reader.texts(sub, join(path, key), example=example)

    def numbers(key: str) -> tuple[Pattern, ...] | None:
        got = items(key, '"+31508009000"')
        if got is None:
            return None
        return tuple(p for v, n, at in got if (p := patterns.number(reader, v, n, at)))

    directions: frozenset[Direction] | None = None
    if (got := items("direction", "inbound")) is not None:
        valid: set[Direction] = set()
        for value, item, at in got:
            if value == "inbound":
                valid.add("inbound")
            elif value == "outbound":
                valid.add("outbound")
            else:
                reader.error(
                    item,
                    at,
                    f'"{value}" is not a direction (inbound or outbound)',
                )
        directions = frozenset(valid)
    names = None
    if (got := items("caller_name", '"^Acme"')) is not None:
        names = tuple(r for v, n, at in got if (r := patterns.regex(reader, v, n, at)))
    targets = None
    if (got := items("target", '"jan@example.com"')) is not None:
        targets = tuple(p for v, n, at in got if (p := patterns.person(reader, v, n, at)))
    internal = None
    if (sub := spec.get("internal")) is not None:
        internal = reader.boolean(sub, join(path, "internal"))

    def schedules(key: str) -> tuple[Hours, ...] | None:
        got = items(key, "office")
        if got is None:
            return None
        for value, item, at in got:
            if value not in hours:
                known = ", ".join(sorted(hours)) or "none"
                reader.error(
                    item,
                    at,
                    f'unknown hours "{value}"'
                    f"{suggest(value, hours)} (defined under hours: {known})",
                )
        return tuple(hours[v] for v, _, _ in got if v in hours)

    return When(
        direction=directions,
        caller=numbers("caller"),
        destination=numbers("destination"),
        caller_name=names,
        target=targets,
        internal=internal,
        during=schedules("during"),
        outside=schedules("outside"),
    )
