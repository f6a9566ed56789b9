"""Number and e-mail globs, name regexes: compiled once, matched purely."""

from __future__ import annotations

import re
from typing import Final

from bridge.rules.fields import Reader
from bridge.rules.model import Pattern
from bridge.rules.yamlpos import Node

_SEPARATORS: Final = re.compile(r"[\s\-.()]")
_NUMBER: Final = re.compile(r"^\+?[0-9*?]+$")
_EMAIL: Final = re.compile(r"^[^@\s]+@[^@\s]+$")
NUMBER_HINT: Final = (
    "use digits with an optional leading +, * for any digits and ? for one digit, "
    'e.g. "+31508009000" or "+3150800901*"'
)


def normalise(number: str) -> str:
    """Spaces, dashes, dots and parentheses are only for readability."""
    return _SEPARATORS.sub("", number)


def _glob(text: str, flags: int = 0) -> re.Pattern[str]:
    parts = [".*" if ch == "*" else "[0-9]" if ch == "?" else re.escape(ch) for ch in text]
    return re.compile("^" + "".join(parts) + "$", flags)


def number(reader: Reader, value: str, node: Node, path: str) -> Pattern | None:
    cleaned = normalise(value)
    if not _NUMBER.match(cleaned):
        reader.error(node, path, f'"{value}" is not a phone number pattern ({NUMBER_HINT})')
        return None
    return Pattern(value, _glob(cleaned))


def person(reader: Reader, value: str, node: Node, path: str) -> Pattern | None:
    """An e-mail address (case-insensitive, ``*`` allowed) or a number pattern."""
    if "@" in value:
        if not _EMAIL.match(value):
            reader.error(
                node,
                path,
                f'"{value}" is not an e-mail address pattern '
                '(e.g. "jan@example.com" or "*@support.example.com")',
            )
            return None
        return Pattern(value, _glob(value, re.IGNORECASE))
    cleaned = normalise(value)
    if not _NUMBER.match(cleaned):
        reader.error(
            node,
            path,
            f'"{value}" is neither an e-mail address nor a phone number pattern '
            f'(e.g. "jan@example.com", or {NUMBER_HINT})',
        )
        return None
    return Pattern(value, _glob(cleaned))


def regex(reader: Reader, value: str, node: Node, path: str) -> re.Pattern[str] | None:
    try:
        return re.compile(value, re.IGNORECASE)
    except re.error as err:
        reader.error(
            node,
            path,
            f'"{value}" is not a valid regular expression: {err.msg} at position '
            f"{err.pos} (escape special characters like | ( ) with a backslash)",
        )
        return None


def matches_number(patterns: tuple[Pattern, ...], value: str) -> bool:
    cleaned = normalise(value)
    return any(p.regex.match(cleaned) for p in patterns if "@" not in p.text)


def matches_email(patterns: tuple[Pattern, ...], value: str) -> bool:
    return any(p.regex.match(value) for p in patterns if "@" in p.text)
