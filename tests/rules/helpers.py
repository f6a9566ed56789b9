"""Build calls honestly: provider JSON documents -> events.decode -> calls.fold (bridge.core)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from bridge.core.calls import Call, fold
from bridge.core.events import Event, decode
from bridge.rules import Ruleset, load_text

HEADER = """\
version: 1
timezone: Europe/Amsterdam
destinations:
  support: {slack: {channel: C0SUPPORT01}}
  oncall: {slack: {channel: C0ONCALL001, mention: ["<!subteam^S0ONCALL1>"]}}
  sales: {teams: {conversation: "19:sales@thread.tacv2"}}
hours:
  office:
    mon-fri: "08:30-17:30"
    closed: [2026-12-25]
"""


def rules(body: str) -> Ruleset:
    return load_text(HEADER + body, "test.yaml")


def person(
    number: str, name: str | None = None, account: int | None = None, email: str | None = None
) -> dict[str, Any]:
    return {
        "number": number,
        "name": name,
        "account_number": account,
        "user_numbers": [number] if account is not None else [],
        "user_emails": [email] if email else [],
    }


def event(
    call_id: str,
    at: datetime,
    status: str,
    *,
    direction: str = "inbound",
    caller: dict[str, Any] | None = None,
    dialled: str = "+31508009000",
    targets: list[dict[str, Any]] | None = None,
    target: dict[str, Any] | None = None,
    reason: str | None = None,
) -> Event:
    destination: dict[str, Any] = {"number": dialled}
    if targets is not None:
        destination["targets"] = targets
    if target is not None:
        destination["target"] = target
    doc: dict[str, Any] = {
        "call_id": call_id,
        "timestamp": at.isoformat(),
        "status": status,
        "version": "v2",
        "direction": direction,
        "caller": caller or person("+31501234567", "Klant BV"),
        "destination": destination,
    }
    if reason is not None:
        doc["reason"] = reason
    return decode(json.dumps(doc).encode())


def call(
    start: datetime,
    *,
    direction: str = "inbound",
    dialled: str = "+31508009000",
    caller: dict[str, Any] | None = None,
    rung: tuple[dict[str, Any], ...] = (),
    answered: dict[str, Any] | None = None,
    ring: timedelta = timedelta(seconds=10),
    ended: bool = True,
    reason: str | None = None,
) -> Call:
    """A realistic call: created (inbound), ringing, maybe in-progress, maybe ended."""
    kw: dict[str, Any] = {"direction": direction, "caller": caller, "dialled": dialled}
    events = []
    if direction == "inbound":
        events.append(event("c1", start, "created", **kw))
    if rung:
        events.append(
            event("c1", start + timedelta(seconds=1), "ringing", targets=list(rung), **kw)
        )
    end = start + ring
    if answered is not None:
        events.append(event("c1", end, "in-progress", target=answered, **kw))
        end += timedelta(minutes=2)
    if ended:
        why = reason or ("completed" if answered is not None else "no-answer")
        events.append(event("c1", end, "ended", reason=why, **kw))
    return fold(events)
