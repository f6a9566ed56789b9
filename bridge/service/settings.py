"""Settings: environment, `serve` flags and systemd credentials -> frozen :class:`Settings`.

Precedence: command-line flag, then environment variable, then a file of the same name in
lower case in ``$CREDENTIALS_DIRECTORY`` (systemd ``LoadCredential=``; for secrets and the
other settings alike), then the default. Every problem is reported at once, naming the
variable and what a valid value looks like.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Final, Literal, get_args

from bridge.core.duration import EXAMPLES as DURATION_EXAMPLES
from bridge.core.duration import format_duration, parse_duration
from bridge.core.urls import url_passwords
from bridge.ingest.botframework import ISSUER as TOKEN_ISSUER
from bridge.ingest.botframework import METADATA_URL as OPENID_METADATA
from bridge.rules.destinations import service_url
from bridge.secret import Secret
from bridge.service.runtime import EventLoopChoice
from bridge.service.settings_values import Reader

LogFormat = Literal["auto", "json", "journal", "console"]
LogLevel = Literal["debug", "info", "warning", "error"]

CHECKOUT_ROOT: Final = Path(__file__).resolve().parents[2]  # bridge/service/settings.py
INSTALLED_RULES: Final = Path("/etc/callbridge/rules.yaml")


DEFAULT_RETENTION: Final = timedelta(days=14)  # CALLBRIDGE_RETENTION


@dataclass(frozen=True, slots=True)
class Listen:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


@dataclass(frozen=True, slots=True)
class Settings:
    listen: Listen = Listen("127.0.0.1", 8080)
    rules: Path = Path("rules/example.yaml")
    store: str = "sqlite:///./var/bridge.db"
    webhook_token: Secret | None = None
    slack_bot_token: Secret | None = None
    slack_api_url: str = "https://slack.com/api/"
    slack_signing_secret: Secret | None = None
    teams_app_id: str | None = None
    teams_app_password: Secret | None = None
    teams_tenant_id: str | None = None
    teams_service_url: str = "https://smba.trafficmanager.net/teams/"
    teams_mention_emails: bool = True
    teams_buttons: bool = False
    teams_authority_host: str = "https://login.microsoftonline.com"
    teams_bot_scope: str = "https://api.botframework.com/.default"
    teams_openid_metadata: str = OPENID_METADATA
    teams_token_issuer: str = TOKEN_ISSUER
    proxy: str | None = None
    retention: timedelta = DEFAULT_RETENTION
    stale_after: timedelta = timedelta(hours=4)
    shutdown_timeout: timedelta = timedelta(seconds=15)
    client_timeout: timedelta = timedelta(seconds=15)
    max_connections: int | None = None  # None: from the descriptor limit (RLIMIT_NOFILE)
    log_format: LogFormat = "auto"
    log_level: LogLevel = "info"
    event_loop: EventLoopChoice = "auto"
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def secrets(self) -> tuple[str, ...]:
        """Every configured secret value, for the log redaction safety net."""
        values = (
            self.webhook_token,
            self.slack_bot_token,
            self.slack_signing_secret,
            self.teams_app_password,
        )
        found = [s.reveal() for s in values if s is not None and s.reveal()]
        for url in self._urls():  # USER:PASSWORD@ in any of them (or a DSN's password=)
            found.extend(url_passwords(url))
        return tuple(found)

    def _urls(self) -> tuple[str, ...]:
        return (
            self.store,
            self.slack_api_url,
            self.teams_service_url,
            self.teams_authority_host,
            self.teams_bot_scope,
            self.teams_openid_metadata,
            self.teams_token_issuer,
            self.proxy or "",
        )

    @property
    def slack_enabled(self) -> bool:
        return self.slack_bot_token is not None

    @property
    def slack_interactivity(self) -> bool:
        """Slack's button clicks reach the bridge (``POST /slack/interactions`` verifies them
        with the signing secret) and alerts are really posted, or nothing is (the dry-run
        demo, whose preview shows the buttons and whose simulator presses them): only then
        do alerts offer buttons."""
        return self.slack_signing_secret is not None and (self.slack_enabled or self.posts_nowhere)

    @property
    def teams_offers_buttons(self) -> bool:
        """``TEAMS_BUTTONS`` is on and alerts are really posted to Teams, or nothing is
        posted anywhere (the dry-run demo, whose preview shows the buttons)."""
        return self.teams_buttons and (self.teams_enabled or self.posts_nowhere)

    @property
    def posts_nowhere(self) -> bool:
        """Neither Slack nor Teams is configured: the dry-run demo (every platform logged and
        drawn on the preview)."""
        return not self.slack_enabled and not self.teams_enabled

    @property
    def teams_enabled(self) -> bool:
        return self.teams_app_id is not None and self.teams_app_password is not None


# What other HTTP clients read; callbridge reads only CALLBRIDGE_PROXY (see load()).
_PROXY_VARIABLES: Final = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY")


class SettingsError(Exception):
    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(problems))


# (variable, flag dest, is secret)
_VARIABLES: Final = (
    ("CALLBRIDGE_LISTEN", "listen", False),
    ("CALLBRIDGE_RULES", "rules", False),
    ("CALLBRIDGE_STORE", "store", False),
    ("CALLBRIDGE_WEBHOOK_TOKEN", "webhook_token", True),
    ("SLACK_BOT_TOKEN", "slack_bot_token", True),
    ("SLACK_API_URL", "slack_api_url", False),
    ("SLACK_SIGNING_SECRET", "slack_signing_secret", True),
    ("TEAMS_APP_ID", "teams_app_id", False),
    ("TEAMS_APP_PASSWORD", "teams_app_password", True),
    ("TEAMS_TENANT_ID", "teams_tenant_id", False),
    ("TEAMS_SERVICE_URL", "teams_service_url", False),
    ("TEAMS_MENTION_EMAILS", "teams_mention_emails", False),
    ("TEAMS_BUTTONS", "teams_buttons", False),
    ("TEAMS_AUTHORITY_HOST", "teams_authority_host", False),
    ("TEAMS_BOT_SCOPE", "teams_bot_scope", False),
    ("TEAMS_OPENID_METADATA", "teams_openid_metadata", False),
    ("TEAMS_TOKEN_ISSUER", "teams_token_issuer", False),
    ("CALLBRIDGE_PROXY", "proxy", True),  # its URL may hold a password
    ("CALLBRIDGE_RETENTION", "retention", False),
    ("CALLBRIDGE_STALE_AFTER", "stale_after", False),
    ("CALLBRIDGE_SHUTDOWN_TIMEOUT", "shutdown_timeout", False),
    ("CALLBRIDGE_CLIENT_TIMEOUT", "client_timeout", False),
    ("CALLBRIDGE_MAX_CONNECTIONS", "max_connections", False),
    ("CALLBRIDGE_LOG_FORMAT", "log_format", False),
    ("CALLBRIDGE_LOG_LEVEL", "log_level", False),
    ("CALLBRIDGE_EVENT_LOOP", "event_loop", False),
)


def credential_name(variable: str) -> str:
    """``CALLBRIDGE_WEBHOOK_TOKEN`` -> ``webhook-token`` (variable in lower case, dashes)."""
    return variable.removeprefix("CALLBRIDGE_").lower().replace("_", "-")


# What each setting means and takes, for `serve --help` (the README's table says the same).
HELP: Final[Mapping[str, str]] = {
    "listen": "HOST:PORT to listen on ([::1]:8080; 0.0.0.0:8080 for every interface)",
    "rules": "the rules file",
    "store": "sqlite:///ABSOLUTE/PATH.db (sqlite:///./PATH.db: relative to the working "
    "directory), or postgresql://USER@HOST/DB for several instances",
    "webhook_token": "the token the provider must send (Authorization: Bearer or Token, or "
    "?token=); none: anyone who reaches the port may post",
    "slack_bot_token": "the Slack bot token (xoxb-...); none: Slack is dry-run",
    "slack_api_url": "the Slack Web API (an http(s) URL)",
    "slack_signing_secret": "the Slack app's Signing Secret (Basic Information -> App "
    "Credentials): verifies the button clicks Slack sends to POST /slack/interactions; "
    "none: that endpoint answers 404 and alerts have no buttons",
    "teams_app_id": "the Azure Bot's Microsoft App ID (Teams needs all three of app id, "
    "password and tenant id; none: Teams is dry-run)",
    "teams_app_password": "the value of a client secret of the bot's app registration",
    "teams_tenant_id": "the Directory (tenant) ID of the bot's app registration",
    "teams_service_url": "the Bot Connector service URL (https://, or http:// to a loopback "
    "address); a Teams destination's `service_url:` in the rules replaces it for that "
    "destination",
    "teams_mention_emails": "on: @mention people in Teams by their e-mail address taken as "
    "their sign-in name (UPN); off: show them by name (on or off)",
    "teams_buttons": "on: callback case alerts in Teams offer their buttons (set the Azure "
    "Bot's messaging endpoint to https://YOUR-HOST/teams/messages first: docs/teams.md); "
    "off: the same cards without buttons (on or off)",
    "teams_authority_host": "the Microsoft Entra host that issues tokens (https://; US "
    "government clouds: https://login.microsoftonline.us)",
    "teams_bot_scope": "the Bot Framework token scope (US government clouds: "
    "https://api.botframework.us/.default)",
    "teams_openid_metadata": "where Bot Framework publishes the keys that sign Teams' "
    "requests to POST /teams/messages (US government clouds: "
    "https://login.botframework.azure.us/v1/.well-known/openidconfiguration)",
    "teams_token_issuer": "the issuer of those requests' tokens (US government clouds: "
    "https://api.botframework.us)",
    "proxy": "the outbound HTTP proxy for every Slack, Bot Connector and token request "
    "(http://[USER:PASSWORD@]HOST:PORT, or https:// for TLS to the proxy); none: direct. "
    "HTTPS_PROXY and the like are ignored",
    "retention": f"delete ended calls after this ({DURATION_EXAMPLES})",
    "stale_after": "close a call after this much silence without an `ended` event",
    "shutdown_timeout": "on SIGTERM, how long in-flight requests and again queued work may take",
    "client_timeout": "how long a client may take to send a request's headers (from "
    "connecting, or from the previous answer on a kept-alive connection) and, again, its body",
    "max_connections": "open client connections at most (beyond: 503 and closed at once); "
    "auto: the descriptor limit (LimitNOFILE) less a quarter of it, at least 128",
    "log_format": "auto (console on a terminal, journal when stdout is the systemd journal, "
    "else json), json, journal (json lines with a <N> syslog priority prefix) or console",
    "log_level": ", ".join(get_args(LogLevel)),
    "event_loop": "auto (uvloop when installed), uvloop or asyncio",
}
_SHOWN_DEFAULTS: Final = {
    "rules": "rules/example.yaml beside the checkout, else /etc/callbridge/rules.yaml",
    "store": "sqlite:///$STATE_DIRECTORY/bridge.db, else ./var/bridge.db",
    "max_connections": "auto",
}


def shown_default(dest: str) -> str:
    """The default of a setting as its variable would spell it."""
    if dest in _SHOWN_DEFAULTS:
        return _SHOWN_DEFAULTS[dest]
    value = getattr(Settings(), dest)
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, timedelta):
        return format_duration(value)
    return str(value)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per setting, named after the variable (``--listen``, ``--slack-bot-token``),
    with what it takes, its default and the variable it overrides."""
    for variable, dest, secret in _VARIABLES:
        flag = "--" + dest.replace("_", "-")
        note = "; prefer the variable or a credential file: flags show in `ps`" if secret else ""
        meaning = HELP.get(dest, "")
        parser.add_argument(
            flag,
            dest=dest,
            default=None,
            metavar=variable,
            help=f"{meaning} (default: {shown_default(dest)}; overrides {variable}{note})",
        )


def parse_listen(text: str) -> Listen:
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT such as 127.0.0.1:8080 or [::1]:8080, got {text!r}")
    host = host.strip("[]") or "0.0.0.0"  # noqa: S104  (":8080" explicitly asks for all)
    return Listen(host, int(port))


def positive_duration(text: str) -> timedelta:
    value = parse_duration(text)
    if value <= timedelta(0):
        raise ValueError(f"expected a duration above 0, got {text!r}")
    return value


def _connections(text: str) -> int | None:
    if text.strip().lower() == "auto":
        return None
    if not text.strip().isdigit() or int(text) < 1:
        raise ValueError(f"expected a number of connections (1 or more) or auto, got {text!r}")
    return int(text)


def default_rules() -> Path:
    beside_checkout = CHECKOUT_ROOT / "rules" / "example.yaml"
    return beside_checkout if beside_checkout.exists() else INSTALLED_RULES


def _raw_values(
    environ: Mapping[str, str], flags: argparse.Namespace | None
) -> dict[str, tuple[str, str]]:
    """dest -> (value, where it came from)."""
    found: dict[str, tuple[str, str]] = {}
    creds = environ.get("CREDENTIALS_DIRECTORY")
    for variable, dest, _secret in _VARIABLES:
        flag_value = getattr(flags, dest, None) if flags is not None else None
        if flag_value is not None:
            found[dest] = (str(flag_value), "--" + dest.replace("_", "-"))
        elif environ.get(variable, "") != "":
            found[dest] = (environ[variable], variable)
        elif creds:
            path = Path(creds) / credential_name(variable)
            value = path.read_text(encoding="utf-8").strip() if path.is_file() else ""
            if value:  # empty, like an empty variable, means unset (SetCredential= fallback)
                found[dest] = (value, f"credential {path.name}")
    return found


def load(
    environ: Mapping[str, str] | None = None, flags: argparse.Namespace | None = None
) -> Settings:
    """Build and validate Settings; raises :class:`SettingsError` listing every problem."""
    env = os.environ if environ is None else environ
    reader = Reader(_raw_values(env, flags))
    reader.convert("listen", parse_listen)
    reader.convert("shutdown_timeout", parse_duration)  # 0: no grace
    for dest in ("retention", "stale_after", "client_timeout"):
        reader.convert(dest, positive_duration)
    reader.convert("max_connections", _connections)
    reader.values["rules"] = Path(reader.text("rules") or default_rules())
    reader.store(env)
    for dest in ("webhook_token", "slack_bot_token", "slack_signing_secret", "teams_app_password"):
        reader.convert(dest, Secret)
    reader.url("slack_api_url")
    reader.convert("teams_service_url", service_url)
    reader.teams()
    reader.boolean("teams_mention_emails")
    reader.boolean("teams_buttons")
    reader.teams_cloud()
    reader.proxy()
    reader.extras()
    reader.choice("log_format", get_args(LogFormat))
    reader.choice("log_level", get_args(LogLevel))
    reader.choice("event_loop", get_args(EventLoopChoice))
    if reader.problems:
        raise SettingsError(reader.problems)
    settings = Settings(**reader.values)  # type: ignore[arg-type]
    warnings: list[str] = []
    if settings.webhook_token is None and not settings.listen.is_loopback:
        warnings.append(
            f"listening on {settings.listen} without CALLBRIDGE_WEBHOOK_TOKEN: anyone who can "
            "reach this port can post call notifications"
        )
    if (
        settings.slack_signing_secret is not None
        and not settings.slack_enabled
        and settings.teams_enabled
    ):
        warnings.append(
            "SLACK_SIGNING_SECRET is set but SLACK_BOT_TOKEN is not: Slack is dry-run, so "
            "no alert offers buttons (clicks on alerts posted earlier are still accepted)"
        )
    if settings.teams_buttons and not settings.teams_enabled and settings.slack_enabled:
        warnings.append(
            "TEAMS_BUTTONS is on but Teams is not configured (TEAMS_APP_ID, TEAMS_APP_PASSWORD, "
            "TEAMS_TENANT_ID): Teams is dry-run, so no card offers buttons"
        )
    if settings.stale_after >= settings.retention:
        warnings.append("CALLBRIDGE_STALE_AFTER is not shorter than CALLBRIDGE_RETENTION")
    warnings.extend(_cloud_warnings(settings))
    if settings.proxy is None and (ignored := [v for v in _PROXY_VARIABLES if env.get(v)]):
        warnings.append(
            f"{', '.join(ignored)} {'is' if len(ignored) == 1 else 'are'} set but not used: "
            "set CALLBRIDGE_PROXY for a proxy (it then serves Slack, the Bot Connector and "
            "Teams tokens alike)"
        )
    return replace(settings, warnings=tuple(warnings))


def _cloud_warnings(settings: Settings) -> list[str]:
    """Sovereign clouds change the token host and the scope together."""
    defaults = Settings()
    host_changed = settings.teams_authority_host != defaults.teams_authority_host
    scope_changed = settings.teams_bot_scope != defaults.teams_bot_scope
    warnings: list[str] = []
    if settings.teams_enabled and host_changed != scope_changed:
        changed, kept = ("TEAMS_AUTHORITY_HOST", "TEAMS_BOT_SCOPE")[:: 1 if host_changed else -1]
        warnings.append(
            f"{changed} is changed but {kept} is the commercial cloud's: a government cloud "
            "needs both (docs/teams.md, 'Government clouds')"
        )
    inbound = (
        settings.teams_openid_metadata != defaults.teams_openid_metadata,
        settings.teams_token_issuer != defaults.teams_token_issuer,
    )
    if settings.teams_enabled and (host_changed or scope_changed) and not all(inbound):
        warnings.append(
            "TEAMS_AUTHORITY_HOST or TEAMS_BOT_SCOPE is a government cloud's but "
            "TEAMS_OPENID_METADATA and TEAMS_TOKEN_ISSUER are not both changed: Teams' button "
            "clicks would be refused (docs/teams.md, 'Government clouds')"
        )
    return warnings
