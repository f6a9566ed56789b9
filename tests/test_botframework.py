"""BotAuth: the Bot Framework JWT on Teams' requests to the messaging endpoint, checked against
a fake OpenID metadata + JWKS server on 127.0.0.1, on an injected clock."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import jwt
import pytest
from structlog.testing import capture_logs

from bridge.ingest.botframework import (
    ISSUER,
    BotAuth,
    Caller,
    KeysUnavailable,
    Unauthorized,
)
from tests.support import fake_botframework as fake
from tests.support.fake_botframework import APP, SERVICE_URL, K, KeyServer, M, Signer, claims_at
from tests.support.fake_botframework import new_key as _rsa
from tests.support.fake_server import Fault

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


TEAMS = Signer("teams-key", _rsa(), endorsements=("msteams", "skype"))
PLAIN = Signer("plain-key", _rsa())  # lists no endorsements: any channel
NOBODY = Signer("nobody-key", _rsa(), endorsements=())
ROTATED = Signer("rotated-key", _rsa(), endorsements=("msteams",))
STRANGER = _rsa()  # in no key set


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
async def server() -> AsyncIterator[KeyServer]:
    async with KeyServer([TEAMS, PLAIN, NOBODY]) as fake:
        yield fake


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def auth(server: KeyServer, session: aiohttp.ClientSession, clock: Clock) -> BotAuth:
    return BotAuth(app_id=APP, session=session, clock=clock, metadata_url=server.metadata_url)


def token(now: datetime, signer: Signer = TEAMS, **kwargs: Any) -> str:
    return fake.token(now, signer, **kwargs)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict[str, Any], claims: dict[str, Any], secret: bytes | None) -> str:
    """A token PyJWT would refuse to make: ``alg: none``, or HMAC with a public key."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    if secret is None:
        return signing_input + "."
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


async def verify(
    auth: BotAuth, jwt_: str, *, service_url: str = SERVICE_URL, channel: str = "msteams"
) -> Caller:
    return await auth.verify(f"Bearer {jwt_}", service_url=service_url, channel_id=channel)


async def refused(
    auth: BotAuth,
    authorization: str | None,
    *,
    service_url: str = SERVICE_URL,
    channel: str = "msteams",
) -> Unauthorized:
    with pytest.raises(Unauthorized) as caught:
        await auth.verify(authorization, service_url=service_url, channel_id=channel)
    secret_part = (authorization or "").partition(" ")[2].strip()
    if len(secret_part) > 8:
        assert secret_part not in str(caught.value)  # never the token in a message
    return caught.value


# -- a good token ---------------------------------------------------------------------------


async def test_a_good_token_passes_and_returns_its_claims(auth, server, clock):
    caller = await verify(auth, token(clock.now))

    assert caller.claims["aud"] == APP
    assert caller.claims["iss"] == ISSUER
    assert caller.claims["serviceurl"] == SERVICE_URL
    assert server.fetches() == (1, 1)
    await verify(auth, token(clock.now, PLAIN))
    assert server.fetches() == (1, 1)  # the key set is cached


async def test_the_scheme_is_case_insensitive_and_one_trailing_slash_is_ignored(auth, clock):
    good = token(clock.now, serviceurl="https://smba.trafficmanager.net/emea")

    caller = await auth.verify(f"bearer {good}", service_url=SERVICE_URL, channel_id="msteams")

    assert caller.claims["serviceurl"] == "https://smba.trafficmanager.net/emea"
    other_way = token(clock.now)  # the claim has the slash, the activity not
    await verify(auth, other_way, service_url="https://smba.trafficmanager.net/emea")


# -- the header -----------------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "", "   ", "Bearer", "Bearer   "])
async def test_a_missing_token_is_refused_without_fetching_keys(auth, server, header):
    error = await refused(auth, header)

    assert error.reason == "missing_token"
    assert server.fetches() == (0, 0)


@pytest.mark.parametrize("scheme", ["Basic", "Token", "JWT"])
async def test_another_scheme_is_refused(auth, server, clock, scheme):
    error = await refused(auth, f"{scheme} {token(clock.now)}")

    assert error.reason == "bad_scheme"
    assert "Bearer" in str(error)
    assert server.fetches() == (0, 0)


async def test_a_bare_token_without_scheme_is_refused_and_not_echoed(auth, clock):
    bare = token(clock.now)

    with pytest.raises(Unauthorized) as caught:
        await auth.verify(bare, service_url=SERVICE_URL, channel_id="msteams")

    assert caught.value.reason == "bad_scheme"
    assert bare not in str(caught.value)
    assert bare.split(".")[0] not in str(caught.value)


@pytest.mark.parametrize(
    "garbage", ["not-a-jwt", "a.b.c", "eyJhbGciOiJSUzI1NiJ9", "abc def", "!!!.???.***"]
)
async def test_garbage_is_malformed(auth, server, garbage):
    error = await refused(auth, f"Bearer {garbage}")

    assert error.reason == "malformed"
    assert server.fetches() == (0, 0)


# -- algorithm, key, signature --------------------------------------------------------------


async def test_alg_none_is_refused(auth, server, clock):
    unsigned = hand_made({"alg": "none", "kid": TEAMS.kid}, claims_at(clock.now), None)

    error = await refused(auth, f"Bearer {unsigned}")

    assert error.reason == "bad_alg"
    assert server.fetches() == (0, 0)


async def test_hs256_signed_with_the_public_key_is_refused(auth, server, clock):
    # The confusion attack: the public key is public; a verifier that let the token choose
    # its algorithm would check this HMAC with the key's PEM text and accept it.
    forged = hand_made(
        {"alg": "HS256", "typ": "JWT", "kid": TEAMS.kid}, claims_at(clock.now), TEAMS.public_pem()
    )
    await verify(auth, token(clock.now))  # the key is known and cached

    error = await refused(auth, f"Bearer {forged}")

    assert error.reason == "bad_alg"
    assert "HS256" in str(error)


async def test_another_rsa_algorithm_is_refused(auth, clock):
    rs512 = token(clock.now, algorithm="RS512")

    error = await refused(auth, f"Bearer {rs512}")

    assert error.reason == "bad_alg"


async def test_an_unknown_kid_is_refused_and_refetches_at_most_once_per_5_minutes(
    auth, server, clock
):
    await verify(auth, token(clock.now))
    assert server.fetches() == (1, 1)
    kids = [f"random-{n}" for n in range(20)]

    errors = await asyncio.gather(
        *(refused(auth, f"Bearer {token(clock.now, kid=kid)}") for kid in kids)
    )

    assert {e.reason for e in errors} == {"unknown_key"}
    assert server.fetches() == (2, 2)  # one refetch for all twenty
    clock.advance(minutes=4, seconds=59)
    await refused(auth, f"Bearer {token(clock.now, kid='random-again')}")
    assert server.fetches() == (2, 2)
    clock.advance(seconds=1)
    await refused(auth, f"Bearer {token(clock.now, kid='random-again')}")
    assert server.fetches() == (3, 3)
    await verify(auth, token(clock.now))  # known keys still pass without a fetch
    assert server.fetches() == (3, 3)


async def test_a_token_without_kid_is_refused(auth, clock):
    no_kid = jwt.encode(claims_at(clock.now), TEAMS.private, algorithm="RS256")

    error = await refused(auth, f"Bearer {no_kid}")

    assert error.reason == "unknown_key"


async def test_a_token_signed_by_a_key_not_in_the_set_is_refused(auth, clock):
    impostor = token(clock.now, key=STRANGER)  # kid of a real key, signed by another

    error = await refused(auth, f"Bearer {impostor}")

    assert error.reason == "bad_signature"


async def test_a_tampered_payload_is_refused(auth, clock):
    header, _, signature = token(clock.now).split(".")
    other = b64(json.dumps(claims_at(clock.now, serviceurl="https://evil.example/")).encode())

    error = await refused(auth, f"Bearer {header}.{other}.{signature}")

    assert error.reason == "bad_signature"


# -- claims ---------------------------------------------------------------------------------


@pytest.mark.parametrize("iss", ["https://sts.windows.net/some-tenant/", "", None])
async def test_the_wrong_issuer_is_refused(auth, clock, iss):
    error = await refused(auth, f"Bearer {token(clock.now, iss=iss)}")

    assert error.reason == "bad_issuer"
    assert ISSUER in str(error)


@pytest.mark.parametrize(
    "aud", ["11111111-0000-0000-0000-000000000000", [APP], [APP, "other"], None]
)
async def test_the_wrong_audience_is_refused(auth, clock, aud):
    error = await refused(auth, f"Bearer {token(clock.now, aud=aud)}")

    assert error.reason == "bad_audience"


async def test_expiry_has_5_minutes_of_leeway_on_the_injected_clock(auth, clock):
    # the token expires at START + 1 h by the bridge's clock, whatever the system clock says
    good = token(clock.now)
    clock.advance(hours=1, minutes=5)

    await verify(auth, good)  # exactly at the end of the leeway: still good
    clock.advance(seconds=1)
    error = await refused(auth, f"Bearer {good}")

    assert error.reason == "expired"


async def test_the_system_clock_plays_no_part(auth, clock):
    clock.now = datetime(2001, 1, 1, tzinfo=UTC)  # long expired by the system clock

    caller = await verify(auth, token(clock.now))

    assert caller.claims["exp"] == int(clock.now.timestamp()) + 3600


@pytest.mark.parametrize("exp", [None, "tomorrow", True])
async def test_exp_is_required_and_must_be_a_number(auth, clock, exp):
    error = await refused(auth, f"Bearer {token(clock.now, exp=exp)}")

    assert error.reason == "malformed"
    assert "exp" in str(error)


async def test_nbf_in_the_future_is_refused_beyond_the_leeway(auth, clock):
    stamp = int(clock.now.timestamp())

    await verify(auth, token(clock.now, nbf=stamp + 300))  # within leeway
    error = await refused(auth, f"Bearer {token(clock.now, nbf=stamp + 301)}")

    assert error.reason == "not_yet_valid"


async def test_a_token_without_nbf_passes(auth, clock):
    caller = await verify(auth, token(clock.now, nbf=None))

    assert "nbf" not in caller.claims


# -- endorsements and serviceUrl ------------------------------------------------------------


async def test_a_key_endorsed_for_other_channels_is_refused(auth, clock):
    error = await refused(auth, f"Bearer {token(clock.now, TEAMS)}", channel="webchat")

    assert error.reason == "endorsement"
    assert "webchat" in str(error)
    await verify(auth, token(clock.now, TEAMS), channel="msteams")


async def test_a_key_endorsed_for_no_channel_is_refused(auth, clock):
    error = await refused(auth, f"Bearer {token(clock.now, NOBODY)}")

    assert error.reason == "endorsement"


@pytest.mark.parametrize("channel", ["msteams", "webchat"])
async def test_a_key_without_endorsements_is_accepted_for_any_channel(auth, clock, channel):
    caller = await verify(auth, token(clock.now, PLAIN), channel=channel)

    assert caller.claims["aud"] == APP


@pytest.mark.parametrize(
    "claimed",
    [
        "https://smba.trafficmanager.net/amer/",
        "https://evil.example/emea/",
        "https://smba.trafficmanager.net/emea//",  # only one slash is ignored
        None,
        42,
    ],
)
async def test_a_service_url_other_than_the_activitys_is_refused(auth, clock, claimed):
    error = await refused(auth, f"Bearer {token(clock.now, serviceurl=claimed)}")

    assert error.reason == "service_url"


async def test_the_service_url_claim_is_matched_in_any_case_but_only_once(auth, clock):
    """Bot Framework's tokens spell it ``serviceurl``, its documentation ``serviceUrl``."""
    camel = token(clock.now, serviceurl=None, serviceUrl=SERVICE_URL)
    assert (await verify(auth, camel)).claims["serviceUrl"] == SERVICE_URL
    both = token(clock.now, serviceUrl="https://evil.example/")  # beside serviceurl
    assert (await refused(auth, f"Bearer {both}")).reason == "service_url"


# -- fetching and caching the keys ----------------------------------------------------------


async def test_key_rotation_fetches_the_new_set_once(auth, server, clock):
    await verify(auth, token(clock.now, TEAMS))
    server.signers = [ROTATED]

    caller = await verify(auth, token(clock.now, ROTATED))

    assert caller.claims["aud"] == APP
    assert server.fetches() == (2, 2)
    error = await refused(auth, f"Bearer {token(clock.now, TEAMS)}")  # the old key is gone
    assert error.reason == "unknown_key"
    assert server.fetches() == (2, 2)  # and asking again so soon is not allowed


async def test_the_key_set_is_fetched_again_after_24_hours(auth, server, clock):
    await verify(auth, token(clock.now))
    clock.advance(hours=23, minutes=59)
    await verify(auth, token(clock.now))
    assert server.fetches() == (1, 1)
    server.signers = [PLAIN]  # the TEAMS key was withdrawn

    clock.advance(minutes=1)
    error = await refused(auth, f"Bearer {token(clock.now, TEAMS)}")

    assert error.reason == "unknown_key"
    assert server.fetches() == (2, 2)


async def test_concurrent_verifies_with_an_empty_cache_make_one_fetch(auth, server, clock):
    tokens = [token(clock.now, TEAMS if n % 2 else PLAIN) for n in range(10)]

    callers = await asyncio.gather(*(verify(auth, t) for t in tokens))

    assert len(callers) == 10
    assert server.fetches() == (1, 1)


async def test_concurrent_verifies_share_one_failed_fetch(auth, server, clock):
    server.faults[M] = Fault.http(500)

    results = await asyncio.gather(
        *(verify(auth, token(clock.now)) for _ in range(10)), return_exceptions=True
    )

    assert all(isinstance(r, KeysUnavailable) for r in results)
    assert server.fetches() == (1, 0)


BROKEN = {  # how the key server fails -> what it was asked (metadata, keys)
    "metadata 500": (lambda s: s.faults.update({M: Fault.http(500)}), (1, 0)),
    # aiohttp sends a GET once more when the server drops the connection
    "metadata connection dropped": (lambda s: s.faults.update({M: Fault.drop()}), (2, 0)),
    "metadata not JSON": (lambda s: s.bodies.update({M: "<html>hello</html>"}), (1, 0)),
    "metadata not an object": (lambda s: s.bodies.update({M: "[1, 2]"}), (1, 0)),
    "metadata without jwks_uri": (lambda s: s.bodies.update({M: "{}"}), (1, 0)),
    # refused before any request: nothing is asked of keys.example
    "jwks_uri over plain http": (lambda s: setattr(s, "jwks_uri", "http://keys.example/k"), (1, 0)),
    "keys 503": (lambda s: s.faults.update({K: Fault.http(503)}), (1, 1)),
    "keys not JSON": (lambda s: s.bodies.update({K: "{"}), (1, 1)),
    "no RSA key": (
        lambda s: s.bodies.update({K: json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]})}),
        (1, 1),
    ),
    "a broken RSA key": (
        lambda s: s.bodies.update(
            {K: json.dumps({"keys": [{"kty": "RSA", "kid": "k", "n": "!!", "e": "AQAB"}]})}
        ),
        (1, 1),
    ),
    "no keys at all": (lambda s: s.bodies.update({K: json.dumps({"keys": []})}), (1, 1)),
}


@pytest.mark.parametrize(("breakage", "asked"), BROKEN.values(), ids=BROKEN.keys())
async def test_keys_that_cannot_be_fetched_with_no_cache_are_unavailable(
    auth, server, clock, breakage, asked
):
    breakage(server)

    with capture_logs() as logged, pytest.raises(KeysUnavailable):
        await verify(auth, token(clock.now))

    assert [e["event"] for e in logged] == ["teams.keys_unavailable"]
    assert logged[0]["log_level"] == "warning"
    assert server.fetches() == asked


async def test_a_fetch_cancelled_midway_leaves_the_next_request_to_fetch(auth, server, clock):
    server.faults[M] = Fault.hang()
    first = asyncio.create_task(verify(auth, token(clock.now)))
    await server.arrived.wait()  # the first request is waiting for the metadata
    waiting = asyncio.create_task(verify(auth, token(clock.now)))
    first.cancel()  # Teams hung up
    with pytest.raises(asyncio.CancelledError):
        await first
    del server.faults[M]

    caller = await waiting

    assert caller.claims["aud"] == APP
    assert server.fetches() == (2, 1)


async def test_a_stopped_key_server_with_no_cache_is_unavailable(session, clock):
    async with KeyServer([TEAMS]) as gone:
        url = gone.metadata_url
    auth = BotAuth(app_id=APP, session=session, clock=clock, metadata_url=url)

    with pytest.raises(KeysUnavailable) as caught:
        await verify(auth, token(clock.now))

    assert "could not be reached" in str(caught.value)


async def test_a_hanging_key_server_times_out(server, session, clock):
    server.faults[M] = Fault.hang()
    auth = BotAuth(
        app_id=APP, session=session, clock=clock, metadata_url=server.metadata_url, timeout=0.2
    )

    with pytest.raises(KeysUnavailable):
        await verify(auth, token(clock.now))


async def test_a_failed_refresh_keeps_the_cached_keys_and_warns(auth, server, clock):
    await verify(auth, token(clock.now))
    server.faults[M] = Fault.http(500)
    clock.advance(hours=25)
    fresh = token(clock.now)

    with capture_logs() as logged:
        caller = await verify(auth, fresh)

    assert caller.claims["aud"] == APP
    [warning] = logged
    assert warning["event"] == "teams.keys_refresh_failed"
    assert warning["log_level"] == "warning"
    assert "500" in warning["error"]
    assert fresh not in repr(logged)
    assert server.fetches() == (2, 1)
    clock.advance(minutes=4)
    await verify(auth, token(clock.now))  # no new attempt within 5 minutes
    assert server.fetches() == (2, 1)
    del server.faults[M]
    clock.advance(minutes=1)
    await verify(auth, token(clock.now))
    assert server.fetches() == (3, 2)


# -- construction ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://login.botframework.com/v1/.well-known/openidconfiguration",
        "http://10.0.0.1/openid",
        "ftp://127.0.0.1/openid",
        "https:///no-host",
        "login.botframework.com/v1/.well-known/openidconfiguration",
    ],
)
async def test_a_metadata_url_that_is_not_https_is_refused(session, clock, url):
    with pytest.raises(ValueError, match="https://"):
        BotAuth(app_id=APP, session=session, clock=clock, metadata_url=url)


@pytest.mark.parametrize(
    "url",
    [
        "https://login.botframework.com/v1/.well-known/openidconfiguration",
        "http://127.0.0.1:8080/openid",
        "http://localhost/openid",
        "http://[::1]:9000/openid",
    ],
)
async def test_https_and_loopback_metadata_urls_are_accepted(session, clock, url):
    auth = BotAuth(app_id=APP, session=session, clock=clock, metadata_url=url)

    assert isinstance(auth, BotAuth)
