"""Provider payload -> typed :class:`Event`.

The provider (Voys / VoIPGRID "v2" call notifications) sends one JSON object per call
state change. This module is the only place that knows its wire shape. It is pure: bytes
in, a frozen :class:`Event` or an :class:`InvalidEvent` naming the offending field out.

Validation is strict on types and on the fields every status needs, tolerant of extra
fields (the provider adds some, e.g. ``id`` in its Zapier sample) and of the optional
ones (``name``/``account_number`` may be null, lists may be missing).
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from typing import Final, Literal

import msgspec

Direction = Literal["inbound", "outbound"]
TransferKind = Literal["warm", "cold", "blind"]

SUPPORTED_VERSION: Final = "v2"
STATUSES: Final = (
    "created",
    "ringing",
    "in-progress",
    "warm-transfer",
    "cold-transfer",
    "transfer",
    "ended",
)
TRANSFER_STATUSES: Final = frozenset({"warm-transfer", "cold-transfer", "transfer"})
END_REASONS: Final = ("completed", "busy", "no-answer", "failed", "cancelled", "abandon")


class Rank(IntEnum):
    """Fold order of statuses that share a timestamp (whole seconds are common)."""

    CREATED = 0
    RINGING = 1
    ANSWERED = 2
    TRANSFER = 3
    ENDED = 4


STATUS_RANK: Final[dict[str, Rank]] = {
    "created": Rank.CREATED,
    "ringing": Rank.RINGING,
    "in-progress": Rank.ANSWERED,
    "warm-transfer": Rank.TRANSFER,
    "cold-transfer": Rank.TRANSFER,
    "transfer": Rank.TRANSFER,
    "ended": Rank.ENDED,
}


class Participant(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A party to a call: the caller, someone rung, the answerer, a redirector."""

    number: str
    name: str | None = None
    account_number: int | str | None = None
    user_numbers: tuple[str, ...] = ()
    user_emails: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """Name when known, else the number, as a human would want to read it."""
        return self.name or self.number or "unknown"

    @property
    def key(self) -> str:
        """Identity used to de-duplicate people across events (account, else number)."""
        if self.account_number is not None:
            return f"account:{self.account_number}"
        return f"number:{self.number}"


class Destination(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    number: str
    target: Participant | None = None
    targets: tuple[Participant, ...] = ()

    @property
    def people(self) -> tuple[Participant, ...]:
        """``target`` and ``targets`` together (in-progress uses either spelling)."""
        if self.target is None:
            return self.targets
        return (self.target, *self.targets)


class _Wire(msgspec.Struct, frozen=True, kw_only=True):
    """The payload as sent; unknown fields are ignored by msgspec."""

    call_id: str
    timestamp: str
    status: str
    version: str
    direction: str
    caller: Participant
    destination: Destination
    merged_id: str | None = None
    redirector: Participant | None = None
    reason: str | None = None


class Event(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One validated provider notification."""

    call_id: str
    timestamp: datetime  # always timezone-aware (UTC when the provider sent no offset)
    status: str  # one of STATUSES
    direction: Direction
    caller: Participant
    destination: Destination
    merged_id: str | None = None
    redirector: Participant | None = None
    reason: str | None = None

    @property
    def rank(self) -> Rank:
        return STATUS_RANK[self.status]

    @property
    def is_transfer(self) -> bool:
        return self.status in TRANSFER_STATUSES

    @property
    def transfer_kind(self) -> TransferKind:
        if self.status == "warm-transfer":
            return "warm"
        if self.status == "cold-transfer":
            return "cold"
        return "blind"

    def canonical(self) -> bytes:
        """Deterministic encoding of everything this bridge understands of the event."""
        return _encoder.encode(self)

    def dedupe_key(self) -> str:
        """Identical redeliveries share this key (extra, unknown fields do not count)."""
        return dedupe_key(self.canonical())


class InvalidEvent(ValueError):
    """The payload is JSON but not a notification we can accept; ``path`` names the field."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}" if path else problem)


class NotJSON(ValueError):
    """The body is not a JSON document."""


# Limits on what a body may be (the provider's notifications are about 4 levels deep).
MAX_DEPTH: Final = 32
# Timestamps are kept in this window so that converting them to any time zone and adding
# or subtracting the service's intervals (ring time, settle time, retention) never overflows.
EARLIEST: Final = datetime(1970, 1, 1, tzinfo=UTC)
LATEST: Final = datetime(9000, 1, 1, tzinfo=UTC)
_MARGIN: Final = timedelta(days=2)  # room for the widest UTC offset (±26 h)

_encoder: Final = msgspec.json.Encoder(order="deterministic")
_decoder: Final = msgspec.json.Decoder(_Wire)
_any_decoder: Final = msgspec.json.Decoder()

_MSGSPEC_PATH = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_TYPE_NAMES = {
    "`str`": "string",
    "`int`": "integer",
    "`object`": "object",
    "`array`": "array",
    "`null`": "null",
    "`bool`": "boolean",
    "`float`": "number",
    "`str | null`": "string or null",
    "`int | str | null`": "integer, string or null",
    "`object | null`": "object or null",
    "`array | null`": "array or null",
}


def _path_and_problem(err: msgspec.ValidationError) -> tuple[str, str]:
    """Turn msgspec's ``Expected `str`, got `int` - at `$.a[0].b``` into (path, problem)."""
    text = str(err)
    match = _MSGSPEC_PATH.search(text)
    path = match.group("path").lstrip(".") if match else ""
    problem = text[: match.start()] if match else text
    if problem.startswith("Expected "):
        got = ""
        expected = problem.removeprefix("Expected ")
        if ", got " in expected:
            expected, got = expected.split(", got ", 1)
        expected = _TYPE_NAMES.get(expected, expected.strip("`"))
        got = _TYPE_NAMES.get(got, got.strip("`"))
        problem = f"expected {expected}" + (f", got {got}" if got else "")
    elif problem.startswith("Object missing required field "):
        field = problem.removeprefix("Object missing required field ").strip("`")
        path = f"{path}.{field}" if path else field
        problem = "required field is missing"
    return path, problem


def parse_timestamp(text: str) -> datetime:
    """ISO 8601 with or without fraction and offset; a missing offset means UTC. Only
    date-times between :data:`EARLIEST` and :data:`LATEST` (UTC) are accepted."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidEvent(
            "timestamp", f"expected an ISO 8601 date-time, got {text[:40]!r}"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    # Compared before converting: at the ends of the calendar the conversion itself overflows.
    if not datetime.min + _MARGIN <= value.replace(tzinfo=None) <= datetime.max - _MARGIN:
        raise InvalidEvent("timestamp", _out_of_range(text))
    utc = value.astimezone(UTC)
    if not EARLIEST <= utc < LATEST:
        raise InvalidEvent("timestamp", _out_of_range(text))
    return utc


def _out_of_range(text: str) -> str:
    return (
        f"{text[:40]!r} is out of range: expected a date-time from "
        f"{EARLIEST.year} up to (not including) {LATEST.year}"
    )


_STRING: Final = re.compile(rb'"(?:[^"\\]+|\\.)*"?', re.DOTALL)  # a string, or its unclosed rest
_NOT_BRACKETS: Final = bytes(b for b in range(256) if b not in b"[]{}")


def nests_deeper_than(body: bytes, limit: int) -> bool:
    """Whether arrays and objects in ``body`` nest more than ``limit`` levels deep (brackets
    inside strings do not count). Linear in the body; a body with no more openings than the
    limit (nearly all of them) is not scanned at all."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    depth = 0
    for byte in _STRING.sub(b"", body).translate(None, _NOT_BRACKETS):
        if byte in b"[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def decode(body: bytes) -> Event:
    """Validate one notification body.

    Raises :class:`NotJSON` when the body is not JSON at all and :class:`InvalidEvent`
    (with the field path) when it is JSON of the wrong shape, nested more than
    :data:`MAX_DEPTH` levels deep included.
    """
    if nests_deeper_than(body, MAX_DEPTH):
        raise InvalidEvent("", _too_deep())
    try:
        wire = _decoder.decode(body)
    except RecursionError:  # pragma: no cover - the depth check comes first
        raise InvalidEvent("", _too_deep()) from None
    except msgspec.ValidationError as err:
        # Distinguish "not JSON" from "JSON of the wrong shape".
        path, problem = _path_and_problem(err)
        raise InvalidEvent(path, problem) from None
    except msgspec.DecodeError:
        try:
            doc = _any_decoder.decode(body)
        except msgspec.DecodeError:
            raise NotJSON("body is not valid JSON") from None
        if not isinstance(doc, dict):
            raise InvalidEvent("", "expected a JSON object") from None
        raise InvalidEvent("", "malformed notification") from None  # pragma: no cover
    return _check(wire)


MAX_ID_LENGTH: Final = 256


def _check_id(path: str, value: str) -> None:
    """Call ids are keys in the store: short, and text every store can hold (msgspec has
    already refused lone surrogates as invalid JSON)."""
    if len(value) > MAX_ID_LENGTH:
        raise InvalidEvent(path, f"longer than {MAX_ID_LENGTH} characters")
    if any(c < " " for c in value):
        raise InvalidEvent(path, "must not contain control characters")


def _too_deep() -> str:
    return f"arrays and objects nest more than {MAX_DEPTH} levels deep"


def _check(wire: _Wire) -> Event:
    if wire.version != SUPPORTED_VERSION:
        raise InvalidEvent(
            "version",
            f"unsupported version {wire.version!r}: this bridge understands only "
            f"{SUPPORTED_VERSION!r} notifications (choose v2 in the provider's portal)",
        )
    if wire.status not in STATUS_RANK:
        raise InvalidEvent(
            "status", f"unknown status {wire.status[:40]!r} (expected one of {', '.join(STATUSES)})"
        )
    if wire.direction not in ("inbound", "outbound"):
        raise InvalidEvent(
            "direction", f"expected 'inbound' or 'outbound', got {wire.direction[:40]!r}"
        )
    if not wire.call_id.strip():
        raise InvalidEvent("call_id", "must not be empty")
    _check_id("call_id", wire.call_id)
    if wire.merged_id:
        _check_id("merged_id", wire.merged_id)
    if wire.status in TRANSFER_STATUSES and wire.merged_id is not None and not wire.merged_id:
        raise InvalidEvent("merged_id", "must not be empty")
    if wire.merged_id is not None and wire.merged_id == wire.call_id:
        raise InvalidEvent("merged_id", "must differ from call_id")
    direction: Direction = "inbound" if wire.direction == "inbound" else "outbound"
    return Event(
        call_id=wire.call_id,
        timestamp=parse_timestamp(wire.timestamp),
        status=wire.status,
        direction=direction,
        caller=wire.caller,
        destination=wire.destination,
        merged_id=wire.merged_id or None,
        redirector=wire.redirector,
        reason=wire.reason if wire.status == "ended" else None,
    )


_event_decoder: Final = msgspec.json.Decoder(Event)


def dedupe_key(canonical: bytes) -> str:
    """:meth:`Event.dedupe_key` from the event's canonical encoding (when it is at hand)."""
    return hashlib.sha256(canonical).hexdigest()


def encode_event(event: Event) -> bytes:
    """Storage encoding (the canonical form); :func:`decode_stored` reads it back."""
    return event.canonical()


def decode_stored(data: bytes) -> Event:
    return _event_decoder.decode(data)
