"""CALLBRIDGE_PROXY: one proxy for Slack, the Bot Connector and Teams' token requests alike.

Before, msal honoured HTTPS_PROXY while the chat session ignored it, so /readyz could say
"token OK" while every post failed. A local forward proxy on port 0 records what each client
asks it for; another one, named by the environment's HTTPS_PROXY and friends, must see
nothing. The proxy refuses CONNECT tunnels, so the token request (https) stops there and
never leaves the machine; the Slack and Teams fakes are plain http on 127.0.0.1 and are
relayed.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import pytest

from bridge.metrics import Metrics
from bridge.notify import OutgoingMessage, RetryableError
from bridge.notify.teams import TeamsNotifier
from bridge.service.chat import chat_platforms, chat_session
from bridge.service.settings import SettingsError, load
from tests.support.fake_slack import FakeSlack
from tests.support.fake_teams import FakeTeams, FakeTokens
from tests.support.proxy import HttpProxy

CHANNEL = "19:abc@thread.tacv2"


def message(text: str) -> OutgoingMessage:
    body = [{"type": "TextBlock", "text": text, "wrap": True}]
    return OutgoingMessage(text=text, card={"type": "AdaptiveCard", "version": "1.5", "body": body})


AUTHORITY = "login.callbridge-test.invalid"  # .invalid never resolves: nothing goes out
ENV_PROXIES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY")


@pytest.fixture
async def env_proxy(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[HttpProxy]:
    """The proxy the environment names; every client must ignore it."""
    async with HttpProxy() as proxy:
        for variable in ENV_PROXIES:
            monkeypatch.setenv(variable, proxy.url)
        yield proxy


async def test_one_proxy_sees_slack_bot_connector_and_token_requests(
    env_proxy: HttpProxy,
) -> None:
    async with HttpProxy() as proxy, FakeSlack() as slack, FakeTeams(channels=[CHANNEL]) as teams:
        settings = load(
            {
                "SLACK_BOT_TOKEN": slack.token,
                "SLACK_API_URL": slack.url,
                "TEAMS_APP_ID": "app-1",
                "TEAMS_APP_PASSWORD": "teams-secret-value",
                "TEAMS_TENANT_ID": "11111111-2222-3333-4444-555555555555",
                "TEAMS_SERVICE_URL": teams.url,
                "TEAMS_AUTHORITY_HOST": f"https://{AUTHORITY}",
                "TEAMS_BOT_SCOPE": "https://api.botframework.us/.default",
                "CALLBRIDGE_PROXY": f"http://ops:proxy-pw-123@127.0.0.1:{proxy.port}",
            }
        )
        async with chat_session(settings) as session:
            platforms = chat_platforms(settings, timeout=5)(session, Metrics())
            # Slack, through the proxy to the fake.
            assert await platforms["slack"].notifier.verify() == (
                "slack: bot @callbridge in workspace Fake Workspace"
            )
            # A token, asked of the configured authority through the same proxy.
            with pytest.raises(RetryableError) as caught:
                await platforms["teams"].notifier.verify()
            # The Bot Connector, on the same session (with a token from the fake).
            connector = TeamsNotifier(FakeTokens(teams.token), session, settings.teams_service_url)
            await connector.post(CHANNEL, message("through the proxy"))

    credentials = "Basic " + base64.b64encode(b"ops:proxy-pw-123").decode()
    seen = [(r.method, r.target, r.proxy_authorization) for r in proxy.seen]
    assert ("POST", f"{slack.url}auth.test", credentials) in seen
    assert ("CONNECT", f"{AUTHORITY}:443", credentials) in seen
    assert ("POST", f"{teams.url}v3/conversations", credentials) in seen
    assert {method for method, _, _ in seen} == {"POST", "CONNECT"}
    assert env_proxy.seen == []
    assert slack.calls["auth.test"] == 1
    assert [t.root.texts() for t in teams.threads(CHANNEL)] == [["through the proxy"]]
    assert AUTHORITY in str(caught.value)
    assert "proxy-pw-123" not in str(caught.value)


async def test_without_the_setting_no_client_uses_the_environments_proxy(
    env_proxy: HttpProxy,
) -> None:
    async with FakeSlack() as slack, FakeTeams(channels=[CHANNEL]) as teams:
        settings = load(
            {"SLACK_BOT_TOKEN": slack.token, "SLACK_API_URL": slack.url}
            | {variable: env_proxy.url for variable in ENV_PROXIES}
        )
        async with chat_session(settings) as session:
            platforms = chat_platforms(settings, timeout=5)(session, Metrics())
            await platforms["slack"].notifier.verify()
            connector = TeamsNotifier(FakeTokens(teams.token), session, teams.url)
            await connector.post(CHANNEL, message("direct"))

    assert env_proxy.seen == []
    assert slack.calls["auth.test"] == 1
    assert len(teams.threads(CHANNEL)) == 1
    [warning] = settings.warnings
    assert warning.startswith(
        f"{', '.join(ENV_PROXIES)} are set but not used: set CALLBRIDGE_PROXY"
    )


def test_the_proxy_password_is_a_secret_and_a_bad_proxy_is_refused() -> None:
    settings = load({"CALLBRIDGE_PROXY": "http://ops:proxy-pw-123@proxy.example:3128"})
    assert "proxy-pw-123" in settings.secrets()
    for bad in ("proxy.example:3128", "socks5://proxy.example:1080", "http://ops:pw-9@:x"):
        with pytest.raises(SettingsError, match="CALLBRIDGE_PROXY: expected http://") as caught:
            load({"CALLBRIDGE_PROXY": bad})
        assert "pw-9" not in str(caught.value)


def test_an_https_proxy_is_accepted_and_a_socks_proxy_refused_by_name() -> None:
    # aiohttp (>= 3.8, on Python >= 3.11) and requests both speak TLS to an https:// proxy.
    settings = load({"CALLBRIDGE_PROXY": "https://ops:proxy-pw-123@proxy.example:3129"})
    assert settings.proxy == "https://ops:proxy-pw-123@proxy.example:3129"
    assert "proxy-pw-123" in settings.secrets()
    with pytest.raises(SettingsError) as caught:
        load({"CALLBRIDGE_PROXY": "socks5://ops:proxy-pw-123@proxy.example:1080"})
    assert caught.value.problems == (
        "CALLBRIDGE_PROXY: expected http://[USER:PASSWORD@]HOST:PORT (or https:// for TLS to "
        "the proxy), got 'socks5://ops:***@proxy.example:1080'",
    )
