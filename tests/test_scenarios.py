"""The scenario payloads look like the provider's own (shapes of tests/fixtures/voys)."""

from __future__ import annotations

import json
import random
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from bridge.core.events import decode
from bridge.simulate import SCENARIOS, Leg, ScenarioContext, build

T0 = datetime(2024, 3, 5, 9, 41, 7, tzinfo=UTC)
CALL_ID = re.compile(r"^ua9-grq-prd-\d{10}\.\d{8}$")  # like ua9-grq-prd-1693575683.22973164
WHOLE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$")
FRACTION = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$")
FIELDS = {"call_id", "timestamp", "status", "version", "direction", "caller", "destination"}


def all_payloads(seed: int = 0) -> list[dict[str, Any]]:
    return [doc for name in SCENARIOS for doc in build(name, ScenarioContext(T0, seed=seed))]


def people(doc: dict[str, Any]) -> list[dict[str, Any]]:
    dest = doc["destination"]
    found = [doc["caller"], *dest.get("targets", [])]
    found += [p for p in (dest.get("target"), doc.get("redirector")) if p]
    return found


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_payload_is_a_valid_v2_notification(name: str) -> None:
    ctx = ScenarioContext(T0, seed=1)
    docs = build(name, ctx)
    assert docs
    for doc in docs:
        assert set(doc) >= FIELDS
        assert doc["version"] == "v2"
        assert CALL_ID.match(doc["call_id"])
        assert WHOLE.match(doc["timestamp"]) or FRACTION.match(doc["timestamp"])
        event = decode(json.dumps(doc).encode())  # survives the wire
        assert event.call_id in ctx.legs.values()
    assert SCENARIOS[name].description


def test_timestamps_mix_whole_seconds_and_fractions() -> None:
    stamps = [doc["timestamp"] for doc in all_payloads()]
    whole = [t for t in stamps if WHOLE.match(t)]
    assert len(whole) >= 10
    assert len(stamps) - len(whole) >= 10
    # several events share a whole second, as the provider's do
    assert len(whole) > len(set(whole))


def test_people_look_like_the_providers() -> None:
    everyone = [p for doc in all_payloads() for p in people(doc)]
    names = {p["name"] for p in everyone}
    assert "Johan | Voys" in names
    assert None in names
    assert any("user_emails" not in p for p in everyone)
    assert any(p.get("user_emails") == [] for p in everyone)
    assert any(p.get("user_emails") for p in everyone)
    assert {type(p["account_number"]) for p in everyone} == {int, type(None)}
    for person in everyone:
        assert isinstance(person["user_numbers"], list)


def test_numbers_are_dutch_and_outbound_ones_may_not_be_e164() -> None:
    callers = {
        ScenarioContext(T0, seed=seed).customer().number for seed in range(40)
    }  # random outside callers
    assert all(re.fullmatch(r"\+31(50\d{7}|20\d{7}|6\d{8})", n) for n in callers)
    assert any(n.startswith("+3150") for n in callers)
    assert any(n.startswith("+3120") for n in callers)
    outbound = build("outbound", ScenarioContext(T0))
    assert outbound[0]["direction"] == "outbound"
    assert not outbound[0]["destination"]["number"].startswith("+")


def test_created_only_on_inbound_calls() -> None:
    for doc in all_payloads():
        if doc["status"] == "created":
            assert doc["direction"] == "inbound"


def test_same_seed_same_calls_and_different_seed_different_ids() -> None:
    assert all_payloads(5) == all_payloads(5)
    a = build("answered", ScenarioContext(T0, seed=1))
    b = build("answered", ScenarioContext(T0, seed=2))
    assert a[0]["call_id"] != b[0]["call_id"]


def test_ids_from_one_shared_generator_do_not_repeat() -> None:
    rng = random.Random(0)
    ids: list[str] = []
    for _ in range(300):
        ctx = ScenarioContext(T0, seed=rng)
        build("warm-transfer", ctx)
        ids += ctx.legs.values()
    assert len(ids) == len(set(ids)) == 600


@pytest.mark.parametrize(
    ("name", "survivor"),
    [
        ("warm-transfer", "original"),
        ("warm-transfer-consult-survives", "consult"),
        ("semi-attended-transfer", "consult"),
        ("cold-transfer", "original"),
    ],
)
def test_transfers_merge_the_other_leg(name: str, survivor: Leg) -> None:
    ctx = ScenarioContext(T0, seed=4)
    docs = build(name, ctx)
    other: Leg = "consult" if survivor == "original" else "original"
    (transfer,) = [d for d in docs if "transfer" in d["status"]]
    assert transfer["call_id"] == ctx.legs[survivor]
    assert transfer["merged_id"] == ctx.legs[other]
    assert transfer["redirector"]["number"] == "201"  # by extension, as in the fixtures
    after = docs[docs.index(transfer) + 1 :]
    assert all(d["call_id"] == ctx.legs[survivor] for d in after)
    assert after[-1]["status"] == "ended"


@pytest.mark.parametrize("name", ["warm-transfer", "semi-attended-transfer"])
def test_consult_call_is_outbound_from_the_colleague(name: str) -> None:
    ctx = ScenarioContext(T0, seed=4)
    docs = build(name, ctx)
    consult = [d for d in docs if d["call_id"] == ctx.legs["consult"] and "merged_id" not in d]
    before = consult[: [d["status"] for d in consult].index("ringing") + 1]
    assert before[0]["direction"] == "outbound"
    assert before[0]["caller"]["name"] == "Johan | Voys"
    assert before[0]["caller"]["number"] == "201"


def test_unknown_scenario_names_the_valid_ones() -> None:
    with pytest.raises(KeyError, match="unknown scenario 'voicemail'; choose one of: answered"):
        build("voicemail", ScenarioContext(T0))


def test_context_needs_an_aware_start() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ScenarioContext(datetime(2024, 1, 1))


def test_speed_compresses_the_timeline_from_the_start() -> None:
    # answered: created 0.x s, ringing 0 s, answered 9 s, ended 185 s into the call
    stamps = [doc["timestamp"] for doc in build("answered", ScenarioContext(T0, speed=10))]
    assert stamps[1:] == [
        "2024-03-05T09:41:07+00:00",
        "2024-03-05T09:41:07+00:00",  # 0.9 s, truncated to the second
        "2024-03-05T09:41:25+00:00",  # 18.5 s
    ]
    assert FRACTION.match(stamps[0])
    assert stamps[0].startswith("2024-03-05T09:41:07.0")  # less than 0.1 s in
    with pytest.raises(ValueError, match="speed"):
        ScenarioContext(T0, speed=0)
