"""Reading a request's body within a size limit and the client timeout.

aiohttp waits for a body as long as the client keeps the connection open; a client that sends
its headers and then stalls (or trickles the body) would hold the connection and its
descriptor forever. Every handler reads its body through :func:`read_body`.
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
