"""A real headless browser for tests: Debian's ``chromium``, driven over the DevTools protocol
(a websocket, spoken with aiohttp: no Selenium, no Playwright).

:func:`chromium` skips the test, loudly, when no chromium is installed (``.ci/run`` installs
it: ``apt-get install chromium``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import aiohttp
import pytest

_LISTENING = re.compile(rb"DevTools listening on (ws://\S+)")


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser"):
        if found := shutil.which(name):
            return found
    pytest.skip(
        "SKIPPED LOUDLY: no `chromium` on PATH, so the preview page was NOT tested in a browser; "
        "install it with `apt-get install chromium` (.ci/run does)"
    )


class Page:
    """One browser tab: navigate, and evaluate JavaScript in it."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self._ids)
        await self._ws.send_json({"id": ident, "method": method, "params": params})
        while True:  # events arrive between the answers; only ours counts
            message = await self._ws.receive_json()
            if message.get("id") == ident:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result

    async def goto(self, url: str) -> None:
        await self.call("Page.navigate", url=url)

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 15.0) -> Any:
        """The value of ``expression`` once it is truthy (polled; fails after ``timeout``)."""
        last: Any = None
        try:
            async with asyncio.timeout(timeout):
                while True:
                    with suppress(AssertionError):  # the page may be loading
                        last = await self.evaluate(expression)
                        if last:
                            return last
                    await asyncio.sleep(0.1)
        except TimeoutError:
            board = await self.evaluate("document.body ? document.body.innerText : ''")
            raise AssertionError(
                f"not true within {timeout}s: {expression} (last {last!r}); page:\n{board}"
            ) from None


@asynccontextmanager
async def chromium(profile: Path) -> AsyncIterator[Page]:
    """A headless chromium with one blank tab (its profile in ``profile``)."""
    process = await asyncio.create_subprocess_exec(
        chromium_binary(),
        "--headless",
        "--no-sandbox",  # tests run as root in CI containers
        "--disable-gpu",
        "--no-first-run",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        "--window-size=1280,900",
        "about:blank",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    drain: asyncio.Task[None] | None = None
    try:
        async with asyncio.timeout(30):
            while not (found := _LISTENING.search(await process.stderr.readline())):
                if process.stderr.at_eof():
                    raise AssertionError("chromium exited before its DevTools endpoint was up")
        drain = asyncio.create_task(_drain(process.stderr))
        port = aiohttp.client.URL(found.group(1).decode()).port
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/json/list") as answer:
                targets = json.loads(await answer.text())
            tab = next(t for t in targets if t.get("type") == "page")
            async with session.ws_connect(tab["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                page = Page(ws)
                await page.call("Page.enable")
                await page.call("Runtime.enable")
                yield page
    finally:
        if process.returncode is None:
            process.terminate()
        with suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), 10)
        if process.returncode is None:
            process.kill()
            await process.wait()
        if drain is not None:
            drain.cancel()
            await asyncio.gather(drain, return_exceptions=True)


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.read(65536):
        pass
