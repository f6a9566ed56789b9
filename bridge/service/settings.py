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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Final, Literal, get_args
from urllib.parse import urlsplit

from bridge.core.duration import parse_duration
from bridge.secret import Secret
from bridge.service.runtime import EventLoopChoice

LogFormat = Literal["auto", "json", "console"]

CHECKOUT_ROOT: Final = Path(__file__).resolve().parent.parent
INSTALLED_RULES: Final = Path("/etc/callbridge/rules.yaml")


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
    teams_app_id: str | None = None
    teams_app_password: Secret | None = None
    teams_tenant_id: str | None = None
    teams_service_url: str = "https://smba.trafficmanager.net/teams/"
    retention: timedelta = timedelta(days=14)
    stale_after: timedelta = timedelta(hours=4)
    shutdown_timeout: timedelta = timedelta(seconds=15)
    log_format: LogFormat = "auto"
    log_level: str = "info"
    event_loop: EventLoopChoice = "auto"
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def secrets(self) -> tuple[str, ...]:
        """Every configured secret value, for the log redaction safety net."""
        values = (self.webhook_token, self.slack_bot_token, self.teams_app_password)
        return tuple(s.reveal() for s in values if s is not None and s.reveal())

    @property
    def slack_enabled(self) -> bool:
        return self.slack_bot_token is not None

    @property
    def teams_enabled(self) -> bool:
        return self.teams_app_id is not None and self.teams_app_password is not None


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
    ("TEAMS_APP_ID", "teams_app_id", False),
    ("TEAMS_APP_PASSWORD", "teams_app_password", True),
    ("TEAMS_TENANT_ID", "teams_tenant_id", False),
    ("TEAMS_SERVICE_URL", "teams_service_url", False),
    ("CALLBRIDGE_RETENTION", "retention", False),
    ("CALLBRIDGE_STALE_AFTER", "stale_after", False),
    ("CALLBRIDGE_SHUTDOWN_TIMEOUT", "shutdown_timeout", False),
    ("CALLBRIDGE_LOG_FORMAT", "log_format", False),
    ("CALLBRIDGE_LOG_LEVEL", "log_level", False),
    ("CALLBRIDGE_EVENT_LOOP", "event_loop", False),
)


def credential_name(variable: str) -> str:
    """``CALLBRIDGE_WEBHOOK_TOKEN`` -> ``webhook-token`` (variable in lower case, dashes)."""
    return variable.removeprefix("CALLBRIDGE_").lower().replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per setting, named after the variable (``--listen``, ``--slack-bot-token``)."""
    for variable, dest, secret in _VARIABLES:
        flag = "--" + dest.replace("_", "-")
        note = " (prefer the variable or a credential file: flags show in `ps`)" if secret else ""
        parser.add_argument(flag, dest=dest, default=None, help=f"overrides {variable}{note}")


def parse_listen(text: str) -> Listen:
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT such as 127.0.0.1:8080 or [::1]:8080, got {text!r}")
    host = host.strip("[]") or "0.0.0.0"  # noqa: S104  (":8080" explicitly asks for all)
    return Listen(host, int(port))


def default_store(environ: Mapping[str, str]) -> str:
    state = environ.get("STATE_DIRECTORY", "").split(":")[0]
    base = Path(state) if state else Path.cwd() / "var"
    return f"sqlite:///{(base / 'bridge.db').as_posix().lstrip('/')}"


def default_rules() -> Path:
    beside_checkout = CHECKOUT_ROOT / "rules" / "example.yaml"
    return beside_checkout if beside_checkout.exists() else INSTALLED_RULES


def sqlite_path(url: str) -> Path:
    """``sqlite:///var/lib/x.db`` -> ``/var/lib/x.db``; ``sqlite:///./x.db`` stays relative."""
    rest = url.removeprefix("sqlite://")
    if not rest.startswith("/") or len(rest) < 2:
        raise ValueError(f"expected sqlite:///ABSOLUTE/PATH.db, got {url!r}")
    path = rest[1:] if rest.startswith("/./") else rest
    return Path(path)


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


class _Reader:
    """Converts raw values, collecting every problem instead of stopping at the first."""

    def __init__(self, raw: dict[str, tuple[str, str]]) -> None:
        self.raw = raw
        self.values: dict[str, object] = {}
        self.problems: list[str] = []

    def text(self, dest: str) -> str | None:
        return self.raw[dest][0] if dest in self.raw else None

    def where(self, dest: str, variable: str = "") -> str:
        return self.raw[dest][1] if dest in self.raw else variable

    def convert(self, dest: str, parse: Callable[[str], object]) -> None:
        value = self.text(dest)
        if value is None:
            return
        try:
            self.values[dest] = parse(value)
        except ValueError as err:
            self.problems.append(f"{self.where(dest)}: {err}")

    def choice(self, dest: str, allowed: tuple[str, ...]) -> None:
        value = self.text(dest)
        if value is None:
            return
        if value.lower() in allowed:
            self.values[dest] = value.lower()
        else:
            self.problems.append(
                f"{self.where(dest)}: expected {', '.join(allowed)}, got {value!r}"
            )

    def url(self, dest: str) -> None:
        url = self.text(dest)
        if url is None:
            return
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            self.problems.append(f"{self.where(dest)}: expected an http(s) URL, got {url!r}")
        else:
            self.values[dest] = url if url.endswith("/") else url + "/"

    def store(self, environ: Mapping[str, str]) -> None:
        store = self.text("store") or default_store(environ)
        where = self.where("store", "CALLBRIDGE_STORE")
        if store.startswith("sqlite:"):
            try:
                sqlite_path(store)
            except ValueError as err:
                self.problems.append(f"{where}: {err}")
        elif not store.startswith(("postgresql://", "postgres://")):
            self.problems.append(
                f"{where}: expected sqlite:///PATH or postgresql://..., "
                f"got {_without_password(store)!r}"
            )
        self.values["store"] = store

    def teams(self) -> None:
        names = {"teams_app_id": "TEAMS_APP_ID", "teams_app_password": "TEAMS_APP_PASSWORD"}
        names["teams_tenant_id"] = "TEAMS_TENANT_ID"
        present = [dest for dest in names if self.text(dest)]
        if present and len(present) < len(names):
            missing = ", ".join(v for d, v in names.items() if d not in present)
            self.problems.append(
                f"Teams is half configured: set {missing} too (or unset the others)"
            )
        for dest in ("teams_app_id", "teams_tenant_id"):
            if self.text(dest):
                self.values[dest] = self.text(dest)


def load(
    environ: Mapping[str, str] | None = None, flags: argparse.Namespace | None = None
) -> Settings:
    """Build and validate Settings; raises :class:`SettingsError` listing every problem."""
    env = os.environ if environ is None else environ
    reader = _Reader(_raw_values(env, flags))
    reader.convert("listen", parse_listen)
    for dest in ("retention", "stale_after", "shutdown_timeout"):
        reader.convert(dest, parse_duration)
    reader.values["rules"] = Path(reader.text("rules") or default_rules())
    reader.store(env)
    for dest in ("webhook_token", "slack_bot_token", "teams_app_password"):
        reader.convert(dest, Secret)
    reader.url("slack_api_url")
    reader.url("teams_service_url")
    reader.teams()
    reader.choice("log_format", ("auto", "json", "console"))
    reader.choice("log_level", ("debug", "info", "warning", "error"))
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
    if settings.stale_after >= settings.retention:
        warnings.append("CALLBRIDGE_STALE_AFTER is not shorter than CALLBRIDGE_RETENTION")
    return replace(settings, warnings=tuple(warnings))


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url
