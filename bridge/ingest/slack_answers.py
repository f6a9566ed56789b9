"""What the clicker alone is told after a button click on a case's alert (Slack's ephemeral
answer through the payload's ``response_url``), and the background tasks that send it.

The click is already stored when this runs, and the alert changes through the normal
reconciliation; this only explains to the clicker what their click did not do:

- *I'll call back* on a case someone else claimed: "Alice is already calling back (since
  14:05)" (the first claim stands, as the fold says);
- any click on a case that was closed when it came: "This case is closed: called back by
  Alice at 14:32";
- *Release* (or *Done*) of someone else's claim is allowed, and says whose claim it was.

The decision (:func:`answer`) is pure: the case as it stood when the click came (its facts
up to the click, folded at the click's time), the click, the rules' time zone. The answer
goes only to an https URL under the allowed base (Slack's ``hooks.slack.com``): never to a
host a payload names.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime, tzinfo
from typing import Final
from urllib.parse import urlsplit

import aiohttp
import structlog

from bridge.core.cases import Case, CaseKey, Click, Closing, Fact, fact_id, fold
from bridge.store import Store, StoreError

log = structlog.get_logger("bridge.ingest.slack_answers")

SLACK_RESPONSE_BASE: Final = "https://hooks.slack.com/"
ANSWER_TIMEOUT: Final = 5.0  # seconds for one answer (Slack's response_url is fast)


# -- the decision (pure) -------------------------------------------------------------------------


def _time(at: datetime, click: Click, tz: tzinfo) -> str:
    """``14:05``, with the date when it was another day than the click."""
    local, today = at.astimezone(tz), click.at.astimezone(tz)
    return local.strftime("%H:%M" if local.date() == today.date() else "%d %b %H:%M")


def _closed(closing: Closing, click: Click, tz: tzinfo) -> str:
    at = _time(closing.at, click, tz)
    by = closing.by or "someone"
    match closing.how:
        case "got_through":
            return f"the customer got through, answered by {by} at {at}"
        case "called_back":
            return f"called back by {by} at {at}"
        case "done":
            return f"closed by {by} at {at}"
        case "expired":
            return f"not called back in time (expired at {at})"


def _before(fact: Fact, click: Click) -> bool:
    """Whether the fold applies ``fact`` before ``click`` (its order: time, then calls
    before clicks, then identity)."""
    if fact.at != click.at:
        return fact.at < click.at
    return not isinstance(fact, Click) or fact_id(fact) < fact_id(click)


def case_at_click(key: CaseKey, facts: Sequence[Fact], click: Click) -> Case | None:
    """The case ``click`` was made on, as it stood when the click came: the facts the fold
    applies before it, folded at its time (None: no such case is kept). Two claims at the
    same instant: the one the fold lets win is not refused, the other is."""
    earlier = [f for f in facts if _before(f, click)]
    return next((c for c in fold(key, earlier, click.at) if c.id == click.case_id), None)


def answer(case: Case | None, click: Click, tz: tzinfo) -> str | None:
    """What to tell the clicker (None: nothing, the alert shows what they did)."""
    if case is None:
        return (
            "This callback case is no longer kept (retention removed it, or its call was "
            "merged into another): nothing changed."
        )
    if case.closing is not None:
        return f"This case is closed: {_closed(case.closing, click, tz)}. Nothing changed."
    claim = case.claim
    if click.action == "claim":
        if claim is not None and claim.user_id != click.user_id:
            return f"{claim.user} is already calling back (since {_time(claim.at, click, tz)})."
        return None
    if click.action == "release" and claim is None:
        return "Nobody is calling this customer back: there was no claim to release."
    if claim is not None and claim.user_id != click.user_id:
        since = _time(claim.at, click, tz)
        if click.action == "release":
            return (
                f"You released {claim.user}'s claim ({claim.user} was calling back since "
                f"{since}): nobody is calling back now."
            )
        return f"You closed the case {claim.user} had claimed (calling back since {since})."
    return None


# -- where answers may go ------------------------------------------------------------------------


def allowed_url(url: str | None, base: str) -> bool:
    """``url`` is under ``base`` (same scheme, host and port; path below base's): Slack's
    response URLs, never an arbitrary host named in a payload."""
    if not url:
        return False
    try:
        got, want = urlsplit(url), urlsplit(base)
        ports = got.port, want.port
    except ValueError:
        return False
    return (
        got.scheme == want.scheme
        and got.scheme in ("https", "http")
        and got.hostname is not None
        and got.hostname == want.hostname
        and ports[0] == ports[1]
        and got.username is None
        and got.path.startswith(want.path or "/")
    )


# -- the background tasks --------------------------------------------------------------------------


class Answers:
    """Sends the clicker's answers in the background (the click's 200 never waits for it).

    Every task is tracked and awaited by :meth:`close` (at shutdown, bounded)."""

    def __init__(
        self,
        store: Store,
        timezone: Callable[[], tzinfo],
        *,
        allowed_base: str = SLACK_RESPONSE_BASE,
        timeout: float = ANSWER_TIMEOUT,
    ) -> None:
        self._store = store
        self._timezone = timezone
        self.allowed_base = allowed_base
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    def allowed(self, url: str | None) -> bool:
        return allowed_url(url, self.allowed_base)

    def explain(self, key: CaseKey, click: Click, response_url: str | None) -> None:
        """Tell the clicker, if need be, what their (stored) click did not do."""
        task = asyncio.create_task(
            self._explain(key, click, response_url), name=f"slack-answer-{click.click_id[:12]}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def idle(self) -> None:
        """Wait until every answer under way is sent or given up (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the answers under way, then cancel the rest."""
        if self._tasks:
            _done, late = await asyncio.wait(set(self._tasks), timeout=timeout)
            for task in late:
                task.cancel()
            if late:
                log.warning("slack.answers_cancelled", count=len(late))
            await asyncio.gather(*late, return_exceptions=True)
        self._session = None

    async def _explain(self, key: CaseKey, click: Click, response_url: str | None) -> None:
        try:
            history = (await self._store.case_facts([key])).get(key)
        except StoreError as err:
            log.warning("slack.answer_skipped", case=click.case_id, error=str(err))
            return
        case = case_at_click(key, history.facts if history else [], click)
        text = answer(case, click, self._timezone())
        if text is None:
            return
        if response_url is None and self._session is not None:
            # Slack sends a response_url with every press: a press without one is simulated
            # (`callbridge simulate`, the README demo), with nobody to answer; one whose URL
            # is not Slack's was refused, and logged as such, on arrival.
            log.info(
                "slack.answer_not_sent",
                case=click.case_id,
                action=click.action,
                reason="no usable response_url",
            )
            return
        if response_url is None or not self.allowed(response_url) or self._session is None:
            log.warning(
                "slack.answer_impossible",
                case=click.case_id,
                action=click.action,
                reason="no usable response_url" if self._session else "shutting down",
            )
            return
        await self._send(response_url, text, click)

    async def _send(self, url: str, text: str, click: Click) -> None:
        assert self._session is not None
        body = {"response_type": "ephemeral", "replace_original": False, "text": text}
        try:
            async with self._session.post(
                url, json=body, timeout=aiohttp.ClientTimeout(total=self._timeout)
            ) as response:
                if response.status >= 300:
                    log.warning(
                        "slack.answer_failed",
                        case=click.case_id,
                        status=response.status,
                        detail=(await response.text())[:200],
                    )
                    return
        except (aiohttp.ClientError, TimeoutError) as err:
            log.warning("slack.answer_failed", case=click.case_id, error=str(err) or repr(err))
            return
        log.info("slack.answered", case=click.case_id, action=click.action, user=click.user_id)
