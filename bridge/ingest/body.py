"""Reading a request's body within a size limit and the client timeout.

aiohttp waits for a body as long as the client keeps the connection open; a client that sends
its headers and then stalls (or trickles the body) would hold the connection and its
descriptor forever. Every handler reads its body through :func:`read_body`; the button
endpoints (Slack's, Teams') through :func:`bounded_body`, which says why it refuses one
(:class:`Refused`, answered by :func:`error_response`).
"""

from __future__ import annotations

import asyncio
from typing import Final

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

BODY_TIMEOUT = web.AppKey("body_timeout", float)
DEFAULT_BODY_TIMEOUT: Final = 15.0


class TooLarge(Exception):
    """The body is larger than allowed."""


class SlowBody(Exception):
    """The body did not arrive within the timeout."""


class ClientGone(Exception):
    """The client closed the connection before its body was complete (routine)."""


async def read_body(request: web.Request, max_size: int) -> bytes:
    """The whole body, at most ``max_size`` bytes, within the app's :data:`BODY_TIMEOUT`
    seconds (counted from the call, so right after the headers)."""
    if request.content_length is not None and request.content_length > max_size:
        raise TooLarge
    timeout = request.app.get(BODY_TIMEOUT, DEFAULT_BODY_TIMEOUT)
    chunks, size = [], 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.content.iter_chunked(64 * 1024):
                size += len(chunk)
                if size > max_size:
                    raise TooLarge
                chunks.append(chunk)
    except TimeoutError:
        raise SlowBody(f"the body did not arrive within {timeout:g} s") from None
    except (ConnectionError, HttpProcessingError, EOFError) as err:
        raise ClientGone(type(err).__name__) from None
    return b"".join(chunks)


class Refused(Exception):
    """A request to refuse: its HTTP status, a short reason code (logs) and what to say."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message


def error_response(status: int, message: str, **headers: str) -> web.Response:
    """``{"error": message}`` with ``status`` (and ``headers``, e.g. ``Retry-After``)."""
    return web.json_response({"error": message}, status=status, headers=headers or None)


async def bounded_body(request: web.Request, max_size: int) -> bytes:
    """:func:`read_body`, refusing a body too large (413) or too slow (408)."""
    try:
        return await read_body(request, max_size)
    except TooLarge:
        raise Refused(413, "too_large", f"body is larger than {max_size // 1024} KiB") from None
    except SlowBody as err:
        raise Refused(408, "slow_body", str(err)) from None
