"""Reading settings' raw text into values, collecting every problem (for settings.load)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final
from urllib.parse import SplitResult, urlsplit

from bridge.core.urls import without_password
from bridge.rules.destinations import service_url

_TRUE: Final = ("on", "true", "yes", "1")
_FALSE: Final = ("off", "false", "no", "0")


def installed(module: str) -> bool:
    """Whether ``module`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def default_store(environ: Mapping[str, str]) -> str:
    state = environ.get("STATE_DIRECTORY", "").split(":")[0]
    base = Path(state) if state else Path.cwd() / "var"
    return f"sqlite:///{(base / 'bridge.db').as_posix().lstrip('/')}"


def sqlite_path(url: str) -> Path:
    """``sqlite:///var/lib/x.db`` -> ``/var/lib/x.db``; ``sqlite:///./x.db`` stays relative."""
    rest = url.removeprefix("sqlite://")
    if not rest.startswith("/") or len(rest) < 2:
        raise ValueError(f"expected sqlite:///ABSOLUTE/PATH.db, got {without_password(url)!r}")
    path = rest[1:] if rest.startswith("/./") else rest
    return Path(path)


class Reader:
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
        parts = _split(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            self.problems.append(
                f"{self.where(dest)}: expected an http(s) URL, got {without_password(url)!r}"
            )
        else:
            self.values[dest] = url if url.endswith("/") else url + "/"

    def boolean(self, dest: str) -> None:
        value = self.text(dest)
        if value is None:
            return
        if value.strip().lower() in _TRUE:
            self.values[dest] = True
        elif value.strip().lower() in _FALSE:
            self.values[dest] = False
        else:
            self.problems.append(f"{self.where(dest)}: expected on or off, got {value!r}")

    def proxy(self) -> None:
        url = self.text("proxy")
        if url is None:
            return
        parts = _split(url)
        try:
            parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
        except ValueError:
            parts = _split("")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            self.problems.append(
                f"{self.where('proxy')}: expected http://[USER:PASSWORD@]HOST:PORT (or "
                f"https:// for TLS to the proxy), got {without_password(url)!r}"
            )
        else:
            self.values["proxy"] = url

    def teams_cloud(self) -> None:
        """The token authority host and the Bot Framework scope (sovereign clouds)."""
        if (host := self.text("teams_authority_host")) is not None:
            parts = _split(host)
            if parts.scheme != "https" or not parts.netloc or parts.path.strip("/"):
                self.problems.append(
                    f"{self.where('teams_authority_host')}: expected an https:// host such "
                    f"as https://login.microsoftonline.us, got {without_password(host)!r}"
                )
            else:
                self.values["teams_authority_host"] = host.rstrip("/")
        if (scope := self.text("teams_bot_scope")) is not None:
            parts = _split(scope)
            if parts.scheme != "https" or not parts.netloc or not scope.endswith("/.default"):
                self.problems.append(
                    f"{self.where('teams_bot_scope')}: expected https://HOST/.default such as "
                    f"https://api.botframework.us/.default, got {without_password(scope)!r}"
                )
            else:
                self.values["teams_bot_scope"] = scope
        if (metadata := self.text("teams_openid_metadata")) is not None:
            try:
                self.values["teams_openid_metadata"] = service_url(metadata).rstrip("/")
            except ValueError:
                self.problems.append(
                    f"{self.where('teams_openid_metadata')}: expected an https:// URL such as "
                    "https://login.botframework.azure.us/v1/.well-known/openidconfiguration, "
                    f"got {without_password(metadata)!r}"
                )
        if (issuer := self.text("teams_token_issuer")) is not None:
            parts = _split(issuer)
            if parts.scheme != "https" or not parts.netloc:
                self.problems.append(
                    f"{self.where('teams_token_issuer')}: expected https://HOST such as "
                    f"https://api.botframework.us, got {without_password(issuer)!r}"
                )
            else:
                self.values["teams_token_issuer"] = issuer.strip()

    def extras(self) -> None:
        """A setting whose feature needs an optional dependency that is not installed."""
        store = str(self.values.get("store", ""))
        if store.startswith(("postgresql://", "postgres://")) and not installed("asyncpg"):
            self.problems.append(
                f"{self.where('store', 'CALLBRIDGE_STORE')}: a PostgreSQL store needs the "
                "`postgres` extra (asyncpg), which is not installed: "
                "pip install 'callbridge[postgres]'"
            )
        if self.values.get("teams_app_id") and not (installed("msal") and installed("jwt")):
            self.problems.append(
                f"{self.where('teams_app_id', 'TEAMS_APP_ID')}: Teams needs the `teams` extra "
                "(msal, PyJWT), which is not installed: pip install 'callbridge[teams]' (or unset "
                "the TEAMS_ settings: Teams is then dry-run)"
            )

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
                f"got {without_password(store)!r}"
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


def _split(url: str) -> SplitResult:
    """:func:`urlsplit`, with a URL it cannot read (``http://[::1``) read as no URL."""
    try:
        return urlsplit(url)
    except ValueError:
        return urlsplit("")
