"""Store tests; this module builds realistic provider events for them.

Events are made with the real ``bridge.core.events.decode`` from JSON bodies shaped like the
provider's v2 notifications (see tests/fixtures/voys), never by constructing Event.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from bridge.core.events import Event, decode
from bridge.store import SlotKey, Store

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday morning

CUSTOMER: dict[str, Any] = {
    "number": "+31501234567",
    "name": "A",
    "account_number": None,
    "user_numbers": [],
}
BOB: dict[str, Any] = {
    "number": "+31508009000",
    "name": "Bob | Voys",
    "account_number": 201,
    "user_numbers": ["201"],
    "user_emails": ["bob@example.com"],
}
CAROL: dict[str, Any] = {
    "number": "+31508009001",
    "name": "Carol",
    "account_number": 202,
    "user_numbers": ["202"],
    "user_emails": ["carol@example.com"],
}
LINE = "+31508009000"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _body(call_id: str, status: str, seconds: float, **extra: Any) -> bytes:
    doc: dict[str, Any] = {
        "call_id": call_id,
        "timestamp": at(seconds).isoformat(),
        "status": status,
        "version": "v2",
        "direction": extra.pop("direction", "inbound"),
        "caller": extra.pop("caller", CUSTOMER),
        "destination": extra.pop("destination", {"number": LINE}),
        **extra,
    }
    return json.dumps(doc).encode()


def created(call_id: str, seconds: float = 0) -> Event:
    return decode(_body(call_id, "created", seconds))


def ringing(call_id: str, seconds: float = 1, *, caller: dict[str, Any] = CUSTOMER) -> Event:
    destination = {"number": LINE, "targets": [BOB]}
    return decode(_body(call_id, "ringing", seconds, caller=caller, destination=destination))


def answered(call_id: str, seconds: float = 5, *, caller: dict[str, Any] = CUSTOMER) -> Event:
    destination = {"number": LINE, "target": BOB}
    return decode(_body(call_id, "in-progress", seconds, caller=caller, destination=destination))


def consult_ringing(call_id: str, seconds: float = 20) -> Event:
    """Bob calls Carol to announce the customer (the consult call of a warm transfer)."""
    destination = {"number": CAROL["number"], "targets": [CAROL]}
    return decode(
        _body(
            call_id,
            "ringing",
            seconds,
            direction="outbound",
            caller={**BOB, "number": "201"},
            destination=destination,
        )
    )


def warm_transfer(call_id: str, merged_id: str, seconds: float = 40) -> Event:
    return decode(
        _body(
            call_id,
            "warm-transfer",
            seconds,
            merged_id=merged_id,
            destination={"number": CAROL["number"], "target": CAROL},
            redirector={**BOB, "number": "201"},
        )
    )


def ended(call_id: str, seconds: float = 60, reason: str = "completed") -> Event:
    return decode(_body(call_id, "ended", seconds, reason=reason))


def redelivered(event_body_call_id: str, seconds: float = 0) -> Event:
    """The ``created`` event again, with an extra field the provider sometimes adds."""
    return decode(_body(event_body_call_id, "created", seconds, id=7))


async def posted(
    store: Store, key: SlotKey, version: int, ref: str | None, *, unlinked: bool = False
) -> bool:
    """Record that the platform shows ``version`` of a slot, as delivery does
    (``posted_next``, whose read of the channel's next work these tests do not look at)."""
    kept, _ = await store.posted_next(key, version, ref, channel="", now=T0, unlinked=unlinked)
    return kept
