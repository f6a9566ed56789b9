"""Teams settings that were constructor arguments only: mentions by e-mail, the token authority
host and Bot Framework scope (government clouds), and the one rule for service URLs."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bridge.metrics import Metrics
from bridge.notify.teams_auth import MsalTokenProvider
from bridge.rules import RulesError, load_text
from bridge.secret import Secret
from bridge.service.chat import chat_platforms, chat_session
from bridge.service.settings import Settings, SettingsError, load
from tests.support.fake_teams import FakeEntra

TEAMS = {
    "TEAMS_APP_ID": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
    "TEAMS_APP_PASSWORD": "Xy7~SuperSecretClientSecretValue",
    "TEAMS_TENANT_ID": "11111111-2222-3333-4444-555555555555",
}
GOV_HOST = "https://login.microsoftonline.us"
GOV_SCOPE = "https://api.botframework.us/.default"


@pytest.fixture
async def teams_notifier_for() -> AsyncIterator[object]:
    sessions = []

    async def build(env: dict[str, str]) -> object:
        settings = load(TEAMS | env)
        session = chat_session(settings)
        sessions.append(session)
        return chat_platforms(settings)(session, Metrics())["teams"].notifier

    yield build
    for session in sessions:
        await session.close()


@pytest.mark.parametrize(
    ("value", "mentions"),
    [(None, True), ("on", True), ("off", False), ("false", False), ("yes", True), ("0", False)],
)
async def test_teams_mention_by_email_is_a_setting(teams_notifier_for, value, mentions) -> None:
    env = {} if value is None else {"TEAMS_MENTION_EMAILS": value}
    notifier = await teams_notifier_for(env)
    expected = "ann@example.com" if mentions else None
    assert await notifier.lookup_user("ann@example.com") == expected


def test_a_mention_setting_that_is_not_on_or_off_is_refused() -> None:
    with pytest.raises(SettingsError) as caught:
        load({"TEAMS_MENTION_EMAILS": "maybe"})
    assert caught.value.problems == ("TEAMS_MENTION_EMAILS: expected on or off, got 'maybe'",)


GOV_METADATA = "https://login.botframework.azure.us/v1/.well-known/openidconfiguration"
GOV_ISSUER = "https://api.botframework.us"
GOV_INBOUND = {"TEAMS_OPENID_METADATA": GOV_METADATA, "TEAMS_TOKEN_ISSUER": GOV_ISSUER}


def test_government_cloud_settings() -> None:
    outbound = {"TEAMS_AUTHORITY_HOST": GOV_HOST + "/", "TEAMS_BOT_SCOPE": GOV_SCOPE}
    settings = load(TEAMS | outbound | GOV_INBOUND)
    assert (settings.teams_authority_host, settings.teams_bot_scope) == (GOV_HOST, GOV_SCOPE)
    assert (settings.teams_openid_metadata, settings.teams_token_issuer) == (
        GOV_METADATA,
        GOV_ISSUER,
    )
    assert settings.warnings == ()
    defaults = load(TEAMS)
    assert defaults.teams_authority_host == "https://login.microsoftonline.com"
    assert defaults.teams_bot_scope == "https://api.botframework.com/.default"
    assert defaults.teams_openid_metadata == (
        "https://login.botframework.com/v1/.well-known/openidconfiguration"
    )
    assert defaults.teams_token_issuer == "https://api.botframework.com"


def test_a_government_cloud_without_its_token_checks_warns_that_clicks_fail() -> None:
    outbound = {"TEAMS_AUTHORITY_HOST": GOV_HOST, "TEAMS_BOT_SCOPE": GOV_SCOPE}
    settings = load(TEAMS | outbound | {"TEAMS_TOKEN_ISSUER": GOV_ISSUER})
    assert settings.warnings == (
        "TEAMS_AUTHORITY_HOST or TEAMS_BOT_SCOPE is a government cloud's but "
        "TEAMS_OPENID_METADATA and TEAMS_TOKEN_ISSUER are not both changed: Teams' button "
        "clicks would be refused (docs/teams.md, 'Government clouds')",
    )


def test_bad_token_check_settings_are_refused() -> None:
    with pytest.raises(SettingsError) as caught:
        load(
            {
                "TEAMS_OPENID_METADATA": "http://login.botframework.azure.us/v1/x",
                "TEAMS_TOKEN_ISSUER": "api.botframework.us",
            }
        )
    assert caught.value.problems == (
        "TEAMS_OPENID_METADATA: expected an https:// URL such as "
        "https://login.botframework.azure.us/v1/.well-known/openidconfiguration, got "
        "'http://login.botframework.azure.us/v1/x'",
        "TEAMS_TOKEN_ISSUER: expected https://HOST such as https://api.botframework.us, got "
        "'api.botframework.us'",
    )


def test_changing_the_host_without_the_scope_warns() -> None:
    settings = load(TEAMS | {"TEAMS_AUTHORITY_HOST": GOV_HOST} | GOV_INBOUND)
    assert settings.warnings == (
        "TEAMS_AUTHORITY_HOST is changed but TEAMS_BOT_SCOPE is the commercial cloud's: a "
        "government cloud needs both (docs/teams.md, 'Government clouds')",
    )
    settings = load(TEAMS | {"TEAMS_BOT_SCOPE": GOV_SCOPE})
    assert settings.warnings[0].startswith("TEAMS_BOT_SCOPE is changed but TEAMS_AUTHORITY_HOST")


def test_bad_cloud_settings_are_refused() -> None:
    with pytest.raises(SettingsError) as caught:
        load(
            {
                "TEAMS_AUTHORITY_HOST": "login.microsoftonline.us",
                "TEAMS_BOT_SCOPE": "https://api.botframework.us",
            }
        )
    assert caught.value.problems == (
        "TEAMS_AUTHORITY_HOST: expected an https:// host such as "
        "https://login.microsoftonline.us, got 'login.microsoftonline.us'",
        "TEAMS_BOT_SCOPE: expected https://HOST/.default such as "
        "https://api.botframework.us/.default, got 'https://api.botframework.us'",
    )


class GovernmentEntra(FakeEntra):
    HOST = GOV_HOST


async def test_tokens_come_from_the_configured_host_for_the_configured_scope() -> None:
    entra = GovernmentEntra(
        tenant=TEAMS["TEAMS_TENANT_ID"],
        client_id=TEAMS["TEAMS_APP_ID"],
        secret=TEAMS["TEAMS_APP_PASSWORD"],
    )
    provider = MsalTokenProvider(
        app_id=TEAMS["TEAMS_APP_ID"],
        password=Secret(TEAMS["TEAMS_APP_PASSWORD"]),
        tenant_id=TEAMS["TEAMS_TENANT_ID"],
        authority_host=GOV_HOST,
        scope=GOV_SCOPE,
        http_client=entra,
    )
    assert await provider.token() == "bot-token-1"
    [sent] = entra.token_requests
    assert GOV_SCOPE in sent["scope"].split()
    assert entra.instance_requests == 0  # no instance discovery in the commercial cloud


# -- one rule for TEAMS_SERVICE_URL and a destination's service_url --------------------------

SERVICE_URLS = [
    (
        "https://smba.infra.gcc.teams.microsoft.com/teams",
        "https://smba.infra.gcc.teams.microsoft.com/teams/",
    ),
    ("https://smba.trafficmanager.net/emea/", "https://smba.trafficmanager.net/emea/"),
    ("http://127.0.0.1:8081/teams/", "http://127.0.0.1:8081/teams/"),
    ("http://localhost:8081/teams", "http://localhost:8081/teams/"),
]
NOT_SERVICE_URLS = [
    "http://smba.trafficmanager.net/teams/",  # a bearer token in clear text
    "smba.trafficmanager.net/teams/",
    "https:///teams/",
    "ftp://smba.trafficmanager.net/",
    "https://smba.trafficmanager.net/teams/?x=1",
]


def destination_url(url: str) -> str | None:
    text = (
        "version: 1\ntimezone: Europe/Amsterdam\ndestinations:\n"
        f'  gov: {{teams: {{conversation: "19:x@thread.tacv2", service_url: "{url}"}}}}\n'
        "routes:\n  - {name: all, live: gov}\n"
    )
    teams = load_text(text, "gov.yaml").destinations["gov"].teams
    return None if teams is None else teams.service_url


@pytest.mark.parametrize(("url", "normal"), SERVICE_URLS)
def test_settings_and_rules_take_the_same_service_urls_alike(url: str, normal: str) -> None:
    assert load({"TEAMS_SERVICE_URL": url}).teams_service_url == normal
    assert destination_url(url) == normal


@pytest.mark.parametrize("url", NOT_SERVICE_URLS)
def test_settings_and_rules_refuse_the_same_service_urls(url: str) -> None:
    expected = "an https:// URL (http:// only to a loopback address"
    with pytest.raises(SettingsError, match="TEAMS_SERVICE_URL: expected " + expected[:8]):
        load({"TEAMS_SERVICE_URL": url})
    with pytest.raises(RulesError, match=r"service_url: .* is not an https:// URL"):
        destination_url(url)


def test_the_default_service_url_follows_the_rule() -> None:
    default = Settings().teams_service_url
    assert load({"TEAMS_SERVICE_URL": default}).teams_service_url == default
    assert destination_url(default) == default


def test_teams_buttons_are_off_unless_asked_for_and_warn_without_teams() -> None:
    assert not load(TEAMS).teams_buttons
    assert load(TEAMS | {"TEAMS_BUTTONS": "on"}).teams_buttons
    assert load(TEAMS | {"TEAMS_BUTTONS": "on"}).warnings == ()
    demo = load({"TEAMS_BUTTONS": "on"})  # nothing real: the preview shows them, no warning
    assert (demo.teams_offers_buttons, demo.warnings) == (True, ())
    dry = load({"TEAMS_BUTTONS": "on", "SLACK_BOT_TOKEN": "xoxb-1"})
    assert not dry.teams_offers_buttons
    assert dry.warnings == (
        "TEAMS_BUTTONS is on but Teams is not configured (TEAMS_APP_ID, TEAMS_APP_PASSWORD, "
        "TEAMS_TENANT_ID): Teams is dry-run, so no card offers buttons",
    )
    with pytest.raises(SettingsError) as caught:
        load({"TEAMS_BUTTONS": "sometimes"})
    assert caught.value.problems == ("TEAMS_BUTTONS: expected on or off, got 'sometimes'",)
