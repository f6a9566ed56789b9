"""Settings from environment, flags and systemd credentials, with every problem reported."""

from __future__ import annotations

import argparse
from datetime import timedelta
from pathlib import Path

import pytest

from bridge.cli import build_parser, main
from bridge.cli.rules import default_rules_path
from bridge.service.settings import Listen, SettingsError, add_arguments, load


def flags(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_defaults_are_safe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load({})
    assert settings.listen == Listen("127.0.0.1", 8080)
    assert settings.listen.is_loopback
    assert settings.store == f"sqlite:///{(tmp_path / 'var' / 'bridge.db').as_posix()[1:]}"
    assert settings.webhook_token is None
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.retention == timedelta(days=14)
    assert settings.stale_after == timedelta(hours=4)
    assert settings.warnings == ()


def test_state_directory_holds_the_default_store() -> None:
    settings = load({"STATE_DIRECTORY": "/var/lib/callbridge"})
    assert settings.store == "sqlite:///var/lib/callbridge/bridge.db"


def test_flag_beats_environment_beats_credential(tmp_path: Path) -> None:
    (tmp_path / "webhook-token").write_text("from-credential\n")
    (tmp_path / "slack-bot-token").write_text("xoxb-from-credential\n")
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path), "CALLBRIDGE_WEBHOOK_TOKEN": "from-env"}
    settings = load(env, flags("--listen", "127.0.0.1:9000"))
    assert settings.listen.port == 9000
    assert settings.webhook_token is not None
    assert settings.webhook_token.reveal() == "from-env"
    assert settings.slack_bot_token is not None
    assert settings.slack_bot_token.reveal() == "xoxb-from-credential"
    overridden = load(env, flags("--webhook-token", "from-flag"))
    assert overridden.webhook_token is not None
    assert overridden.webhook_token.reveal() == "from-flag"


def test_the_slack_signing_secret_turns_interactivity_on(tmp_path: Path) -> None:
    assert load({}).slack_signing_secret is None
    assert not load({"SLACK_BOT_TOKEN": "xoxb-1"}).slack_interactivity
    (tmp_path / "slack-signing-secret").write_text("0123456789abcdef0123456789abcdef\n")
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path), "SLACK_BOT_TOKEN": "xoxb-1"}
    settings = load(env)
    assert settings.slack_signing_secret is not None
    assert settings.slack_signing_secret.reveal() == "0123456789abcdef0123456789abcdef"
    assert settings.slack_interactivity
    assert "0123456789abcdef0123456789abcdef" in settings.secrets()  # redacted from logs
    assert "0123456789abcdef" not in repr(settings)
    assert settings.warnings == ()
    flagged = load({}, flags("--slack-signing-secret", "from-flag-0123456789"))
    assert flagged.slack_signing_secret is not None
    assert flagged.slack_signing_secret.reveal() == "from-flag-0123456789"


def test_a_signing_secret_without_a_bot_token_warns_that_no_buttons_show() -> None:
    teams = {"TEAMS_APP_ID": "app", "TEAMS_APP_PASSWORD": "pw", "TEAMS_TENANT_ID": "tenant"}
    settings = load({"SLACK_SIGNING_SECRET": "0123456789abcdef0123456789abcdef", **teams})
    assert not settings.slack_interactivity
    [warning] = settings.warnings
    assert "SLACK_SIGNING_SECRET is set but SLACK_BOT_TOKEN is not" in warning


def test_the_dry_run_demo_with_a_signing_secret_shows_buttons_without_a_warning() -> None:
    """Nothing is posted anywhere: the preview shows the case buttons and the simulator
    presses them (README demo)."""
    settings = load({"SLACK_SIGNING_SECRET": "demo-secret-0123456789"})
    assert settings.slack_interactivity
    assert settings.warnings == ()


def test_every_problem_is_reported_at_once() -> None:
    env = {
        "CALLBRIDGE_LISTEN": "localhost",
        "CALLBRIDGE_RETENTION": "two weeks",
        "CALLBRIDGE_STORE": "mysql://db",
        "SLACK_API_URL": "slack.com/api",
        "TEAMS_APP_ID": "1234",
        "CALLBRIDGE_LOG_LEVEL": "loud",
    }
    with pytest.raises(SettingsError) as caught:
        load(env)
    assert caught.value.problems == (
        "CALLBRIDGE_LISTEN: expected HOST:PORT such as 127.0.0.1:8080 or [::1]:8080, "
        "got 'localhost'",
        "CALLBRIDGE_RETENTION: expected a duration like 90s, 15m, 1.5h, 14d or 2w (parts combine: "
        "1h30m; a bare number is seconds), got 'two weeks'",
        "CALLBRIDGE_STORE: expected sqlite:///PATH or postgresql://..., got 'mysql://db'",
        "SLACK_API_URL: expected an http(s) URL, got 'slack.com/api'",
        "Teams is half configured: set TEAMS_APP_PASSWORD, TEAMS_TENANT_ID too "
        "(or unset the others)",
        "CALLBRIDGE_LOG_LEVEL: expected debug, info, warning, error, got 'loud'",
    )


def test_secrets_never_show_in_repr_or_errors() -> None:
    settings = load({"CALLBRIDGE_WEBHOOK_TOKEN": "hunter2-secret", "SLACK_BOT_TOKEN": "xoxb-1"})
    assert "hunter2-secret" not in repr(settings)
    assert "xoxb-1" not in str(settings)
    assert set(settings.secrets()) == {"hunter2-secret", "xoxb-1"}
    with pytest.raises(SettingsError) as caught:
        load({"CALLBRIDGE_STORE": "postgresql://u:pw-secret@db/x", "CALLBRIDGE_LISTEN": "x"})
    assert "pw-secret" not in str(caught.value)
    with pytest.raises(SettingsError) as caught:
        load({"CALLBRIDGE_STORE": "redis://u:pw-secret@db/x"})
    assert "pw-secret" not in str(caught.value)
    assert "u:***@db" in str(caught.value)


# Each setting that takes a URL, given one it refuses with a password in it, and how its
# error must show it.
REFUSED_URLS = [
    ("CALLBRIDGE_STORE", "mysql://u:pw-store-1@db/cb", "mysql://u:***@db/cb"),
    ("SLACK_API_URL", "ftp://u:pw-slack-2@slack.example/api/", "ftp://u:***@slack.example/api/"),
    (
        "TEAMS_SERVICE_URL",
        "http://u:pw-service-3@smba.example/teams/",
        "http://u:***@smba.example/teams/",
    ),
    ("TEAMS_AUTHORITY_HOST", "http://u:pw-authority-4@login.example", "http://u:***@login.example"),
    ("TEAMS_BOT_SCOPE", "https://u:pw-scope-5@api.example/no", "https://u:***@api.example/no"),
    (
        "TEAMS_OPENID_METADATA",
        "http://u:pw-metadata-6@login.example/v1/openid",
        "http://u:***@login.example/v1/openid",
    ),
    ("TEAMS_TOKEN_ISSUER", "ftp://u:pw-issuer-7@api.example", "ftp://u:***@api.example"),
    (
        "CALLBRIDGE_PROXY",
        "socks5://u:pw-proxy-8@proxy.example:1080",
        "socks5://u:***@proxy.example:1080",
    ),
]


@pytest.mark.parametrize(("variable", "url", "shown"), REFUSED_URLS)
def test_a_refused_url_is_named_without_its_password(variable: str, url: str, shown: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load({variable: url})
    (problem,) = caught.value.problems
    assert problem.startswith(f"{variable}: expected ")
    assert problem.endswith(f"got {shown!r}")
    assert "pw-" not in problem


def test_a_refused_store_flag_is_named_without_its_password() -> None:
    with pytest.raises(SettingsError) as caught:
        load({}, flags("--store", "sqlite://u:pw-sqlite-9@host/x.db"))
    assert caught.value.problems == (
        "--store: expected sqlite:///ABSOLUTE/PATH.db, got 'sqlite://u:***@host/x.db'",
    )


def test_serve_prints_a_refused_url_without_its_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TEAMS_SERVICE_URL", "http://user:PW-in-url-42@example.com/")
    monkeypatch.setenv("TEAMS_OPENID_METADATA", "http://[::1")  # once crashed urlsplit
    monkeypatch.setenv("CALLBRIDGE_PROXY", "http://user:PW-in-url-43@[::1")  # crashed, too
    assert main(["serve"]) == 2
    out, err = capsys.readouterr()
    assert "PW-in-url-4" not in out + err
    assert "TEAMS_SERVICE_URL: expected an https:// URL" in err
    assert "got 'http://user:***@example.com/'" in err
    assert "CALLBRIDGE_PROXY: expected http://[USER:PASSWORD@]HOST:PORT (or https:// " in err
    assert "'http://user:***@[::1'" in err


def test_every_url_password_is_a_secret_for_the_logs() -> None:
    settings = load(
        {
            "CALLBRIDGE_STORE": "postgresql://u:pw-store-1@db/cb",
            "SLACK_API_URL": "https://u:pw-slack-2@slack.example/api/",
            "TEAMS_SERVICE_URL": "https://u:pw-service-3@smba.example/teams/",
            "TEAMS_AUTHORITY_HOST": "https://u:pw-authority-4@login.example",
            "TEAMS_OPENID_METADATA": "https://u:pw-metadata-6@login.example/v1/openid",
            "TEAMS_TOKEN_ISSUER": "https://u:pw-issuer-7@api.example",
            "CALLBRIDGE_PROXY": "http://u:pw-proxy-8@proxy.example:3128",
        }
    )
    assert set(settings.secrets()) == {
        "pw-store-1",
        "pw-slack-2",
        "pw-service-3",
        "pw-authority-4",
        "pw-metadata-6",
        "pw-issuer-7",
        "pw-proxy-8",
    }


def test_open_listener_without_token_warns() -> None:
    settings = load({"CALLBRIDGE_LISTEN": "0.0.0.0:8080"})
    assert len(settings.warnings) == 1
    assert "without CALLBRIDGE_WEBHOOK_TOKEN" in settings.warnings[0]
    assert load({"CALLBRIDGE_LISTEN": "[::1]:8080"}).listen == Listen("::1", 8080)


def serve_help() -> dict[str, str]:
    """``callbridge serve --help``: flag -> its help text, on one line."""
    serve = build_parser()._subparsers._group_actions[0].choices["serve"]  # type: ignore[union-attr]
    return {a.option_strings[0]: " ".join((a.help or "").split()) for a in serve._actions[1:]}


# Written by hand from the README's settings table.
DEFAULTS = {
    "--listen": "127.0.0.1:8080",
    "--rules": "rules/example.yaml beside the checkout, else /etc/callbridge/rules.yaml",
    "--store": "sqlite:///$STATE_DIRECTORY/bridge.db, else ./var/bridge.db",
    "--webhook-token": "none",
    "--slack-bot-token": "none",
    "--slack-api-url": "https://slack.com/api/",
    "--slack-signing-secret": "none",
    "--teams-app-id": "none",
    "--teams-app-password": "none",
    "--teams-tenant-id": "none",
    "--teams-service-url": "https://smba.trafficmanager.net/teams/",
    "--teams-mention-emails": "on",
    "--teams-buttons": "off",
    "--teams-authority-host": "https://login.microsoftonline.com",
    "--teams-bot-scope": "https://api.botframework.com/.default",
    "--teams-openid-metadata": "https://login.botframework.com/v1/.well-known/openidconfiguration",
    "--teams-token-issuer": "https://api.botframework.com",
    "--proxy": "none",
    "--retention": "14d",
    "--stale-after": "4h",
    "--shutdown-timeout": "15s",
    "--client-timeout": "15s",
    "--max-connections": "auto",
    "--log-format": "auto",
    "--log-level": "info",
    "--event-loop": "auto",
}
ALLOWED = {
    "--log-format": ("auto", "json", "console"),
    "--log-level": ("debug", "info", "warning", "error"),
    "--event-loop": ("auto", "uvloop", "asyncio"),
    "--teams-mention-emails": ("on", "off"),
    "--teams-buttons": ("on", "off"),
    "--retention": ("90s", "15m", "1.5h", "14d", "2w"),
}


def test_serve_help_shows_each_flags_default_and_values() -> None:
    helps = serve_help()
    assert set(helps) == set(DEFAULTS)
    for flag, default in DEFAULTS.items():
        assert f"(default: {default};" in helps[flag], flag
        assert helps[flag].split("(default:")[0].strip(), f"{flag} says what it is"
    for flag, values in ALLOWED.items():
        for value in values:
            assert value in helps[flag].split("(default:")[0], (flag, value)


def test_in_a_checkout_serve_and_check_default_to_its_example_rules(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The README's demo runs `callbridge serve` without CALLBRIDGE_RULES in a fresh clone.
    monkeypatch.delenv("CALLBRIDGE_RULES", raising=False)
    example = Path(__file__).resolve().parent.parent / "rules" / "example.yaml"
    assert load({}).rules == example
    assert default_rules_path() == example


def test_client_timeout_and_connection_cap() -> None:
    settings = load({"CALLBRIDGE_CLIENT_TIMEOUT": "5s", "CALLBRIDGE_MAX_CONNECTIONS": "300"})
    assert settings.client_timeout == timedelta(seconds=5)
    assert settings.max_connections == 300
    assert load({"CALLBRIDGE_MAX_CONNECTIONS": "auto"}).max_connections is None
    with pytest.raises(SettingsError) as caught:
        load({"CALLBRIDGE_CLIENT_TIMEOUT": "0s", "CALLBRIDGE_MAX_CONNECTIONS": "many"})
    assert list(caught.value.problems) == [
        "CALLBRIDGE_CLIENT_TIMEOUT: expected a duration above 0, got '0s'",
        "CALLBRIDGE_MAX_CONNECTIONS: expected a number of connections (1 or more) or auto, "
        "got 'many'",
    ]
