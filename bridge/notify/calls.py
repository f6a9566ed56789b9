"""One platform API call as both clients make it: bounded by a timeout, its outcome told to
the :class:`~bridge.notify.CallObserver`, and a failure to get any answer (timeout, no
connection) turned into a :class:`~bridge.notify.RetryableError`.

``notify/slack.py`` and ``notify/teams.py`` differ in how they send a request and read its
answer; this is what they had twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp

from bridge.notify import CallObserver, CallResult
from bridge.notify.errors import AuthError, NotifyError, RetryableError, transport_error


def call_result(err: NotifyError, not_found: str | None = None) -> CallResult:
    """How a failed call is counted; ``not_found``: the error code that means "not found"
    for this method (a lookup that found nothing, a message already deleted)."""
    if isinstance(err, RetryableError):
        return "ratelimited" if err.code == "ratelimited" else "retryable"
    if isinstance(err, AuthError):
        return "auth"
    return "not_found" if not_found is not None and err.code == not_found else "permanent"


class Calls:
    """The calls of one platform client.

    ``service`` names what a transport failure could not reach ("the Slack API"), ``setting``
    the setting to check ("SLACK_API_URL").
    """

    def __init__(
        self,
        *,
        platform: str,
        on_call: CallObserver,
        timeout: float,
        service: str,
        setting: str,
    ) -> None:
        self.platform = platform
        self.timeout = timeout
        self._on_call = on_call
        self._service = service
        self._setting = setting

    @asynccontextmanager
    async def attempt(self, method: str, where: str = "") -> AsyncIterator[None]:
        """Run the request in the body within the timeout; no answer or no connection is
        counted ``retryable`` and raised as a :class:`RetryableError` (without the
        exception's text, which may hold the URL)."""
        try:
            async with asyncio.timeout(self.timeout):
                yield
        except (TimeoutError, aiohttp.ClientError) as exc:
            self._on_call(method, "retryable")
            raise transport_error(
                exc,
                platform=self.platform,
                method=method,
                timeout=self.timeout,
                where=where,
                service=self._service,
                setting=self._setting,
            ) from None

    def ok(self, method: str) -> None:
        self._on_call(method, "ok")

    def failed(self, method: str, err: NotifyError, not_found: str | None = None) -> NotifyError:
        """Count ``err`` (see :func:`call_result`) and give it back, to be raised."""
        self._on_call(method, call_result(err, not_found))
        return err
