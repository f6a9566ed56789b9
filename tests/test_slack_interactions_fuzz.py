"""Whatever reaches POST /slack/interactions, signed or not, the answer is never a 5xx."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.clicks_env import REF, clicks_bridge
from tests.support.harness import json_paths
from tests.support.slack_clicks import FORM, PATH, block_actions, signed_headers
from tests.test_ingest_fuzz import json_values

TEMPLATE = block_actions("claim", REF, response_url="https://hooks.slack.com/actions/T/1/x")


@st.composite
def mutated_payloads(draw: st.DrawFn) -> str:
    """A real block_actions payload with one node replaced, deleted or retyped."""
    doc: Any = json.loads(json.dumps(TEMPLATE))
    path = draw(st.sampled_from(json_paths(doc)[1:]))
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if draw(st.booleans()) and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(json_values)
    return json.dumps(doc)


forms = (
    mutated_payloads().map(lambda p: urlencode({"payload": p}).encode())
    | st.text(max_size=200).map(lambda t: urlencode({"payload": t}).encode())
    | st.binary(max_size=300)
    | st.integers(min_value=95, max_value=120).map(lambda n: ("a=1&" * n).encode())
)


def test_fuzzed_signed_requests_never_produce_a_5xx(tmp_path: Path) -> None:
    with asyncio.Runner() as runner:
        context = clicks_bridge(tmp_path)
        world = runner.run(context.__aenter__())
        statuses: set[int] = set()
        try:

            @settings(
                max_examples=300,
                deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture],
            )
            @given(
                body=forms,
                content_type=st.sampled_from([FORM, "application/json"]),
                signed=st.booleans(),
            )
            def post(body: bytes, content_type: str, signed: bool) -> None:
                headers = signed_headers(body, world.clock.now, content_type=content_type)
                if not signed:
                    headers["X-Slack-Signature"] = "v0=" + "0" * 64

                async def send() -> int:
                    response = await world.client.post(PATH, data=body, headers=headers)
                    await response.read()
                    return response.status

                status = runner.run(send())
                statuses.add(status)
                assert status < 500, (status, body[:200])

            post()
            runner.run(world.bridge.answers.idle())
        finally:
            runner.run(context.__aexit__(None, None, None))
        assert {200, 400, 401} <= statuses  # valid, malformed and unsigned requests all came
