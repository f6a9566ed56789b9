"""MsalTokenProvider through the real msal library, answered in-process by a fake Entra ID."""

from __future__ import annotations

import logging

import pytest
import requests
import structlog

from bridge.notify.errors import AuthError, RetryableError
from bridge.notify.teams_auth import BOT_SCOPE, MsalTokenProvider
from bridge.secret import Secret
from tests.support.fake_teams import FakeEntra, HttpAnswer

TENANT = "11111111-2222-3333-4444-555555555555"
APP = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
SECRET = "Xy7~SuperSecretClientSecretValue"


def provider(entra: FakeEntra, *, secret: str = SECRET, tenant: str = TENANT, app: str = APP):
    return MsalTokenProvider(
        app_id=app, password=Secret(secret), tenant_id=tenant, http_client=entra
    )


@pytest.fixture
def entra() -> FakeEntra:
    return FakeEntra(tenant=TENANT, client_id=APP, secret=SECRET)


async def test_token_is_fetched_with_client_credentials_for_the_bot_scope(entra):
    token = await provider(entra).token()

    assert token == "bot-token-1"
    [sent] = entra.token_requests
    assert sent["grant_type"] == "client_credentials"
    assert sent["client_id"] == APP
    assert BOT_SCOPE in sent["scope"].split()


async def test_second_call_is_answered_from_msal_cache(entra):
    tokens = provider(entra)

    first = await tokens.token()
    second = await tokens.token()

    assert first == second == "bot-token-1"
    assert len(entra.token_requests) == 1
    assert entra.discovery_requests == 1  # the application object is built once


async def test_short_lived_token_is_fetched_again(entra):
    # msal treats a token with under five minutes left as expired
    entra.expires_in = 120
    tokens = provider(entra)

    first = await tokens.token()
    second = await tokens.token()

    assert (first, second) == ("bot-token-1", "bot-token-2")
    assert len(entra.token_requests) == 2


async def test_wrong_secret_is_an_auth_error_that_says_what_to_do(entra):
    with pytest.raises(AuthError) as caught:
        await provider(entra, secret="not-the-secret").token()

    err = caught.value
    assert err.platform == "teams"
    assert err.code == "AADSTS7000215"
    assert "TEAMS_APP_PASSWORD" in err.message
    assert "not-the-secret" not in err.message


async def test_unknown_app_is_an_auth_error_naming_app_id_and_tenant(entra):
    with pytest.raises(AuthError) as caught:
        await provider(entra, app="00000000-0000-0000-0000-000000000000").token()

    assert caught.value.code == "AADSTS700016"
    assert "TEAMS_APP_ID" in caught.value.message
    assert "TEAMS_TENANT_ID" in caught.value.message


async def test_unknown_tenant_is_an_auth_error(entra):
    with pytest.raises(AuthError) as caught:
        await provider(entra, tenant="no-such-tenant").token()

    assert caught.value.code == "unknown_tenant"
    assert "no-such-tenant" in caught.value.message
    assert "TEAMS_TENANT_ID" in caught.value.message
    assert entra.token_requests == []


async def test_network_failure_is_retryable_and_the_next_call_recovers(entra):
    entra.answers.append(requests.exceptions.ConnectionError("connection refused"))
    tokens = provider(entra)

    with pytest.raises(RetryableError) as caught:
        await tokens.token()
    assert caught.value.code == "connection"

    assert await tokens.token() == "bot-token-1"


async def test_server_error_is_retryable(entra):
    entra.answers.append(HttpAnswer(503, "<html>busy</html>"))

    with pytest.raises(RetryableError):
        await provider(entra).token()


async def test_temporarily_unavailable_is_retryable(entra):
    body = '{"error": "temporarily_unavailable", "error_description": "AADSTS50196: later"}'
    entra.answers.append(HttpAnswer(400, body))

    with pytest.raises(RetryableError) as caught:
        await provider(entra).token()
    assert caught.value.code == "temporarily_unavailable"


async def test_secret_and_token_never_reach_logs_or_errors(entra, caplog):
    caplog.set_level(logging.DEBUG)
    messages: list[str] = []
    with structlog.testing.capture_logs() as captured:
        good = await provider(entra).token()
        for tokens in (provider(entra, secret="wrong-" + SECRET), provider(entra, tenant="x")):
            try:
                await tokens.token()
            except AuthError as err:
                messages += [str(err), repr(err)]

    assert len(messages) == 4
    seen = "\n".join([*messages, caplog.text, *(repr(c) for c in captured)])
    assert SECRET not in seen
    assert good not in seen
