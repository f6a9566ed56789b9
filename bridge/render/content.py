"""Stored render input (bridge.core.plan.Content) -> a platform's message, through its builders.

Each platform renderer supplies six pure builders (live root, thread reply, missed alert,
summary, a callback case's thread reply, the daily digest); this module picks the one the
content asks for and builds its view (pure)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar
from zoneinfo import ZoneInfo

from bridge.core.digest import DigestContent
from bridge.core.plan import (
    CaseStepContent,
    Content,
    MissedContent,
    ReplyContent,
    RootContent,
    SummaryContent,
)
from bridge.render.casetext import CaseView, case_view
from bridge.render.digest_view import DigestView, digest_view
from bridge.render.view import CallView, StepView, step_view, view

M = TypeVar("M")


def build(
    content: Content,
    mentions: Mapping[str, str],
    link: str | None,
    *,
    root: Callable[[CallView], M],
    reply: Callable[[StepView], M],
    missed_alert: Callable[[CallView, tuple[str, ...], str | None, CaseView | None], M],
    summary: Callable[[CallView, tuple[str, ...]], M],
    case_step: Callable[[CaseStepContent], M],
    digest: Callable[[DigestView], M],
) -> M:
    """``mentions``: e-mail -> the platform's mention of that person; ``link``: the live
    message's URL (for alerts). Route mentions come from the content itself."""
    tz = ZoneInfo(content.tz)
    match content:
        case ReplyContent(step=step, context=context, again=again):
            return reply(step_view(step, context, tz, again=again, mentions=mentions))
        case MissedContent(call=call, mentions=route_mentions, case=case):
            shown = None if case is None else case_view(case, tz)
            # A case's alert changes for days: its "When" carries the date once the case's
            # latest step is on another day than the call (the case's own times are dated
            # when not on the day of the first miss).
            latest = None if case is None else max((s.at for s in case.steps), default=None)
            called = view(call, tz, mentions=mentions, now=latest)
            return missed_alert(called, route_mentions, link, shown)
        case SummaryContent(call=call, mentions=route_mentions):
            return summary(view(call, tz, mentions=mentions), route_mentions)
        case RootContent(call=call):
            return root(view(call, tz, mentions=mentions))
        case CaseStepContent():
            return case_step(content)
        case DigestContent():
            return digest(digest_view(content))
