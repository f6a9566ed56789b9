"""YAML -> a small tree of nodes that remember where they were written.

Built on PyYAML's composer (``yaml.compose``), which keeps every node's position but
does not build Python objects. We add what an operator needs: duplicate keys are
errors (PyYAML silently keeps the last one), merge keys (``<<``) are refused, and every
scalar keeps the exact text it was written as, so ``+31508009000`` (an integer to YAML
1.1) or ``08:30`` (a sexagesimal number) can still be read as the text the operator meant.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import yaml

from bridge.rules.model import Problem

_STR: Final = "tag:yaml.org,2002:str"
_INT: Final = "tag:yaml.org,2002:int"
_FLOAT: Final = "tag:yaml.org,2002:float"
_BOOL: Final = "tag:yaml.org,2002:bool"
_NULL: Final = "tag:yaml.org,2002:null"
_MERGE: Final = "tag:yaml.org,2002:merge"

TYPE_NAMES: Final = {
    _STR: "text",
    _INT: "a number",
    _FLOAT: "a number",
    _BOOL: "a boolean",
    _NULL: "nothing (null)",
    "tag:yaml.org,2002:timestamp": "a date",
}


@dataclass(frozen=True)
class Scalar:
    text: str  # exactly as written (without quotes)
    tag: str  # YAML's resolved type tag
    line: int  # 1-based
    col: int  # 1-based

    @property
    def type_name(self) -> str:
        return TYPE_NAMES.get(self.tag, "a value")

    @property
    def is_null(self) -> bool:
        return self.tag == _NULL

    @property
    def is_text(self) -> bool:
        return self.tag == _STR

    @property
    def boolean(self) -> bool | None:
        if self.tag != _BOOL:
            return None
        return self.text.lower() in ("yes", "true", "on", "y")

    @property
    def integer(self) -> int | None:
        if self.tag != _INT:
            return None
        value = yaml.safe_load(self.text)  # YAML's own rules (0o17, 1_000, ...)
        return value if isinstance(value, int) else None


@dataclass(frozen=True)
class Seq:
    items: tuple[Node, ...]
    line: int
    col: int


@dataclass(frozen=True)
class Map:
    items: tuple[tuple[Scalar, Node], ...]  # keys in file order, never repeated
    line: int
    col: int

    def get(self, key: str) -> Node | None:
        for k, value in self.items:
            if k.text == key:
                return value
        return None


Node = Scalar | Seq | Map


def describe(node: Node) -> str:
    if isinstance(node, Map):
        return "a mapping"
    if isinstance(node, Seq):
        return "a list"
    return node.type_name


def parse(text: str, filename: str) -> tuple[Node | None, list[Problem]]:
    """Parse one YAML document; returns the tree (None when unusable) and the problems."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = err.problem or "invalid YAML"
        context = f" {err.context}" if err.context else ""
        message = f"YAML syntax error: {what}{context} (check indentation, colons and quotes)"
        return None, [Problem(filename, line, col, "", message)]
    except yaml.YAMLError as err:  # e.g. a second document in the stream
        return None, [Problem(filename, 1, 1, "", f"YAML error: {err}")]
    if root is None:
        return None, [Problem(filename, 1, 1, "", "the file is empty (start with `version: 1`)")]
    problems: list[Problem] = []
    return _convert(root, "", filename, problems), problems


def _convert(node: yaml.Node, path: str, filename: str, problems: list[Problem]) -> Node:
    line, col = node.start_mark.line + 1, node.start_mark.column + 1
    if isinstance(node, yaml.ScalarNode):
        return Scalar(str(node.value), node.tag, line, col)
    if isinstance(node, yaml.SequenceNode):
        elements = (
            _convert(item, f"{path}[{i}]", filename, problems) for i, item in enumerate(node.value)
        )
        return Seq(tuple(elements), line, col)
    assert isinstance(node, yaml.MappingNode)
    items: list[tuple[Scalar, Node]] = []
    seen: dict[str, Scalar] = {}
    for key_node, value_node in node.value:
        key = _convert(key_node, path, filename, problems)
        if not isinstance(key, Scalar):
            problems.append(
                Problem(
                    filename,
                    key.line,
                    key.col,
                    path,
                    "a key must be plain text, not " + describe(key),
                )
            )
            continue
        if key.tag == _MERGE:
            problems.append(
                Problem(
                    filename,
                    key.line,
                    key.col,
                    path,
                    "merge keys (<<) are not supported "
                    "(write the keys out; anchors and aliases (&name, *name) do work)",
                )
            )
            continue
        if key.text in seen:
            first = seen[key.text]
            problems.append(
                Problem(
                    filename,
                    key.line,
                    key.col,
                    join(path, key.text),
                    f"duplicate key {key.text!r} (already "
                    f"given at line {first.line}, column {first.col}; keep only one)",
                )
            )
            continue
        seen[key.text] = key
        items.append((key, _convert(value_node, join(path, key.text), filename, problems)))
    return Map(tuple(items), line, col)


def join(path: str, key: str) -> str:
    """``routes[0]`` + ``when`` -> ``routes[0].when`` (the key path used in messages)."""
    return f"{path}.{key}" if path else key
