"""Play the callback case flows (bridge/simulate/case_flows.py) against a running bridge:
each flow's calls to the notification URL, its button presses to ``/slack/interactions``
beside it, signed with the Slack app's signing secret as Slack signs them.

A flow with presses needs the bridge's signing secret; without one it is skipped, and says
why. Flows run one after the other (a flow's calls are one customer's story in order).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final
from urllib.parse import urlencode

import aiohttp
from slack_sdk.signature import SignatureVerifier
from yarl import URL

from bridge.core.cases import ACTION_PREFIX, CaseRef, encode_ref
from bridge.simulate.case_flows import CASE_FLOWS, CaseCall, CaseContext, Press

INTERACTIONS_PATH: Final = "/slack/interactions"


@dataclass(frozen=True)
class CaseRun:
    flow: str
    customer: str
    sent: int  # requests: events and presses
    ok: int
    skipped: str | None = None  # why the flow was not played
    problems: tuple[str, ...] = ()


def press_body(ctx: CaseContext, press: Press, n: int, scope: str, at: float) -> bytes:
    """A Slack ``block_actions`` interaction for a case button, as Slack form-encodes it."""
    assert ctx.first_call_id is not None, "a press follows the flow's first missed call"
    ref = CaseRef(scope, ctx.customer.number, ctx.first_call_id)
    payload = {
        "type": "block_actions",
        "user": {"id": press.user_id, "name": press.user, "username": press.user.lower()},
        "actions": [
            {
                "action_id": ACTION_PREFIX + press.action,
                "action_ts": f"{at:.6f}{n}",
                "value": encode_ref(ref),
                "type": "button",
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def signed(body: bytes, secret: str, now: float) -> dict[str, str]:
    timestamp = str(int(now))
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    assert signature is not None  # only None without a timestamp or a body
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": signature,
    }


async def play_case_flows(
    session: aiohttp.ClientSession,
    url: str,
    names: Sequence[str],
    *,
    token: str | None,
    signing_secret: str | None,
    now: Callable[[], datetime],
    seed: int = 0,
    scope: str = "default",
    wall: Callable[[], float] = time.time,
) -> list[CaseRun]:
    """Play each named flow; never raises for an answer (problems are reported).

    ``wall``: the clock the presses are signed with (Slack's, in seconds since 1970)."""
    interactions = str(URL(url).with_path(INTERACTIONS_PATH).with_query(None))
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    timeout = aiohttp.ClientTimeout(total=10)
    runs: list[CaseRun] = []
    for i, name in enumerate(names):
        flow = CASE_FLOWS[name]
        seed_bytes = hashlib.sha256(f"{seed}:{i}:{name}".encode()).digest()
        ctx = CaseContext(now(), seed=int.from_bytes(seed_bytes[:4], "big"))
        actions = flow.build(ctx)
        if flow.presses and not signing_secret:
            why = "needs the bridge's Slack signing secret (--slack-signing-secret)"
            runs.append(CaseRun(name, ctx.customer.number, 0, 0, skipped=why))
            continue
        sent = ok = 0
        problems: list[str] = []
        for n, action in enumerate(actions):
            if isinstance(action, CaseCall):
                requests = [(url, json.dumps(p).encode(), headers) for p in action.payloads]
            else:
                assert signing_secret is not None
                body = press_body(ctx, action, n, scope, wall())
                requests = [(interactions, body, signed(body, signing_secret, wall()))]
            for target, body, request_headers in requests:
                sent += 1
                try:
                    async with session.post(
                        target, data=body, headers=request_headers, timeout=timeout
                    ) as resp:
                        text = await resp.text(errors="replace")
                        if 200 <= resp.status < 300:
                            ok += 1
                        else:
                            problems.append(f"{name}: HTTP {resp.status}: {text[:200]}")
                except (aiohttp.ClientError, TimeoutError) as err:
                    problems.append(f"{name}: {type(err).__name__}: {err or 'timed out'}")
        runs.append(CaseRun(name, ctx.customer.number, sent, ok, problems=tuple(problems)))
    return runs
