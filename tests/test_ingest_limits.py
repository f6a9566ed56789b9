"""Hostile bodies over real HTTP: deep nesting, timestamps at the ends of the calendar and ids
no store can hold are refused with a 4xx naming the problem, never a 500 or a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bridge.core import numbers
from bridge.render import phone
from tests.support.harness import fixture_bytes, make_settings, payload, running_bridge

TOKEN = "s3cret-webhook-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _with_extra(raw: bytes) -> bytes:
    """The provider's ringing fixture with ``"extra": <raw>`` added as an unknown field."""
    doc = fixture_bytes("ringing.json").rstrip()
    assert doc.endswith(b"}")
    return doc[:-1] + b', "extra": ' + raw + b"}"


@pytest.mark.parametrize(
    "extra",
    [
        b"[" * 1000 + b"]" * 1000,  # the 2.4 KB body of the report
        b'{"a":' * 1000 + b"1" + b"}" * 1000,
        b"[" * 20000,  # not even closed
    ],
    ids=["arrays", "objects", "unclosed"],
)
async def test_deep_nesting_is_422_without_a_traceback(
    tmp_path: Path, extra: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    async with running_bridge(make_settings(tmp_path)) as (_bridge, client, _s):
        response = await client.post("/notifications", data=_with_extra(extra), headers=AUTH)
        assert response.status in (400, 422)
        assert (await response.json())["error"] in (
            "arrays and objects nest more than 32 levels deep",
            "body is not valid JSON",
        )
        if extra.endswith((b"]", b"}")):
            assert response.status == 422
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err
    assert "RecursionError" not in out.out + out.err


async def test_brackets_inside_strings_do_not_count_as_nesting(tmp_path: Path) -> None:
    doc = payload()
    doc["note"] = "[{" * 5000 + '\\"[' * 100
    doc["deep_enough"] = json.loads("[" * 30 + "]" * 30)
    async with running_bridge(make_settings(tmp_path)) as (_b, client, _s):
        response = await client.post("/notifications", data=json.dumps(doc), headers=AUTH)
        assert response.status == 200, await response.text()


@pytest.mark.parametrize(
    "timestamp",
    [
        "9999-12-31T23:59:59.999999-14:00",  # past the calendar once in UTC
        "0001-01-01T00:00:00+14:00",  # before the calendar once in UTC
        "9999-12-31T23:59:59+00:00",  # representable, but not once a day is added
        "0001-01-01T00:00:00Z",  # representable, but not once a day is subtracted
        "9000-01-01T00:00:00Z",
        "1969-12-31T23:59:59Z",
    ],
)
async def test_unrepresentable_timestamps_are_422_naming_the_field(
    tmp_path: Path, timestamp: str, capsys: pytest.CaptureFixture[str]
) -> None:
    async with running_bridge(make_settings(tmp_path)) as (bridge, client, _s):
        response = await client.post(
            "/notifications", data=json.dumps(payload(timestamp=timestamp)), headers=AUTH
        )
        assert response.status == 422
        assert (await response.json())["error"] == (
            f"timestamp: {timestamp!r} is out of range: expected a date-time from 1970 up to "
            "(not including) 9000"
        )
        assert await bridge.store.story("abc-1700000000.1") is None
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err


@pytest.mark.parametrize("timestamp", ["1970-01-01T00:00:00Z", "8999-12-31T23:59:59.999999+00:00"])
async def test_timestamps_at_the_ends_of_the_window_are_accepted(
    tmp_path: Path, timestamp: str
) -> None:
    async with running_bridge(make_settings(tmp_path)) as (_b, client, _s):
        response = await client.post(
            "/notifications", data=json.dumps(payload(timestamp=timestamp)), headers=AUTH
        )
        assert response.status == 200, await response.text()


@pytest.mark.parametrize(
    ("call_id", "message"),
    [
        ("a\x00b", "call_id: must not contain control characters"),
        ("x" * 257, "call_id: longer than 256 characters"),
    ],
)
async def test_ids_no_store_can_hold_are_422(tmp_path: Path, call_id: str, message: str) -> None:
    data = json.dumps(payload(call_id=call_id)).encode()
    async with running_bridge(make_settings(tmp_path)) as (_b, client, _s):
        response = await client.post("/notifications", data=data, headers=AUTH)
        assert response.status == 422
        assert (await response.json())["error"] == message


async def test_events_past_the_cap_of_a_call_are_422_and_counted(tmp_path: Path) -> None:
    async with running_bridge(make_settings(tmp_path)) as (bridge, client, _s):
        for n in range(200):
            stamp = f"2026-11-24T12:{n // 60:02d}:{n % 60:02d}+00:00"
            response = await client.post(
                "/notifications", data=json.dumps(payload(timestamp=stamp)), headers=AUTH
            )
            assert response.status == 200, n
        response = await client.post(
            "/notifications",
            data=json.dumps(payload(status="ended", reason="completed")),
            headers=AUTH,
        )
        assert response.status == 422
        assert (await response.json())["error"] == (
            "call 'abc-1700000000.1' already has 200 events (with the calls merged into it): "
            "no more are stored for it"
        )
        # A redelivery of a stored event is still a duplicate, not refused.
        stamp = "2026-11-24T12:00:07+00:00"
        response = await client.post(
            "/notifications", data=json.dumps(payload(timestamp=stamp)), headers=AUTH
        )
        assert response.status == 200
        assert (await response.json()) == {"status": "duplicate"}
        story = await bridge.store.story("abc-1700000000.1")
        assert story is not None
        assert len(story.events) == 200
        metrics = await (await client.get("/metrics")).text()
        assert 'callbridge_events_refused_total{reason="call_events_cap"} 1.0' in metrics
        assert 'callbridge_events_received_total{result="refused",status="ended"} 1.0' in metrics


def test_strings_longer_than_any_phone_number_are_never_cache_keys() -> None:
    junk = "+31" + "5" * 30_000
    before = (numbers._e164.cache_info().currsize, phone._format_number.cache_info().currsize)
    assert numbers.e164(junk, "NL") is None
    assert phone.format_number(junk) == junk
    after = (numbers._e164.cache_info().currsize, phone._format_number.cache_info().currsize)
    assert after == before
    assert numbers.e164("+31508009000", "NL") == "+31508009000"
    assert phone.format_number("+31508009000") == "+31 50 800 9000"
