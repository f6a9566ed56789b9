"""Provider payload validation: the published fixtures decode; bad payloads name the field."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bridge.core.events import (
    Event,
    InvalidEvent,
    NotJSON,
    decode,
    decode_stored,
    encode_event,
    nests_deeper_than,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "voys"


def fixture_files() -> list[Path]:
    files = sorted(FIXTURES.glob("*.json"))
    if not files:  # fail loudly: a missing folder must not silently test nothing
        raise RuntimeError(f"no provider fixtures found in {FIXTURES}")
    return files


@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: p.name)
def test_every_fixture_decodes(path: Path) -> None:
    doc = json.loads(path.read_bytes())
    event = decode(path.read_bytes())
    assert event.call_id == doc["call_id"]
    assert event.status == doc["status"]
    assert event.caller.number == doc["caller"]["number"]
    assert event.timestamp.tzinfo is not None
    assert decode_stored(encode_event(event)) == event


def test_fixture_set_is_the_documented_one() -> None:
    names = {p.name for p in fixture_files()}
    assert {"created-2023.json", "ringing.json", "warm-transfer.json", "ended.json"} <= names


def test_fixture_details_survive_decoding() -> None:
    created = decode((FIXTURES / "created-2023.json").read_bytes())
    assert created.caller.name == "Johan | Voys"
    assert created.timestamp == datetime(2023, 9, 1, 13, 41, 25, 972110, tzinfo=UTC)

    zapier = decode((FIXTURES / "ringing-zapier-sample.json").read_bytes())  # extra "id" field
    assert [t.name for t in zapier.destination.targets] == ["Alice", "Bob"]
    assert zapier.caller.number == "+31xxxxxxxxxx"  # placeholder kept as given

    warm = decode((FIXTURES / "warm-transfer.json").read_bytes())
    assert warm.is_transfer
    assert warm.transfer_kind == "warm"
    assert warm.merged_id == "24c562241e9f-1502721212.101"
    assert warm.redirector is not None
    assert warm.redirector.number == "201"
    assert warm.destination.target is not None
    assert warm.destination.target.name == "C"

    cold = decode((FIXTURES / "cold-transfer.json").read_bytes())
    assert cold.transfer_kind == "cold"
    assert [p.name for p in cold.destination.people] == ["C"]

    ended = decode((FIXTURES / "ended.json").read_bytes())
    assert ended.reason == "completed"


VALID: dict[str, Any] = {
    "call_id": "ua9-grq-prd-1693575683.22973164",
    "timestamp": "2023-09-01T13:41:25+00:00",
    "status": "ringing",
    "version": "v2",
    "direction": "inbound",
    "caller": {"number": "+31501234567", "name": None, "account_number": None, "user_numbers": []},
    "destination": {
        "number": "+31508009000",
        "targets": [
            {"number": "+31508009101", "name": "Johan | Voys", "account_number": 201},
        ],
    },
}


def with_change(path: str, value: Any) -> bytes:
    """VALID with the dotted ``path`` set to ``value`` (``...`` deletes the field)."""
    doc = copy.deepcopy(VALID)
    *parents, last = path.split(".")
    node: Any = doc
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    key: Any = int(last) if last.isdigit() else last
    if value is ...:
        del node[key]
    else:
        node[key] = value
    return json.dumps(doc).encode()


def test_valid_base_payload_decodes() -> None:
    event = decode(json.dumps(VALID).encode())
    assert event.destination.targets[0].account_number == 201


STATUSES = "created, ringing, in-progress, warm-transfer, cold-transfer, transfer, ended"

INVALID = [
    pytest.param(
        with_change("destination.targets.0.number", 31508009101),
        "destination.targets[0].number",
        "expected string, got integer",
        id="target-number-int",
    ),
    pytest.param(
        with_change("destination.targets.0.name", 5),
        "destination.targets[0].name",
        "expected string or null, got integer",
        id="target-name-int",
    ),
    pytest.param(
        with_change("destination.targets.0.account_number", 1.5),
        "destination.targets[0].account_number",
        "expected integer, string or null, got number",
        id="account-number-float",
    ),
    pytest.param(
        with_change("destination.targets.0.number", ...),
        "destination.targets[0].number",
        "required field is missing",
        id="target-number-missing",
    ),
    pytest.param(
        with_change("destination.targets", {"number": "+31508009101"}),
        "destination.targets",
        "expected array, got object",
        id="targets-object",
    ),
    pytest.param(
        with_change("caller.user_numbers", "201"),
        "caller.user_numbers",
        "expected array, got string",
        id="user-numbers-string",
    ),
    pytest.param(
        with_change("caller", None), "caller", "expected object, got null", id="caller-null"
    ),
    pytest.param(
        with_change("destination.number", ...),
        "destination.number",
        "required field is missing",
        id="destination-number-missing",
    ),
    pytest.param(
        with_change("call_id", ...), "call_id", "required field is missing", id="call-id-missing"
    ),
    pytest.param(with_change("call_id", "  "), "call_id", "must not be empty", id="call-id-blank"),
    pytest.param(
        with_change("timestamp", 1693575685),
        "timestamp",
        "expected string, got integer",
        id="timestamp-number",
    ),
    pytest.param(
        with_change("timestamp", "yesterday"),
        "timestamp",
        "expected an ISO 8601 date-time, got 'yesterday'",
        id="timestamp-garbage",
    ),
    pytest.param(
        with_change("version", "v1"),
        "version",
        "unsupported version 'v1': this bridge understands only 'v2' notifications "
        "(choose v2 in the provider's portal)",
        id="version-v1",
    ),
    pytest.param(
        with_change("status", "on-hold"),
        "status",
        f"unknown status 'on-hold' (expected one of {STATUSES})",
        id="unknown-status",
    ),
    pytest.param(
        with_change("direction", "sideways"),
        "direction",
        "expected 'inbound' or 'outbound', got 'sideways'",
        id="unknown-direction",
    ),
    pytest.param(
        with_change("merged_id", VALID["call_id"]),
        "merged_id",
        "must differ from call_id",
        id="merged-into-itself",
    ),
    pytest.param(
        with_change("redirector", {"name": "B"}),
        "redirector.number",
        "required field is missing",
        id="redirector-without-number",
    ),
    pytest.param(b"[1, 2]", "", "expected object, got array", id="array"),
    pytest.param(b'"ringing"', "", "expected object, got string", id="string"),
]


@pytest.mark.parametrize(("body", "path", "problem"), INVALID)
def test_invalid_payload_names_field_and_problem(body: bytes, path: str, problem: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        decode(body)
    assert (caught.value.path, caught.value.problem) == (path, problem)
    assert str(caught.value) == (f"{path}: {problem}" if path else problem)


@pytest.mark.parametrize("body", [b"", b"{", b"not json", b"\xff\xfe"])
def test_not_json(body: bytes) -> None:
    with pytest.raises(NotJSON, match="not valid JSON"):
        decode(body)


def test_extra_fields_are_tolerated_and_do_not_change_dedupe_key() -> None:
    plain = decode(json.dumps(VALID).encode())
    extra = decode(with_change("id", 1))
    assert extra == plain
    assert extra.dedupe_key() == plain.dedupe_key()


def test_missing_offset_means_utc_and_offsets_are_normalised() -> None:
    naive = decode(with_change("timestamp", "2023-09-01T13:41:25"))
    zulu = decode(with_change("timestamp", "2023-09-01T13:41:25Z"))
    cest = decode(with_change("timestamp", "2023-09-01T15:41:25+02:00"))
    expected = datetime(2023, 9, 1, 13, 41, 25, tzinfo=UTC)
    assert naive.timestamp == zulu.timestamp == cest.timestamp == expected


def test_reason_is_kept_only_on_ended() -> None:
    ringing = decode(with_change("reason", "busy"))
    assert ringing.reason is None
    doc = copy.deepcopy(VALID)
    doc.update(status="ended", reason="no-answer", destination={"number": "+31508009000"})
    ended = decode(json.dumps(doc).encode())
    assert ended.reason == "no-answer"


def test_in_progress_target_and_targets_are_both_people() -> None:
    doc = copy.deepcopy(VALID)
    person = {"number": "+31508009101", "name": "Johan | Voys"}
    doc.update(status="in-progress", destination={"number": "+31508009000", "target": person})
    single = decode(json.dumps(doc).encode())
    doc["destination"] = {"number": "+31508009000", "targets": [person]}
    listed = decode(json.dumps(doc).encode())
    assert [p.label for p in single.destination.people] == ["Johan | Voys"]
    assert [p.label for p in listed.destination.people] == ["Johan | Voys"]


def test_dedupe_key_differs_when_content_differs() -> None:
    a = decode(json.dumps(VALID).encode())
    b = decode(with_change("timestamp", "2023-09-01T13:41:26+00:00"))
    assert isinstance(a, Event)
    assert a.dedupe_key() != b.dedupe_key()


def test_nesting_counts_brackets_outside_strings_only() -> None:
    assert not nests_deeper_than(b'{"a": [[1], {"b": [2]}]}', 4)
    assert nests_deeper_than(b'{"a": [[1], {"b": [2]}]}', 3)
    assert not nests_deeper_than(b'{"a": [[1], {"b": [2]}], "c": "[[[[{{{{"}', 4)
    assert not nests_deeper_than(b'{"s": "\\"[[[[[[", "t": [1]}', 2)
    assert nests_deeper_than(b'{"s": "\\\\", "t": [[[1]]]}', 3)  # an escaped backslash ends
    assert nests_deeper_than(b"[" * 100, 10)
    assert not nests_deeper_than(b'"unclosed [[[[[[[[', 3)
