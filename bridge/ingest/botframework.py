"""The Bot Framework JWT that Microsoft Teams sends as ``Authorization: Bearer <jwt>`` with
every request to the bot's messaging endpoint (Adaptive Card ``Action.Execute`` clicks among
them): anyone can POST there; only the token says the Bot Framework sent it, for *this* bot.
:meth:`BotAuth.verify` accepts a request only when

1. the header is ``Bearer <token>`` (the scheme in any case);
2. the token's ``alg`` is RS256 (never ``none`` or HS256: HS256 "signed" with Microsoft's
   public key as the secret is the classic forgery), its ``kid`` names a key in Microsoft's
   set, and the signature verifies with that key;
3. ``iss`` is the Bot Framework and ``aud`` the bot's app id: a token Microsoft issued for
   another bot does not open this one;
4. ``exp`` (required) and ``nbf`` hold on the bridge's clock, with 5 minutes of leeway;
5. the key, when it lists endorsements, is endorsed for the activity's channel
   (``msteams``): a key for another channel cannot speak for Teams;
6. the token's service URL claim is the activity's ``serviceUrl`` (one trailing ``/``
   aside): a replayed genuine token cannot make the bridge send its answers to another
   address. Bot Framework spells the claim ``serviceurl`` (its SDKs' ``SERVICE_URL_CLAIM``),
   its documentation ``serviceUrl``: the name is matched in any case, and a token with two
   spellings is refused.

Otherwise it raises :class:`Unauthorized` (401) with a short ``reason`` for logs and metrics.
No message and no log line ever contains the token.

The keys come from the OpenID metadata's ``jwks_uri`` (https only; http on loopback, for
tests), fetched with the caller's aiohttp session and cached. They are fetched again when 24
hours old, or when a token names an unknown ``kid`` (Microsoft rotates keys), but then at most
once per 5 minutes: random ``kid``s cannot make us hammer Microsoft. A failed refresh is not
retried for 5 minutes either, so an outage does not make every request wait for a timeout.
Requests that need a fetch wait for one fetch and share its outcome. With no keys at all a
failed fetch raises :class:`KeysUnavailable` (503: Teams retries); with cached keys the bridge
keeps using them and logs ``teams.keys_refresh_failed``.

PyJWT and cryptography come with the ``teams`` extra: this module imports PyJWT only where
it checks a token or reads a key, so a Slack-only install imports the module (the endpoint,
the settings' defaults) without them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import aiohttp
import structlog

if TYPE_CHECKING:  # PyJWT is the `teams` extra's: imported where a token is checked
    import jwt
    from jwt.types import Options

log = structlog.get_logger("bridge.ingest.botframework")

METADATA_URL: Final = "https://login.botframework.com/v1/.well-known/openidconfiguration"
ISSUER: Final = "https://api.botframework.com"
SERVICE_URL_CLAIM: Final = "serviceurl"  # as Bot Framework spells it (matched in any case)
LEEWAY: Final = timedelta(minutes=5)
MAX_AGE: Final = timedelta(hours=24)  # fetch the key set again after this long
REFETCH_INTERVAL: Final = timedelta(minutes=5)  # at most one fetch this often, with a set
_LOOPBACK: Final = frozenset({"127.0.0.1", "::1", "localhost"})
# jwt.decode checks the signature; the claims are checked here, on the bridge's clock.
_SIGNATURE_ONLY: Final[Options] = {
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": False,
    "verify_iss": False,
}


class Unauthorized(Exception):
    """The request is not from the Bot Framework for this bot (401). ``reason`` is a short
    code (``expired``, ``bad_signature``...); the message says what was wrong in words."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class KeysUnavailable(Exception):
    """Microsoft's signing keys could not be fetched and none are cached (503)."""


@dataclass(frozen=True)
class Caller:
    """A verified request: the token's claims (``serviceurl``, ``aud``, ``exp``...)."""

    claims: Mapping[str, Any]


@dataclass(frozen=True)
class _Key:
    key: jwt.PyJWK
    endorsements: frozenset[str] | None  # None: the key lists none, any channel may use it


@dataclass(frozen=True)
class _KeySet:
    keys: Mapping[str, _Key]
    fetched: datetime


class _FetchError(Exception):
    """The key set could not be fetched (the message says why, for the log)."""


def _allowed(url: str) -> bool:
    """https, or plain http to this machine (tests, a local proxy)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return False
    return (parts.scheme == "https" and bool(host)) or (
        parts.scheme == "http" and host in _LOOPBACK
    )


class BotAuth:
    """Verifies the Bot Framework bearer token of each request to the messaging endpoint."""

    def __init__(
        self,
        *,
        app_id: str,
        session: aiohttp.ClientSession,
        clock: Callable[[], datetime],
        metadata_url: str = METADATA_URL,
        issuer: str = ISSUER,
        timeout: float = 10.0,
    ) -> None:
        if not _allowed(metadata_url):
            raise ValueError(
                "the Bot Framework OpenID metadata URL must be https:// (http:// only to "
                f"127.0.0.1, ::1 or localhost): {metadata_url!r}"
            )
        self._app_id = app_id
        self._session = session
        self._clock = clock
        self._metadata_url = metadata_url
        self._issuer = issuer
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._keys: _KeySet | None = None
        self._attempted: datetime | None = None  # the last fetch, successful or not
        self._refetched: datetime | None = None  # the last fetch for an unknown kid
        self._attempts = 0  # fetches finished
        self._lock = asyncio.Lock()

    async def verify(
        self, authorization: str | None, *, service_url: str, channel_id: str
    ) -> Caller:
        """The verified claims of the request's token; raises Unauthorized or KeysUnavailable."""
        import jwt  # noqa: PLC0415 (the `teams` extra's; this runs only when Teams is set up)

        token = _bearer(authorization)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("malformed", "the bearer token is not a JWT") from None
        if header.get("alg") != "RS256":
            alg = str(header.get("alg"))[:20]
            raise Unauthorized("bad_alg", f"the token is signed with {alg!r}, not RS256")
        kid = header.get("kid")
        key = (await self._key_set(kid)).keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise Unauthorized("unknown_key", "the token is not signed by a Bot Framework key")
        try:
            claims = jwt.decode(token, key.key, algorithms=["RS256"], options=_SIGNATURE_ONLY)
        except jwt.InvalidSignatureError:
            raise Unauthorized("bad_signature", "the token's signature does not verify") from None
        except jwt.PyJWTError:
            raise Unauthorized("malformed", "the token's claims are malformed") from None
        self._check_claims(claims)
        if key.endorsements is not None and channel_id not in key.endorsements:
            raise Unauthorized("endorsement", f"the key is not endorsed for {channel_id!r}")
        spelled = [value for name, value in claims.items() if name.lower() == SERVICE_URL_CLAIM]
        claimed = spelled[0] if len(spelled) == 1 else None
        if not isinstance(claimed, str) or _strip(claimed) != _strip(service_url):
            raise Unauthorized("service_url", "the token's serviceUrl is not the activity's")
        return Caller(claims=claims)

    async def warm(self) -> bool:
        """Fetch the key set now (at start): the first press then does not wait for it, and
        a blocked way to Bot Framework (a firewall, a proxy) shows in the log at start, not
        at someone's first click. False when it failed (logged; presses fetch again)."""
        try:
            await self._key_set("")
        except KeysUnavailable:
            return False
        return True

    def _check_claims(self, claims: Mapping[str, Any]) -> None:
        if claims.get("iss") != self._issuer:
            raise Unauthorized("bad_issuer", f"the token was not issued by {self._issuer}")
        if claims.get("aud") != self._app_id:
            raise Unauthorized("bad_audience", f"the token is not for app id {self._app_id}")
        exp, nbf = _timestamp(claims, "exp"), _timestamp(claims, "nbf")
        if exp is None:
            raise Unauthorized("malformed", "the token has no exp claim")
        now, leeway = self._clock().timestamp(), LEEWAY.total_seconds()
        if now > exp + leeway:
            raise Unauthorized("expired", "the token has expired")
        if nbf is not None and now < nbf - leeway:
            raise Unauthorized("not_yet_valid", "the token is not valid yet (nbf)")

    # -- the key set ---------------------------------------------------------------------------

    def _must_fetch(self, kid: str, now: datetime) -> bool:
        if self._keys is None:
            return True
        if now - self._keys.fetched >= MAX_AGE:  # stale: again, unless that just failed
            return self._attempted is None or now - self._attempted >= REFETCH_INTERVAL
        if kid not in self._keys.keys:  # rotated, or made up: again, but not too often
            return self._refetched is None or now - self._refetched >= REFETCH_INTERVAL
        return False

    async def _key_set(self, kid: str) -> _KeySet:
        if self._keys is not None and not self._must_fetch(kid, self._clock()):
            return self._keys
        seen = self._attempts
        async with self._lock:  # one fetch at a time; those who waited share its outcome
            now = self._clock()
            if self._attempts == seen and self._must_fetch(kid, now):
                await self._refresh(kid, now)
            if self._keys is None:
                raise KeysUnavailable("the Bot Framework signing keys could not be fetched")
            return self._keys

    async def _refresh(self, kid: str, now: datetime) -> None:
        self._attempted = now
        if self._keys is not None and kid not in self._keys.keys:
            self._refetched = now
        try:
            keys = await self._fetch()
        except _FetchError as exc:
            self._attempts += 1  # (not when cancelled: then a waiter fetches instead)
            if self._keys is None:
                log.warning("teams.keys_unavailable", error=str(exc))
                raise KeysUnavailable(f"Bot Framework signing keys: {exc}") from None
            log.warning(
                "teams.keys_refresh_failed", error=str(exc), age=str(now - self._keys.fetched)
            )
            return
        self._attempts += 1
        self._keys = _KeySet(keys, now)
        log.info("teams.keys_fetched", keys=len(keys))

    async def _fetch(self) -> dict[str, _Key]:
        jwks_uri = (await self._get_json(self._metadata_url)).get("jwks_uri")
        if not isinstance(jwks_uri, str) or not _allowed(jwks_uri):
            raise _FetchError(f"{self._metadata_url} names no https jwks_uri ({jwks_uri!r:.100})")
        entries = (await self._get_json(jwks_uri)).get("keys")
        found = [_rsa_key(entry) for entry in entries] if isinstance(entries, list) else []
        keys = dict(key for key in found if key is not None)
        if not keys:
            raise _FetchError(f"{jwks_uri} lists no usable RSA key")
        return keys

    async def _get_json(self, url: str) -> Mapping[str, Any]:
        try:
            async with self._session.get(url, timeout=self._timeout) as response:
                if not _allowed(str(response.url)):
                    raise _FetchError(f"{url} redirected away from https")
                if response.status != 200:
                    raise _FetchError(f"{url} answered HTTP {response.status}")
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _FetchError(f"{url} could not be reached ({type(exc).__name__})") from None
        except ValueError:
            raise _FetchError(f"{url} did not answer JSON") from None
        if not isinstance(body, dict):
            raise _FetchError(f"{url} did not answer a JSON object")
        return body


def _rsa_key(entry: object) -> tuple[str, _Key] | None:
    """One JWKS entry as a signing key; None for anything else (other key types, garbage)."""
    if not isinstance(entry, dict) or entry.get("kty") != "RSA" or entry.get("use", "sig") != "sig":
        return None
    kid, endorsements = entry.get("kid"), entry.get("endorsements")
    if not isinstance(kid, str) or not isinstance(endorsements, list | None):
        return None
    import jwt  # noqa: PLC0415 (the `teams` extra's)

    try:
        key = jwt.PyJWK(entry, algorithm="RS256")
    except (jwt.PyJWTError, ValueError, TypeError):
        return None
    return kid, _Key(key, None if endorsements is None else frozenset(map(str, endorsements)))


def _bearer(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").strip().partition(" ")
    if not scheme:
        raise Unauthorized("missing_token", "no Authorization header")
    if scheme.lower() != "bearer":
        raise Unauthorized("bad_scheme", "the Authorization header is not a Bearer token")
    if not token.strip():
        raise Unauthorized("missing_token", "the Authorization header has no token")
    if " " in token.strip():
        raise Unauthorized("malformed", "the bearer token is not a JWT")
    return token.strip()


def _strip(url: str) -> str:
    return url.removesuffix("/")


def _timestamp(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Unauthorized("malformed", f"the token's {name} claim is not a number")
    return float(value)
