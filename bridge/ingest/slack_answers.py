"""The background tasks that tell a Slack clicker what their click did not do (Slack's
ephemeral answer through the payload's ``response_url``); what to say is
:mod:`bridge.ingest.click_answers`'s. The answer goes only to an https URL under the allowed
base (Slack's ``hooks.slack.com``): never to a host a payload names.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import tzinfo
from typing import Final
from urllib.parse import urlsplit

import aiohttp
import structlog

from bridge.core.cases import CaseKey, Click
from bridge.ingest.click_answers import explanation
from bridge.store import Store, StoreError

log = structlog.get_logger("bridge.ingest.slack_answers")

SLACK_RESPONSE_BASE: Final = "https://hooks.slack.com/"
ANSWER_TIMEOUT: Final = 5.0  # seconds for one answer (Slack's response_url is fast)


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
            text = await explanation(self._store, key, click, self._timezone())
        except StoreError as err:
            log.warning("slack.answer_skipped", case=click.case_id, error=str(err))
            return
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
