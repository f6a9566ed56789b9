"""A stand-in for Bot Framework's side of Teams' requests to a bot: the OpenID metadata and the
key set (JWKS) that sign them, served on 127.0.0.1, the tokens it would sign, and the
activities Teams sends, so tests call ``POST /teams/messages`` as Teams does.

The keys are real RSA keys made here (``cryptography``), the tokens real RS256 JWTs (PyJWT):
the bridge checks them exactly as it checks Microsoft's."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from bridge.ingest.botframework import ISSUER
from tests.support.fake_server import Fault, LocalServer

APP = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"  # the bot's app id (a token's audience)
SERVICE_URL = "https://smba.trafficmanager.net/emea/"
METADATA = ".well-known/openidconfiguration"
M, K = "/" + METADATA, "/keys"  # the key server's two paths
CHANNEL_ID: Final = "msteams"
INVOKE: Final = "adaptiveCard/action"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass(frozen=True)
class Signer:
    """An RSA key pair as Microsoft publishes it: kid, and endorsements if any."""

    kid: str
    private: rsa.RSAPrivateKey
    endorsements: tuple[str, ...] | None = None

    def jwk(self) -> dict[str, Any]:
        jwk = RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        jwk |= {"kid": self.kid, "use": "sig"}
        if self.endorsements is not None:
            jwk["endorsements"] = list(self.endorsements)
        return jwk

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class KeyServer(LocalServer):
    """Microsoft's OpenID metadata and JWKS: counts requests per path; its key set, bodies and
    faults can be changed at any time."""

    def __init__(self, signers: list[Signer]) -> None:
        super().__init__()
        self.signers = signers
        self.requests: Counter[str] = Counter()
        self.arrived = asyncio.Event()  # set by every request
        self.faults: dict[str, Fault] = {}  # path -> the fault every request to it meets
        self.bodies: dict[str, str] = {}  # path -> this text instead of the normal answer
        self.jwks_uri: str | None = None  # None: this server's /keys

    @property
    def metadata_url(self) -> str:
        return self.url + METADATA

    def routes(self, app: web.Application) -> None:
        app.router.add_get(M, self.answer)
        app.router.add_get(K, self.answer)

    async def answer(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.requests[path] += 1
        self.arrived.set()
        if (fault := self.faults.get(path)) is not None:
            answer = await self.common_fault(request, fault)
            assert answer is not None
            return answer
        if path in self.bodies:
            return web.Response(text=self.bodies[path], content_type="application/json")
        if path == K:
            return web.json_response({"keys": [s.jwk() for s in self.signers]})
        jwks_uri = self.jwks_uri or self.url + "keys"
        return web.json_response({"issuer": ISSUER, "jwks_uri": jwks_uri})

    def fetches(self) -> tuple[int, int]:
        return self.requests[M], self.requests[K]


def claims_at(now: datetime, **overrides: Any) -> dict[str, Any]:
    """What the Bot Framework puts in a token issued at ``now`` (None drops a claim)."""
    stamp = int(now.timestamp())
    claims = {
        "iss": ISSUER,
        "aud": APP,
        "serviceurl": SERVICE_URL,  # spelled as Bot Framework spells it
        "nbf": stamp - 60,
        "exp": stamp + 3600,
        "iat": stamp - 60,
        **overrides,
    }
    return {k: v for k, v in claims.items() if v is not None}


def token(
    now: datetime,
    signer: Signer,
    *,
    kid: str | None = None,
    key: rsa.RSAPrivateKey | None = None,
    algorithm: str = "RS256",
    **overrides: Any,
) -> str:
    return jwt.encode(
        claims_at(now, **overrides),
        key or signer.private,
        algorithm=algorithm,
        headers={"kid": kid or signer.kid},
    )


def invoke(
    service_url: str,
    verb: str,
    data: Any,
    *,
    user: tuple[str, str] = ("aad-alice", "Alice"),
    activity_id: str = "f:1",
    conversation: str = "19:sales@thread.tacv2",
    reply_to: str | None = None,
) -> dict[str, Any]:
    """The ``invoke`` activity Teams sends when someone presses an ``Action.Execute`` button
    (the fields Teams sends that the bridge reads, and some it does not); ``reply_to``: the
    id of the message holding the card (Teams' ``replyToId``)."""
    aad, name = user
    extra = {} if reply_to is None else {"replyToId": reply_to}
    return {
        **extra,
        "type": "invoke",
        "name": INVOKE,
        "id": activity_id,
        "timestamp": "2026-11-24T12:00:00.000Z",
        "channelId": CHANNEL_ID,
        "serviceUrl": service_url,
        "from": {"id": f"29:{aad}", "name": name, "aadObjectId": aad},
        "conversation": {"isGroup": True, "conversationType": "channel", "id": conversation},
        "recipient": {"id": f"28:{APP}", "name": "callbridge"},
        "channelData": {"tenant": {"id": "11111111-2222-3333-4444-555555555555"}},
        "value": {
            "action": {"type": "Action.Execute", "verb": verb, "data": data},
            "trigger": "manual",
        },
    }
