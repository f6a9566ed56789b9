"""Bot Connector access tokens for the Teams notifier, from Microsoft Entra ID via msal.

:class:`TokenProvider` is all :class:`bridge.notify.teams.TeamsNotifier` needs: an async
``token()`` that answers a bearer token or raises :class:`AuthError` (an operator must fix the
configuration) or :class:`RetryableError` (try again later). Tests use a fake.

:class:`MsalTokenProvider` is the real one: client credentials of a single-tenant Azure Bot
(app id, client secret, tenant id) against ``https://login.microsoftonline.com/{tenant}``, scope
``https://api.botframework.com/.default``. msal is synchronous and does HTTP (tenant discovery
when the application object is built, then the token request), so every msal call runs in a
worker thread (:func:`asyncio.to_thread`); the event loop never blocks. One application object
per provider (build one provider per process); msal's own token cache answers repeated calls
until the token is within five minutes of expiry, so the identity platform sees about one
request an hour.

Neither the client secret nor any token ever appears in an error message or a log line.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

import structlog

from bridge.notify.errors import AuthError, RetryableError
from bridge.secret import Secret

log = structlog.get_logger("bridge.notify.teams_auth")

PLATFORM: Final = "teams"
METHOD: Final = "token"
AUTHORITY_HOST: Final = "https://login.microsoftonline.com"
BOT_SCOPE: Final = "https://api.botframework.com/.default"

_CREDENTIAL_ADVICE = (
    "set TEAMS_APP_PASSWORD (or the teams-app-password credential) to the *value* of a current "
    "client secret of the bot's app registration (Azure portal > App registrations > the bot > "
    "Certificates & secrets; the value is shown only once, not the secret ID)"
)
_APP_HINT = (
    "check TEAMS_APP_ID (the Azure Bot's Microsoft App ID) and TEAMS_TENANT_ID (the directory "
    "the single-tenant app registration lives in: App registrations > the bot > Overview > "
    "Directory (tenant) ID)"
)
_TENANT_HINT = (
    "set TEAMS_TENANT_ID to the Directory (tenant) ID GUID from the app registration's "
    "Overview page"
)
# AADSTS codes an operator is likely to meet, with what to do about them.
_AADSTS_HINTS: Final[Mapping[str, str]] = {
    "7000215": "the client secret is wrong; " + _CREDENTIAL_ADVICE,
    "7000222": "the client secret has expired; create a new one and " + _CREDENTIAL_ADVICE,
    "700016": "the app id is not registered in this tenant; " + _APP_HINT,
    "90002": "the tenant does not exist; " + _TENANT_HINT,
    "900023": "the tenant id is malformed; " + _TENANT_HINT,
    "7000112": "the app registration is disabled; enable it, or " + _APP_HINT,
    "700024": "the app registration is not valid for this tenant; " + _APP_HINT,
}
_ERROR_HINTS: Final[Mapping[str, str]] = {
    "invalid_client": "the client secret or app id was rejected; " + _CREDENTIAL_ADVICE,
    "unauthorized_client": "the app was not found or may not use this flow; " + _APP_HINT,
    "invalid_request": "the token request was refused; " + _APP_HINT,
    "invalid_scope": "the Bot Framework scope was refused; " + _APP_HINT,
}
_RETRYABLE_ERRORS: Final = frozenset({"temporarily_unavailable", "server_error"})


class TokenProvider(Protocol):
    """Gives a Bot Connector bearer token; raises AuthError or RetryableError."""

    async def token(self) -> str: ...


class MsalTokenProvider:
    """Client-credentials tokens for a single-tenant Azure Bot, cached by msal.

    ``authority_host`` and ``scope`` change for government clouds (``TEAMS_AUTHORITY_HOST``,
    ``TEAMS_BOT_SCOPE``). ``proxy`` (``CALLBRIDGE_PROXY``) is the proxy the chat session uses
    too: msal's requests go through it, and the environment's ``HTTPS_PROXY`` is ignored, so
    tokens and posts always take the same way out.

    ``http_client`` replaces msal's ``requests`` session (an object with ``post``/``get``
    answering objects with ``status_code``, ``text`` and ``headers``): tests answer msal
    in-process with it; production leaves it None.
    """

    def __init__(
        self,
        *,
        app_id: str,
        password: Secret,
        tenant_id: str,
        authority_host: str = AUTHORITY_HOST,
        scope: str = BOT_SCOPE,
        timeout: float = 10.0,
        proxy: str | None = None,
        http_client: Any = None,
    ) -> None:
        self.app_id = app_id
        self.tenant_id = tenant_id
        self._password = password
        self._host = urlsplit(authority_host).hostname or authority_host
        self._authority = f"{authority_host.rstrip('/')}/{tenant_id}"
        self._scopes = [scope]
        self._timeout = timeout
        self._proxy = proxy
        self._http_client = http_client
        self._app: Any = None  # msal.ConfidentialClientApplication, built on first use
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        async with self._lock:  # one msal call at a time: a cache miss is fetched once
            result = await asyncio.to_thread(self._acquire)
        token = result.get("access_token")
        if isinstance(token, str) and token:
            if result.get("token_source") == "identity_provider":
                log.info("teams.token_fetched", expires_in=result.get("expires_in"))
            return token
        raise self._token_error(result)

    # -- in the worker thread ------------------------------------------------------------------

    def _acquire(self) -> Mapping[str, Any]:
        # msal (with requests, PyJWT, cryptography) is the `teams` extra: loaded only when a
        # Teams token is needed (settings.load says which extra to install when it is missing).
        import msal  # noqa: PLC0415
        from msal.exceptions import MsalServiceError  # noqa: PLC0415

        try:
            if self._app is None:
                try:
                    self._app = msal.ConfidentialClientApplication(
                        self.app_id,
                        client_credential=self._password.reveal(),
                        authority=self._authority,
                        http_client=self._http_client or self._session(),
                        timeout=self._timeout,
                        # The operator chose the host; validating it would ask the
                        # commercial cloud, which a government cloud may not reach.
                        instance_discovery=False,
                    )
                except ValueError as exc:
                    # tenant discovery answered 4xx (or garbage): the tenant is unknown
                    raise self._discovery_error(exc) from None
            result = self._app.acquire_token_for_client(scopes=self._scopes)
        except (OSError, MsalServiceError, ValueError) as exc:
            # requests' errors are OSErrors; MsalServiceError is msal's answer to an HTTP 5xx;
            # ValueError: the token endpoint answered something that is not JSON (a proxy?).
            raise RetryableError(
                f"Teams: could not get a token from {self._authority} ({type(exc).__name__}); "
                f"check network access to {self._host} (and CALLBRIDGE_PROXY), will retry",
                platform=PLATFORM,
                method=METHOD,
                code="connection",
            ) from None
        return result if isinstance(result, Mapping) else {}

    def _session(self) -> Any:
        """What msal builds by default (a requests session retrying a failed connection
        once, with the timeout), but with the proxy setting instead of the environment's."""
        import requests  # noqa: PLC0415  (msal's dependency: the `teams` extra)

        session = requests.Session()
        session.trust_env = False  # no HTTPS_PROXY, NO_PROXY, .netrc: the settings decide
        if self._proxy:
            session.proxies = {"http": self._proxy, "https": self._proxy}
        # as msal does for its own session: every request gets the timeout
        session.request = functools.partial(session.request, timeout=self._timeout)  # type: ignore[method-assign]
        adapter = requests.adapters.HTTPAdapter(max_retries=1)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session

    # -- errors --------------------------------------------------------------------------------

    def _discovery_error(self, exc: ValueError) -> AuthError:
        said = self._scrub(str(exc).splitlines()[0] if str(exc) else "")
        return AuthError(
            f"Teams: the Microsoft Entra tenant {self.tenant_id!r} was not found ({said[:200]}); "
            + _TENANT_HINT,
            platform=PLATFORM,
            method=METHOD,
            code="unknown_tenant",
        )

    def _token_error(self, result: Mapping[str, Any]) -> AuthError | RetryableError:
        error = str(result.get("error") or "no_token")
        codes = [str(c) for c in result.get("error_codes") or () if c is not None]
        description = self._scrub(str(result.get("error_description") or ""))
        said = description.splitlines()[0][:300] if description else "no description"
        if error in _RETRYABLE_ERRORS:
            return RetryableError(
                f"Teams: Microsoft Entra could not issue a token right now ({error}: {said}); "
                "will retry",
                platform=PLATFORM,
                method=METHOD,
                code=error,
            )
        hint = next((_AADSTS_HINTS[c] for c in codes if c in _AADSTS_HINTS), None)
        hint = hint or _ERROR_HINTS.get(error, _APP_HINT)
        aadsts = f"AADSTS{codes[0]}" if codes else error
        return AuthError(
            f"Teams: Microsoft Entra refused a token for app {self.app_id} in tenant "
            f"{self.tenant_id} ({error}, {aadsts}: {said}); {hint}",
            platform=PLATFORM,
            method=METHOD,
            code=aadsts,
        )

    def _scrub(self, text: str) -> str:
        """The identity platform never echoes the secret, but make sure of it."""
        secret = self._password.reveal()
        return text.replace(secret, "***") if secret else text
