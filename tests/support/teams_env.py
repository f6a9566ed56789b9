"""A bridge that posts to the fake Bot Connector (HTTP, the real TeamsNotifier) on a clock
that moves only when told, whose Teams button presses are signed by a local Bot Framework key
server: missed calls make callback cases, and tests press their buttons as Teams does."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from bridge.core.cases import Click
from bridge.deliver.delivery import Platform
from bridge.notify.teams import TeamsNotifier
from bridge.render.teams import render as teams_render
from bridge.render.text import render as text_render
from bridge.service.app import Bridge
from bridge.store import Store
from tests.support.clicks_env import KEY, SETTLE, missed_call
from tests.support.fake_botframework import APP, KeyServer, Signer, invoke, new_key, token
from tests.support.fake_teams import FakeTeams, FakeTokens, Message
from tests.support.harness import (
    FakeClock,
    RecordingNotifier,
    make_settings,
    running_bridge,
    write_rules,
)

CHANNEL = "19:sales@thread.tacv2"
TOKEN = "fake-bot-token"
WEBHOOK = {"Authorization": "Bearer s3cret-webhook-token"}
PATH = "/teams/messages"
RULES = f"""\
version: 1
timezone: Europe/Amsterdam
destinations:
  sales: {{teams: {{conversation: "{CHANNEL}"}}}}
routes:
  - name: everything
    missed: sales
callbacks: {{escalate_after: off}}
"""
MESSAGE = "application/vnd.microsoft.activity.message"
CARD = "application/vnd.microsoft.card.adaptive"
TEAMS_KEY = Signer("teams-key", new_key(), endorsements=("msteams",))


@dataclass
class World:
    bridge: Bridge
    client: TestClient[Any, Any]
    teams: FakeTeams
    framework: KeyServer
    clock: FakeClock

    async def send(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            response = await self.client.post("/notifications", json=event, headers=WEBHOOK)
            assert response.status == 200, await response.text()

    async def settle(self) -> None:
        """Everything stored is folded and sent (a case's change waits the 8 s settle)."""
        assert self.bridge.delivery is not None
        while True:
            await self.bridge.dispatcher.drained()
            self.clock.advance(SETTLE)
            await self.bridge.delivery.settled()
            if not await self.bridge.store.dirty_stories():
                break

    async def missed(self) -> None:
        await self.send(missed_call("miss-1", self.clock.now))
        await self.bridge.dispatcher.drained()
        self.clock.advance(timedelta(minutes=1) - SETTLE)
        await self.settle()

    def alert(self) -> Message:
        [thread] = [t for t in self.teams.threads(CHANNEL) if "Missed call" in t.root.texts()[0]]
        return thread.root

    def buttons(self) -> dict[str, Mapping[str, Any]]:
        """The alert's Action.Execute buttons by verb, those inside a ShowCard included."""
        found: dict[str, Mapping[str, Any]] = {}
        for action in (self.alert().card or {}).get("actions", []):
            inner = action.get("card", {}).get("actions", []) if "card" in action else [action]
            found |= {a["verb"]: a for a in inner if a.get("type") == "Action.Execute"}
        return found

    async def press(self, verb: str, user: tuple[str, str], activity_id: str) -> ClientResponse:
        """A press of the alert's button ``verb`` as Teams sends it: the button's own data,
        the alert's thread and message."""
        data, alert = self.buttons()[verb]["data"], self.alert()
        activity = invoke(
            self.teams.url,
            verb,
            data,
            user=user,
            activity_id=activity_id,
            conversation=alert.conversation,
            reply_to=alert.id,
        )
        return await self.post(activity)

    async def post(self, activity: Mapping[str, Any], **claims: Any) -> ClientResponse:
        """``activity`` with a token Bot Framework signed now (``claims`` and ``key`` change
        it, as :func:`tests.support.fake_botframework.token` does)."""
        claims.setdefault("serviceurl", activity.get("serviceUrl"))
        bearer = token(self.clock.now, TEAMS_KEY, **claims)
        headers = {"Authorization": f"Bearer {bearer}"}
        return await self.client.post(PATH, json=activity, headers=headers)

    async def clicks(self) -> list[Click]:
        history = (await self.bridge.store.case_facts([KEY])).get(KEY)
        clicks = [f for f in history.facts if isinstance(f, Click)] if history else []
        return sorted(clicks, key=lambda c: (c.at, c.click_id))


@asynccontextmanager
async def teams_bridge(
    tmp_path: Path,
    *,
    clock: FakeClock | None = None,
    framework: KeyServer | None = None,
    backend: Store | None = None,
    rules: str = RULES,
    **settings: Any,
) -> AsyncIterator[World]:
    """A bridge posting to a fake Bot Connector of its own, whose Teams presses are signed by
    ``framework``'s key (its own if None); ``clock`` and the store (``backend``, with
    ``store=`` its URL among ``settings``) may be shared."""
    clock = clock or FakeClock()
    async with AsyncExitStack() as stack:
        if framework is None:
            framework = await stack.enter_async_context(KeyServer([TEAMS_KEY]))
        teams = await stack.enter_async_context(FakeTeams(token=TOKEN, channels=[CHANNEL]))

        def platforms(session: aiohttp.ClientSession, metrics: Any) -> Mapping[str, Platform]:
            notifier = TeamsNotifier(FakeTokens(TOKEN), session, teams.url, timeout=5)
            render = partial(teams_render, buttons=True)
            return {
                "slack": Platform(RecordingNotifier(), text_render),
                "teams": Platform(notifier, render, notifier.link, finds=False),
            }

        base = make_settings(
            tmp_path, teams_app_id=APP, teams_openid_metadata=framework.metadata_url
        )
        base = replace(base, rules=write_rules(tmp_path, rules), **settings)
        bridge, client, _ = await stack.enter_async_context(
            running_bridge(base, clock=clock, platforms=platforms, store=backend)
        )
        yield World(bridge, client, teams, framework, clock)
