"""Builders for rendering tests: provider JSON documents -> decoded events -> folded calls.

The documents follow tests/fixtures/voys/ (v2 shapes, nullable names and account
numbers, extensions as redirector numbers). Times are seconds after ``T0`` =
2024-03-05 09:41:07 UTC, which is 10:41:07 in Europe/Amsterdam (CET, UTC+1).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bridge.core.calls import Call, fold
from bridge.core.events import Event, decode

AMS = ZoneInfo("Europe/Amsterdam")
T0 = datetime(2024, 3, 5, 9, 41, 7, tzinfo=UTC)
LINE = "+31508009000"

Doc = dict[str, Any]

CUSTOMER: Doc = {
    "number": "+31501234567",
    "name": "M. de Jong",
    "account_number": None,
    "user_numbers": [],
}
JOHAN: Doc = {
    "number": "+31508009101",
    "name": "Johan | Voys",
    "account_number": 201,
    "user_numbers": ["201"],
    "user_emails": ["johan@example.com"],
}
SANNE: Doc = {
    "number": "+31508009102",
    "name": "Sanne de Vries",
    "account_number": 202,
    "user_numbers": ["202"],
    "user_emails": ["sanne@example.com"],
}
PIETER: Doc = {
    "number": "+31508009103",
    "name": "Pieter Bakker",
    "account_number": 203,
    "user_numbers": ["203"],
}
LUCAS: Doc = {
    "number": "+31508009105",
    "name": "Lucas Jansen",
    "account_number": 205,
    "user_numbers": ["205"],
    "user_emails": ["lucas@example.com"],
}


def internal(person: Doc) -> Doc:
    """``person`` numbered by extension, as a redirector or internal caller is."""
    return {**person, "number": person["user_numbers"][0]}


def ev(
    status: str,
    seconds: float,
    *,
    call_id: str = "c1",
    direction: str = "inbound",
    caller: Doc = CUSTOMER,
    number: str = LINE,
    targets: list[Doc] | None = None,
    target: Doc | None = None,
    start: datetime = T0,
    **extra: Any,
) -> Event:
    """One provider notification, built as JSON and decoded like ingest does."""
    destination: Doc = {"number": number}
    if targets is not None:
        destination["targets"] = targets
    if target is not None:
        destination["target"] = target
    doc: Doc = {
        "call_id": call_id,
        "timestamp": (start + timedelta(seconds=seconds)).isoformat(),
        "status": status,
        "version": "v2",
        "direction": direction,
        "caller": caller,
        "destination": destination,
        **extra,
    }
    return decode(json.dumps(doc).encode())


def call(*events: Event, now: datetime | None = None) -> Call:
    return fold(events, now=now)


def ringing_call() -> list[Event]:
    """Created and ringing Johan and Sanne at T0."""
    return [
        ev("created", 0),
        ev("ringing", 0, targets=[JOHAN, SANNE]),
    ]


def answered_call() -> list[Event]:
    """Ringing Johan and Sanne; Johan answers after 9 s."""
    return [*ringing_call(), ev("in-progress", 9, target=JOHAN)]


def warm_transfer_call() -> list[Event]:
    """Johan answers, consults Sanne on call c2 (rings at 40 s, answers at 52 s) and
    transfers at 52 s; the customer's id c1 survives."""
    consult: dict[str, Any] = {"call_id": "c2", "direction": "outbound", "caller": internal(JOHAN)}
    return [
        ev("created", 0),
        ev("ringing", 0, targets=[JOHAN]),
        ev("in-progress", 9, target=JOHAN),
        ev("ringing", 40, number="202", targets=[SANNE], **consult),
        ev("in-progress", 52, number="202", target=SANNE, **consult),
        ev(
            "warm-transfer",
            52,
            number=SANNE["number"],
            target=SANNE,
            merged_id="c2",
            redirector=internal(JOHAN),
        ),
    ]
