"""Typed failures of a chat platform call, carrying what the one retry layer needs.

The platform clients (``notify/slack.py``, ``notify/teams.py``; the classification itself is in
``notify/slack_api.py`` and ``notify/teams_api.py``) classify every failed call into
exactly one of these; the delivery layer decides from the class alone whether to retry
(:class:`RetryableError`, honouring ``retry_after``), give up on this message
(:class:`PermanentError`) or stop talking to the platform until an operator acts
(:class:`AuthError`). Messages say what failed and what to do; they never contain a token.
"""

from __future__ import annotations

import math
from typing import Any, TypeVar

import msgspec


class NotifyError(Exception):
    """A call to a chat platform failed.

    ``platform`` is ``"slack"`` or ``"teams"``, ``method`` the API method (``chat.postMessage``),
    ``code`` the platform's error string (``channel_not_found``) or ``http_503``, ``timeout``,
    ``connection`` when the platform gave none.
    """

    def __init__(self, message: str, *, platform: str, method: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.platform = platform
        self.method = method
        self.code = code

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(platform={self.platform!r}, method={self.method!r}, "
            f"code={self.code!r}, message={self.message!r})"
        )


class RetryableError(NotifyError):
    """Transient: rate limited, server error, timeout or connection failure. Try again later.

    ``retry_after`` is the platform's requested wait in seconds (HTTP ``Retry-After``), or None
    when it gave none and the caller's own backoff applies.
    """

    def __init__(
        self,
        message: str,
        *,
        platform: str,
        method: str,
        code: str,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, platform=platform, method=method, code=code)
        self.retry_after = retry_after


class PermanentError(NotifyError):
    """The platform rejected this request and will reject it again: never retry it as is
    (unknown channel, invalid blocks, message too long, message gone, archived channel...)."""


class AuthError(NotifyError):
    """The credentials are wrong, revoked or lack a permission: no call will succeed until an
    operator fixes the configuration. ``needed`` names the missing scope when known."""

    def __init__(
        self,
        message: str,
        *,
        platform: str,
        method: str,
        code: str,
        needed: str | None = None,
    ) -> None:
        super().__init__(message, platform=platform, method=method, code=code)
        self.needed = needed


def transport_error(
    exc: BaseException,
    *,
    platform: str,
    method: str,
    timeout: float,
    where: str,
    service: str,
    setting: str,
) -> RetryableError:
    """A request that got no answer (timeout) or no connection: always worth retrying.

    ``service`` names what could not be reached ("the Slack API"), ``setting`` the setting
    to check ("SLACK_API_URL"). The exception's text is left out: it may hold the URL."""
    label = platform.capitalize()
    if isinstance(exc, TimeoutError):
        return RetryableError(
            f"{label} {method} got no answer within {timeout:g} s{where}; will retry",
            platform=platform,
            method=method,
            code="timeout",
        )
    return RetryableError(
        f"{label} {method} could not reach {service}{where} ({type(exc).__name__}); "
        f"check network and {setting}, will retry",
        platform=platform,
        method=method,
        code="connection",
    )


def retry_after_seconds(value: object) -> float | None:
    """A ``Retry-After`` header in seconds; None when absent, not a number, negative or
    infinite (the HTTP-date form is not used by Slack or the Bot Connector)."""
    if value is None:
        return None
    try:
        seconds = float(str(value))
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


_T = TypeVar("_T")


def parse_answer(data: Any, into: type[_T], *, platform: str, method: str, check: str) -> _T:
    """``data`` (an API answer's JSON) as ``into``; an answer of another shape is a
    :class:`PermanentError` whose message asks the operator to ``check`` the endpoint."""
    try:
        return msgspec.convert(data, type=into)
    except msgspec.ValidationError as exc:
        raise PermanentError(
            f"{platform.capitalize()} {method} answered in an unexpected shape ({exc}); {check}",
            platform=platform,
            method=method,
            code="unexpected_response",
        ) from None
