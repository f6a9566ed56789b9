"""A mention from the rules reaches only the platforms whose syntax it is written in
(bridge/core/mentions.py, applied by bridge/core/plan.py): a route's ``mention`` and a
case's escalation go to Slack and Teams destinations alike."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from bridge.core.calls import Call, fold
from bridge.core.cases import AlertTo, CaseKey, Missed
from bridge.core.cases import fold as fold_cases
from bridge.core.events import decode
from bridge.core.mentions import mentions_on
from bridge.core.plan import CaseStepContent, MissedContent, plan
from bridge.core.plan import decode as decode_content
from bridge.core.routing import Delivery, Target
from bridge.simulate import ScenarioContext, build

T0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
SLACK_GROUP, HERE, JAN, AT_JAN, WORDS = (
    "<!subteam^S0123ABCD>",
    "<!here>",
    "jan@example.com",
    "<at>jan@example.com</at>",
    "@oncall",
)
EVERY = (SLACK_GROUP, HERE, JAN, AT_JAN, WORDS)


@pytest.mark.parametrize(
    ("platform", "shown"),
    [
        ("slack", (SLACK_GROUP, HERE, WORDS)),
        ("teams", (JAN, AT_JAN, WORDS)),
    ],
)
def test_each_platform_gets_the_mentions_written_in_its_syntax_and_plain_words(
    platform: str, shown: tuple[str, ...]
) -> None:
    assert mentions_on(platform, EVERY) == shown
    assert mentions_on(platform, ()) == ()


def missed_call() -> Call:
    docs = build("no-answer", ScenarioContext(T0, seed=7))
    return fold([decode(json.dumps(doc).encode()) for doc in docs], now=T0 + timedelta(hours=1))


def test_a_route_mention_on_a_slack_and_a_teams_alert_and_summary() -> None:
    call = missed_call()
    targets = [
        Target(Delivery("oncall", kind, "r", EVERY), platform, channel)
        for kind in ("missed", "summary")
        for platform, channel in (("slack", "C0999999999"), ("teams", "19:a@thread.tacv2"))
    ]
    shown = {
        (p.platform, p.kind): decode_content(p.content).mentions  # type: ignore[union-attr]
        for p in plan(call, "Europe/Amsterdam", targets)
    }
    assert shown == {
        ("slack", "missed"): (SLACK_GROUP, HERE, WORDS),
        ("slack", "summary"): (SLACK_GROUP, HERE, WORDS),
        ("teams", "missed"): (JAN, AT_JAN, WORDS),
        ("teams", "summary"): (JAN, AT_JAN, WORDS),
    }


def test_a_case_escalated_to_slack_and_teams_people_mentions_each_on_their_own_platform() -> None:
    call = missed_call()
    key = CaseKey("default", "+31612345678")
    fact = Missed(
        story_id=call.call_id,
        at=T0,
        caller="+31 6 12345678",
        dialled="+31508009000",
        rung=(),
        destinations=("support", "sales"),
        mentions=(SLACK_GROUP, JAN),
        alerts=(AlertTo("support", (SLACK_GROUP,)), AlertTo("sales", (JAN,))),
        escalate_at=T0 + timedelta(minutes=30),
        escalate_to=(SLACK_GROUP, JAN),
    )
    (case,) = fold_cases(key, [fact], T0 + timedelta(hours=1))
    assert case.escalated_at == T0 + timedelta(minutes=30)
    targets = [
        Target(Delivery("support", "missed", "r", (SLACK_GROUP,)), "slack", "C0123456789"),
        Target(Delivery("sales", "missed", "r", (JAN,)), "teams", "19:a@thread.tacv2"),
    ]
    escalation: dict[str, tuple[str, ...]] = {}
    alert_says: dict[str, tuple[str, ...]] = {}
    for planned in plan(call, "Europe/Amsterdam", targets, case=case):
        content = decode_content(planned.content)
        if isinstance(content, CaseStepContent) and content.step.kind == "escalated":
            escalation[planned.platform] = content.step.mentions
        elif isinstance(content, MissedContent):
            assert content.case is not None
            alert_says[planned.platform] = content.case.first.escalate_to
            assert content.mentions == (SLACK_GROUP if planned.platform == "slack" else JAN,)
    assert escalation == {"slack": (SLACK_GROUP,), "teams": (JAN,)}
    assert alert_says == {"slack": (SLACK_GROUP,), "teams": (JAN,)}
