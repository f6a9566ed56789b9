"""The local preview page in a real headless browser (Debian's chromium over the DevTools
protocol): a dry-run bridge (no chat credentials) gets a call's events one by one and the open
page, never reloaded, shows the live message change in place from ringing to answered, its
thread replies, a missed call's alert, in a Slack channel and a Teams channel, with a hostile
caller name shown as text.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from bridge.deliver.dispatcher import DispatchOptions
from bridge.service.app import Bridge
from tests.support.browser import Page, chromium, chromium_binary
from tests.support.harness import make_settings, payload, write_rules

RULES = """\
version: 1
timezone: Europe/Amsterdam
destinations:
  support: {slack: {channel: C0123456789}}
  sales: {teams: {conversation: "19:sales@thread.tacv2"}}
routes:
  - name: everything
    live: [support, sales]
    missed: support
"""

EVIL = "<script>window.pwned=1</script><img src=x onerror=window.pwned=2>Evil"
AUTH = {"Authorization": "Bearer s3cret-webhook-token"}


@asynccontextmanager
async def dry_run_bridge(tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    settings = replace(make_settings(tmp_path), rules=write_rules(tmp_path, RULES))
    assert settings.slack_bot_token is None
    assert not settings.teams_enabled
    # The real dry-run platforms (no `platforms=`): what the preview shows is what they got.
    bridge = Bridge(
        settings, dispatch=DispatchOptions(poll_interval=3600, missed_settle=timedelta(0))
    )
    assert await bridge.rules.reload(), bridge.rules.problems
    client = TestClient(TestServer(bridge.app, host="127.0.0.1", port=0))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


async def send(client: TestClient[Any, Any], **fields: Any) -> None:
    response = await client.post("/notifications", data=json.dumps(payload(**fields)), headers=AUTH)
    assert response.status == 200, await response.text()


def channel(name: str, selector: str = "") -> str:
    return f'document.querySelector(`section[data-channel="{name}"]{selector}`)'


def text_of(expression: str) -> str:
    return f"(({expression} || {{}}).innerText || '')"


async def live_message(page: Page, name: str, words: str) -> str:
    """The id of the first message in channel ``name`` once its body (not its thread) shows
    ``words``."""
    first = channel(name, " .message")
    body = text_of(f"{first}.querySelector('.body')")
    await page.wait_for(f"{body}.includes({json.dumps(words)})")
    ident: str = await page.evaluate(f"{first}.dataset.id")
    return ident


async def test_the_preview_shows_live_messages_threads_and_alerts(tmp_path: Path) -> None:
    chromium_binary()  # skips, loudly, without a browser
    now = datetime.now(UTC).replace(microsecond=0)
    at = lambda seconds: (now + timedelta(seconds=seconds)).isoformat()  # noqa: E731
    caller = {"number": "+31501234567", "name": EVIL, "account_number": None}
    async with dry_run_bridge(tmp_path) as client, chromium(tmp_path / "profile") as page:
        await page.goto(str(client.make_url("/preview")))
        await page.wait_for(f"!!({channel('support')} && {channel('sales')})")

        # 1. Ringing: the live message appears in the Slack and the Teams channel.
        await send(client, call_id="pv-1", timestamp=at(0), caller=caller)
        ringing_id = await live_message(page, "support", "Ringing")
        teams_id = await live_message(page, "sales", "Ringing")

        # 2. Answered: the same message (same id, the page never reloaded) now says so.
        answered = {"number": "+31508009000", "targets": [{"number": "201", "name": "Johan"}]}
        await send(client, call_id="pv-1", timestamp=at(9), status="in-progress",
                   destination=answered)  # fmt: skip
        assert await live_message(page, "support", "Answered") == ringing_id
        assert await live_message(page, "sales", "Answered") == teams_id
        first = channel("support", " .message")
        assert "Ringing" not in await page.evaluate(text_of(f"{first}.querySelector('.body')"))
        # Its thread tells the story: a reply for the answer (a pickup: Johan was not rung).
        thread = text_of(f"{first}.querySelector('.thread')")
        await page.wait_for(f"{thread}.includes('up by Johan')")

        # 3. A missed call: its own live message, and a separate alert in the channel.
        await send(client, call_id="pv-2", timestamp=at(20))
        await send(client, call_id="pv-2", timestamp=at(50), status="ended", reason="no-answer")
        messages = channel("support", " .messages")
        await page.wait_for(
            f"[...{messages}.querySelectorAll(':scope > .message')]"
            ".some(m => m.innerText.includes('Missed call'))"
        )

        # The hostile caller name is shown as text, never run or parsed as markup.
        assert await page.evaluate("document.querySelectorAll('script').length") == 1
        assert await page.evaluate("document.querySelectorAll('#board img').length") == 0
        assert await page.evaluate("window.pwned === undefined")
        assert "<script>window.pwned=1</script>" in await page.evaluate(text_of("document.body"))
