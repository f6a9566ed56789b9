"""Typed, position-aware reading of YAML nodes that records problems instead of stopping."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from datetime import timedelta

from bridge.core.duration import HINT as DURATION_HINT
from bridge.core.duration import LONGEST, TooLong, parse_duration
from bridge.rules.model import Problem
from bridge.rules.yamlpos import Map, Node, Scalar, Seq, describe, join


def suggest(word: str, options: Iterable[str]) -> str:
    """`` (did you mean "x"?)`` when a close option exists, else ``""``."""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


def unknown_key(word: str, keys: list[str], allowed: str = "") -> str:
    """``unknown key (did you mean "live"? allowed here: name, when, ...)``."""
    close = difflib.get_close_matches(word, keys, n=1, cutoff=0.6)
    guess = f'did you mean "{close[0]}"? ' if close else ""
    return f"unknown key ({guess}allowed here: {allowed or ', '.join(keys)})"


class Reader:
    """Collects every problem of one file; readers return ``None`` for unusable values."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.problems: list[Problem] = []

    def error(self, node: Node, path: str, message: str) -> None:
        self.problems.append(Problem(self.filename, node.line, node.col, path, message))

    def mapping(
        self,
        node: Node,
        path: str,
        *,
        allowed: Iterable[str] | None,
        required: Mapping[str, str] | None = None,
        what: str = "a mapping (key: value lines)",
    ) -> Map | None:
        """Check a mapping's keys (``allowed=None``: any key).

        ``required`` maps a key to the hint shown when it is missing.
        """
        if not isinstance(node, Map):
            self.error(node, path, f"expected {what}, got {describe(node)}")
            return None
        keys = None if allowed is None else list(allowed)
        for key, _ in node.items:
            if keys is not None and key.text not in keys:
                self.error(key, join(path, key.text), unknown_key(key.text, keys))
        for name, hint in (required or {}).items():
            if node.get(name) is None:
                self.error(node, path, f"missing required key `{name}` ({hint})")
        return node

    def text(self, node: Node, path: str, *, example: str = "") -> str | None:
        """A non-empty string; numbers are taken as written (YAML would mangle ``+31...``)."""
        hint = f" (e.g. {example})" if example else ""
        if not isinstance(node, Scalar) or not (
            node.is_text or node.integer is not None or node.tag.endswith(":float")
        ):
            self.error(node, path, f"expected text{hint}, got {describe(node)}")
            return None
        if not node.text.strip():
            self.error(node, path, f"must not be empty{hint}")
            return None
        return node.text.strip()

    def texts(self, node: Node, path: str, *, example: str = "") -> list[tuple[str, Node, str]]:
        """One text or a non-empty list of them, each with its node and key path."""
        if isinstance(node, Seq):
            if not node.items:
                self.error(node, path, "the list is empty (remove the key or add a value)")
            out: list[tuple[str, Node, str]] = []
            for i, item in enumerate(node.items):
                value = self.text(item, f"{path}[{i}]", example=example)
                if value is not None:
                    out.append((value, item, f"{path}[{i}]"))
            return out
        value = self.text(node, path, example=example)
        return [] if value is None else [(value, node, path)]

    def boolean(self, node: Node, path: str) -> bool | None:
        value = node.boolean if isinstance(node, Scalar) else None
        if value is None:
            self.error(node, path, f"expected true or false, got {describe(node)}")
        return value

    def duration(self, node: Node, path: str) -> timedelta | None:
        """The duration grammar of :mod:`bridge.core.duration`: ``20`` (seconds), ``20s``,
        ``2m``, ``1.5h``, ``14d``, ``2w``, ``1m30s`` (the same as the settings)."""
        if isinstance(node, Scalar) and (
            node.is_text or node.integer is not None or node.tag.endswith(":float")
        ):
            try:
                return parse_duration(node.text)
            except TooLong:
                self.error(node, path, f'"{node.text}" is too long (at most {LONGEST})')
                return None
            except ValueError:
                pass
        shown = f'"{node.text}"' if isinstance(node, Scalar) else describe(node)
        self.error(node, path, f"{shown} is not a duration (expected {DURATION_HINT})")
        return None
