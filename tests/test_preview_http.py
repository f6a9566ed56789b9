"""GET /preview and /preview/state: served only while nothing is really posted (no chat
credentials), self-contained (nothing fetched from elsewhere), locked down by a CSP."""

from __future__ import annotations

import re
from pathlib import Path

from bridge.secret import Secret
from tests.support.harness import make_settings, running_bridge


async def test_served_in_dry_run_self_contained(tmp_path: Path) -> None:
    async with running_bridge(make_settings(tmp_path)) as (_, client, _chat):
        page = await client.get("/preview")
        assert page.status == 200
        assert page.content_type == "text/html"
        csp = page.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp
        assert "connect-src 'self'" in csp
        assert re.search(r"script-src 'sha256-[A-Za-z0-9+/=]+';", csp)
        html = await page.text()
        # No URL of another host: the page works without the internet.
        assert not re.search(r"(src|href)=\"?(https?:)?//", html)
        assert "/preview/state" in html
        state = await (await client.get("/preview/state")).json()
        assert state["version"] == 0
        assert 'data-channel="support"' in state["html"]
        again = await (await client.get(f"/preview/state?since={state['version']}")).json()
        assert again == {"version": 0, "html": None}


async def test_not_served_when_a_platform_really_posts(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, slack_bot_token=Secret("xoxb-preview-test"))
    async with running_bridge(settings) as (bridge, client, _chat):
        assert bridge.preview is None
        assert (await client.get("/preview")).status == 404
        assert (await client.get("/preview/state")).status == 404
