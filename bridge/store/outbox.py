"""Types of the delivery outbox: per (story, destination, platform, slot) the message a call
story should have (*desired*, versioned) and what was *posted* (the platform's reference and
the version it shows). Delivery is reconciliation: make posted match desired.

Slots: ``root`` (the live message), ``reply:<id>`` (one thread reply per story step, the id
derived from the step so that out-of-order steps never collide), ``missed`` (the alert) and
``summary``. A slot whose desired content is ``None`` must be retracted: its posted message
is deleted (a missed alert for a call that turned out answered, an orphaned consult call).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Kind = Literal["live", "missed", "summary"]


@dataclass(frozen=True, slots=True)
class SlotKey:
    story_id: str
    destination: str
    platform: str
    slot: str


@dataclass(frozen=True, slots=True)
class Planned:
    """One message a story should have, as the dispatcher decided it."""

    destination: str
    platform: str
    channel: str
    slot: str
    kind: Kind
    order: int  # posting order among the story's replies in one destination
    content: bytes  # encoded render input (bridge.plan)
    final: bool  # the call has ended: this is the root's last version


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A slot whose posted state lags its desired state (work for the delivery layer)."""

    key: SlotKey
    channel: str
    kind: Kind
    order: int
    content: bytes | None  # None: retract the posted message
    version: int  # the desired version this content is
    ref: str | None  # the posted message (encoded MessageRef), if any
    root_ref: str | None  # the posted root of the same story and destination, if any
    attempted: bool  # an earlier attempt may have reached the platform: look before posting
    attempts: int
    final: bool
    created_at: datetime
    desired_at: datetime  # when this desired version was set (for delivery latency)
