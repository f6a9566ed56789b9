"""Routing rules: strict loading of the operator's YAML and the pure routing decision.

Reloading is ``new = load_file(path)``: it returns a :class:`Ruleset` or raises
:class:`RulesError` (every problem, including failing ``tests:``), or ``OSError``.
"""

from bridge.rules.load import load_file, load_text
from bridge.rules.match import is_internal, route
from bridge.rules.model import (
    Delivery,
    Destination,
    Kind,
    Problem,
    RouteResult,
    RulesError,
    Ruleset,
    SlackTarget,
    TeamsTarget,
)
from bridge.rules.targets import targets

__all__ = [
    "Delivery",
    "Destination",
    "Kind",
    "Problem",
    "RouteResult",
    "RulesError",
    "Ruleset",
    "SlackTarget",
    "TeamsTarget",
    "is_internal",
    "load_file",
    "load_text",
    "route",
    "targets",
]
