"""HTTP surface: POST /notifications, GET /healthz, /readyz, /metrics (and POST
/slack/interactions, in :mod:`bridge.ingest.slack_actions`).

The webhook handler authenticates, bounds, parses and validates the body, stores the event
durably and only then answers 200. It never waits on Slack or Teams. Anything a client can
send gets a 4xx with a JSON ``{"error": ...}`` naming the problem; a store failure gets 503
with ``Retry-After`` so the provider tries again.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Protocol, get_args

import structlog
from aiohttp import web

from bridge import logs
from bridge.core import events
from bridge.ingest import preview, slack_actions
from bridge.metrics import CONTENT_TYPE, Metrics
from bridge.store import AddStatus, Store, StoreError

log = structlog.get_logger("bridge.ingest.http")

MAX_BODY = 64 * 1024
RETRY_AFTER_SECONDS = "5"
# The two success answers, encoded once (every webhook gets one of them).
_ANSWERS: Final = {
    status: json.dumps({"status": status}).encode() for status in get_args(AddStatus)
}

Check = Callable[[], Awaitable[str]]  # returns a short OK detail, raises with the problem


class Refolds(Protocol):
    """Told which story got a new event (the dispatcher; ingest never waits for it)."""

    def notify(self, story_id: str) -> None: ...


@dataclass
class Services:
    """What the HTTP handlers need; built and owned by :mod:`bridge.service.app`."""

    store: Store
    dispatcher: Refolds
    metrics: Metrics
    clock: Callable[[], datetime]
    token: bytes | None
    readiness: dict[str, Check] = field(default_factory=dict)


SERVICES = web.AppKey("services", Services)


def _error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers or None)


def _presented_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() in ("bearer", "token") and value.strip():
        return value.strip()
    return request.query.get("token")


def _authorised(request: web.Request, expected: bytes | None) -> bool:
    if expected is None:
        return True
    presented = _presented_token(request)
    if presented is None:
        return False
    return hmac.compare_digest(presented.encode("utf-8", "surrogateescape"), expected)


async def notifications(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    metrics = services.metrics
    started = time.perf_counter()
    try:
        return await _notification(request, services)
    finally:
        metrics.ingest_latency.observe(time.perf_counter() - started)


async def _notification(request: web.Request, services: Services) -> web.Response:
    metrics = services.metrics
    if not _authorised(request, services.token):
        metrics.events.labels("invalid", "unauthorized").inc()
        return _error(
            401,
            "missing or wrong token: send `Authorization: Bearer TOKEN` (or ?token=TOKEN) "
            "with the value of CALLBRIDGE_WEBHOOK_TOKEN",
            **{"WWW-Authenticate": 'Bearer realm="callbridge"'},
        )
    if request.content_length is not None and request.content_length > MAX_BODY:
        metrics.events.labels("invalid", "too_large").inc()
        return _too_large()
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        metrics.events.labels("invalid", "too_large").inc()
        return _too_large()
    try:
        event = events.decode(body)
    except events.NotJSON as err:
        metrics.events.labels("invalid", "not_json").inc()
        return _error(400, f"{err}: send the provider's notification as a JSON object")
    except events.InvalidEvent as err:
        metrics.events.labels("invalid", "invalid").inc()
        return _error(422, str(err))
    try:
        added = await services.store.add_event(event, services.clock())
    except StoreError as err:
        metrics.store_errors.labels("add_event").inc()
        metrics.events.labels(event.status, "store_error").inc()
        log.error("ingest.store_failed", call_id=event.call_id, error=str(err))
        return _error(
            503,
            "the event could not be stored; try again later",
            **{"Retry-After": RETRY_AFTER_SECONDS},
        )
    metrics.events.labels(event.status, added.status).inc()
    if added.status == "accepted":
        services.dispatcher.notify(added.story_id)
    if logs.debug_enabled():
        log.debug(
            "ingest.event",
            call_id=event.call_id,
            status=event.status,
            result=added.status,
            story=added.story_id,
        )
    return web.Response(body=_ANSWERS[added.status], content_type="application/json")


def _too_large() -> web.Response:
    return _error(413, f"body is larger than {MAX_BODY // 1024} KiB")


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive"})


async def readyz(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    checks: dict[str, dict[str, str]] = {}
    ready = True
    for name, check in services.readiness.items():
        try:
            checks[name] = {"status": "ok", "detail": await check()}
        except Exception as err:  # a readiness probe reports, it never crashes
            ready = False
            checks[name] = {"status": "failing", "detail": str(err) or type(err).__name__}
    return web.json_response(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status=200 if ready else 503,
    )


async def metrics_view(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    return web.Response(body=services.metrics.render(), headers={"Content-Type": CONTENT_TYPE})


@web.middleware
async def json_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every error a client can cause becomes a JSON 4xx; anything else a logged 500."""
    try:
        return await handler(request)
    except web.HTTPMethodNotAllowed as err:
        allowed = ", ".join(sorted(err.allowed_methods))
        return _error(
            405,
            f"method {request.method} is not allowed on {request.path}; use {allowed}",
            Allow=allowed,
        )
    except web.HTTPRequestEntityTooLarge:
        return _too_large()
    except web.HTTPException as err:
        if err.status < 400:
            raise
        return _error(err.status, f"{err.reason}: {request.method} {request.path}")
    except Exception:
        log.exception("http.unhandled", method=request.method, path=request.path)
        return _error(500, "internal error; see the service log")


def make_app(
    services: Services,
    interactions: slack_actions.Interactions | None = None,
    preview_: preview.Preview | None = None,
) -> web.Application:
    """``interactions``: Slack's button clicks are accepted (None: that endpoint answers 404).
    ``preview_``: the dry-run preview page is served (None: ``/preview`` answers 404)."""
    app = web.Application(client_max_size=MAX_BODY, middlewares=[json_errors])
    app[SERVICES] = services
    if interactions is not None:
        app[slack_actions.INTERACTIONS] = interactions
    app.router.add_post("/notifications", notifications)
    app.router.add_post(slack_actions.PATH, slack_actions.interactions)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_view)
    if preview_ is not None:
        preview.add_routes(app, preview_)
    return app
