"""What waits for the settle time (bridge/core/plan.py, ``Planned.settles``): what says a
call was missed, since a late answer may still come. The missed alert, and the live thread's
line that tells the miss: a thread is a log, and a "Missed" line posted before the late
`in-progress` could never be corrected (tests/test_slack_delivery.py,
``test_missed_alert_waits_for_a_late_answer``, saw it happen)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from bridge.core.calls import Call, fold
from bridge.core.events import decode
from bridge.core.plan import ReplyContent, plan
from bridge.core.plan import decode as decode_content
from bridge.core.routing import Delivery, Target
from bridge.simulate import ScenarioContext, build

T0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
LIVE = Target(Delivery("support", "live", "everything"), "slack", "C0123456789")
ALERT = Target(Delivery("oncall", "missed", "everything"), "slack", "C0999999999")


def call_of(name: str) -> Call:
    docs = build(name, ScenarioContext(T0, seed=7))
    return fold([decode(json.dumps(doc).encode()) for doc in docs], now=T0 + timedelta(hours=1))


def settling(call: Call, targets: list[Target]) -> list[str]:
    """What each settling slot shows: ``alert``, or the kind of its thread line's step."""
    shown: list[str] = []
    for planned in plan(call, "Europe/Amsterdam", targets):
        if planned.settles:
            content = decode_content(planned.content)
            shown.append(content.step.kind if isinstance(content, ReplyContent) else "alert")
    return shown


@pytest.mark.parametrize("name", ["no-answer", "caller-hangs-up", "unavailable"])
def test_a_missed_call_s_alert_and_its_missed_line_settle(name: str) -> None:
    call = call_of(name)
    assert call.missed
    assert sorted(settling(call, [LIVE, ALERT])) == ["alert", "ended"]
    assert settling(call, [LIVE]) == ["ended"]  # the thread's "Missed: ..." line


@pytest.mark.parametrize("name", ["answered", "cold-transfer", "pickup"])
def test_nothing_of_an_answered_call_settles(name: str) -> None:
    call = call_of(name)
    assert call.ended
    assert not call.missed
    assert settling(call, [LIVE]) == []  # routing gives an answered call no alert


def test_nothing_settles_before_the_call_has_ended() -> None:
    docs = build("no-answer", ScenarioContext(T0, seed=7))
    events = [decode(json.dumps(doc).encode()) for doc in docs]
    ringing = fold([e for e in events if e.status != "ended"], now=T0 + timedelta(seconds=20))
    assert not ringing.ended
    assert settling(ringing, [LIVE]) == []
