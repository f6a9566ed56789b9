"""The routing decision's types: which destinations get which kind of message for a call.

The rules (:mod:`bridge.rules`) produce a :class:`RouteResult`; planning
(:mod:`bridge.core.plan`) turns its :class:`Target` list into outbox slots.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["live", "missed", "summary"]
KINDS: tuple[Kind, ...] = ("live", "missed", "summary")


@dataclass(frozen=True)
class Delivery:
    destination: str
    kind: Kind
    route: str
    mentions: tuple[str, ...] = ()


@dataclass(frozen=True)
class RouteResult:
    matched_routes: tuple[str, ...]
    deliveries: tuple[Delivery, ...]
    unmatched: bool


@dataclass(frozen=True)
class Target:
    """A delivery resolved to a platform and its channel (or conversation)."""

    delivery: Delivery
    platform: str
    channel: str
