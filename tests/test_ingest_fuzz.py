"""Whatever a client sends, the answer is never a 5xx (and the process keeps running)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.bench import fuzz_ingest
from tests.support.harness import FIXTURES, json_paths, make_settings, running_bridge

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)
templates = [json.loads(p.read_bytes()) for p in sorted(FIXTURES.glob("*.json"))]


@st.composite
def mutated_payloads(draw: st.DrawFn) -> bytes:
    """A real provider payload with one node replaced, deleted or retyped."""
    doc = json.loads(json.dumps(draw(st.sampled_from(templates))))
    path = draw(st.sampled_from(json_paths(doc)[1:]))
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if draw(st.booleans()) and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(json_values)
    return json.dumps(doc).encode()


@st.composite
def deeply_nested(draw: st.DrawFn) -> bytes:
    """A real payload with an unknown field nested up to 3,000 levels deep (closed or not)."""
    raw = json.dumps(draw(st.sampled_from(templates))).encode()
    depth = draw(st.integers(min_value=1, max_value=3000))
    opener = draw(st.sampled_from([b"[", b'{"k":', b'[{"k":']))
    closer = {b"[": b"]", b'{"k":': b"}", b'[{"k":': b"}]"}[opener]
    closed = draw(st.booleans())
    tail = closer * depth if closed else b""
    return raw[:-1] + b', "extra": ' + opener * depth + b"0" + tail + b"}"


extreme_timestamps = st.datetimes(
    timezones=st.sampled_from(
        [UTC, timezone(timedelta(hours=14)), timezone(-timedelta(hours=14, minutes=59))]
    )
).map(datetime.isoformat) | st.sampled_from(
    [
        "9999-12-31T23:59:59.999999-14:00",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59Z",
        "0001-01-01T00:00:00",
        "+999999-01-01T00:00:00Z",
    ]
)


@st.composite
def extreme_timestamp_payloads(draw: st.DrawFn) -> bytes:
    doc = json.loads(json.dumps(draw(st.sampled_from(templates))))
    doc["timestamp"] = draw(extreme_timestamps)
    return json.dumps(doc).encode()


bodies = (
    st.binary(max_size=512)
    | json_values.map(lambda v: json.dumps(v).encode())
    | mutated_payloads()
    | deeply_nested()
    | extreme_timestamp_payloads()
    | st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass"))
)


def test_fuzzed_bodies_never_produce_a_5xx(tmp_path: Path) -> None:
    with asyncio.Runner() as runner:
        context = running_bridge(make_settings(tmp_path, webhook_token=None))
        _bridge, client, _sink = runner.run(context.__aenter__())
        statuses: set[int] = set()
        try:

            @settings(
                max_examples=400,
                deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture],
            )
            @given(data=bodies, content_type=st.sampled_from(["application/json", "text/plain"]))
            def post(data: bytes, content_type: str) -> None:
                async def send() -> int:
                    response = await client.post(
                        "/notifications", data=data, headers={"Content-Type": content_type}
                    )
                    await response.read()
                    return response.status

                status = runner.run(send())
                statuses.add(status)
                assert status < 500, data

            post()
            health = runner.run(client.get("/healthz"))
            assert health.status == 200
        finally:
            runner.run(context.__aexit__(None, None, None))
    assert {200, 422} <= statuses  # the fuzzing reached both valid and invalid payloads


def test_a_seeded_share_of_the_long_fuzz_never_gets_a_5xx(tmp_path: Path) -> None:
    """300 bodies of tests/bench/fuzz_ingest.py (its 20,000-body run is by hand)."""

    async def run() -> Counter[int]:
        statuses: Counter[int] = Counter()
        async with running_bridge(make_settings(tmp_path, webhook_token=None)) as (_b, client, _s):
            for kind, data in fuzz_ingest.bodies(seed=13, count=300):
                response = await client.post(
                    "/notifications", data=data, headers={"Content-Type": "application/json"}
                )
                await response.read()
                statuses[response.status] += 1
                assert response.status < 500, (kind, data[:300])
            assert (await client.get("/healthz")).status == 200
        return statuses

    statuses = asyncio.run(run())
    assert {200, 400, 413, 422} <= set(statuses)  # valid, not JSON, too large and invalid
