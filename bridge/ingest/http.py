"""HTTP surface: POST /notifications, GET /healthz, /readyz, /delivery, /metrics (and POST
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
from typing import Any, Final, Protocol, get_args

import structlog
from aiohttp import web

from bridge import logs
from bridge.core import events
from bridge.ingest import preview, slack_actions, teams_actions
from bridge.ingest.body import (
    BODY_TIMEOUT,
    DEFAULT_BODY_TIMEOUT,
    ClientGone,
    SlowBody,
    TooLarge,
    read_body,
)
from bridge.ingest.rejections import RejectionLog
from bridge.metrics import CONTENT_TYPE, Metrics
from bridge.store import MAX_EVENTS_PER_STORY, AddStatus, Store, StoreError
from bridge.store.health import StoreHealth

log = structlog.get_logger("bridge.ingest.http")

MAX_BODY = 64 * 1024
RETRY_AFTER_SECONDS = "5"
# The two success answers, encoded once (every webhook gets one of them).
_ANSWERS: Final = {
    status: json.dumps({"status": status}).encode()
    for status in get_args(AddStatus)
    if status != "refused"
}

Check = Callable[[], Awaitable[str]]  # returns a short OK detail, raises with the problem
# Whether delivery works: (healthy, report); the report's "status" is one word, the rest
# (chat platforms, reasons) is shown only to a caller with the webhook token.
DeliveryReport = Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]


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
    rejections: RejectionLog = field(
        default_factory=lambda: RejectionLog("ingest.notification_refused")
    )
    delivery: DeliveryReport | None = None
    store_health: StoreHealth | None = None  # told how each write went (read by /readyz)


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
        # What was presented is never logged: only whether there was anything at all.
        presented = _presented_token(request) is not None
        services.rejections.refused(
            "unauthorized",
            request.remote,
            detail="wrong token" if presented else "no token",
        )
        return _error(
            401,
            "missing or wrong token: send `Authorization: Bearer TOKEN` (or ?token=TOKEN) "
            "with the value of CALLBRIDGE_WEBHOOK_TOKEN",
            **{"WWW-Authenticate": 'Bearer realm="callbridge"'},
        )
    try:
        body = await read_body(request, MAX_BODY)
    except (TooLarge, web.HTTPRequestEntityTooLarge):
        metrics.events.labels("invalid", "too_large").inc()
        services.rejections.refused(
            "too_large", request.remote, detail=f"body over {MAX_BODY // 1024} KiB"
        )
        return _too_large()
    except SlowBody as err:
        metrics.events.labels("invalid", "timeout").inc()
        services.rejections.refused("slow_body", request.remote, detail=str(err))
        return _closing(_error(408, f"{err}; send the whole body at once"))
    except ClientGone as err:
        metrics.events.labels("invalid", "client_gone").inc()
        log.debug("ingest.client_gone", client=request.remote, error=str(err))
        return _closing(_error(400, "the connection was closed before the body was complete"))
    try:
        event = events.decode(body)
    except events.NotJSON as err:
        metrics.events.labels("invalid", "not_json").inc()
        services.rejections.refused("not_json", request.remote, detail=str(err))
        return _error(400, f"{err}: send the provider's notification as a JSON object")
    except events.InvalidEvent as err:
        metrics.events.labels("invalid", "invalid").inc()
        services.rejections.refused("invalid", request.remote, detail=str(err)[:200])
        return _error(422, str(err))
    except Exception as err:  # a body the checks above missed: still the client's body
        metrics.events.labels("invalid", "unreadable").inc()
        services.rejections.refused("unreadable", request.remote, error=repr(err)[:200])
        return _error(422, "the notification could not be read")
    try:
        added = await services.store.add_event(event, services.clock())
    except StoreError as err:
        if services.store_health is not None:
            services.store_health.failed(err)
        metrics.store_errors.labels("add_event").inc()
        metrics.events.labels(event.status, "store_error").inc()
        log.error("ingest.store_failed", call_id=event.call_id, error=str(err))
        return _error(
            503,
            "the event could not be stored; try again later",
            **{"Retry-After": RETRY_AFTER_SECONDS},
        )
    if services.store_health is not None and added.status == "accepted":  # it wrote
        services.store_health.succeeded()
    metrics.events.labels(event.status, added.status).inc()
    if added.status == "refused":
        metrics.events_refused.labels("call_events_cap").inc()
        services.rejections.refused(
            "call_events_cap", request.remote, call_id=event.call_id, story=added.story_id
        )
        return _error(
            422,
            f"call {event.call_id[:80]!r} already has {MAX_EVENTS_PER_STORY} events (with the "
            "calls merged into it): no more are stored for it",
        )
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


def _closing(response: web.Response) -> web.Response:
    """The rest of the request is not read: the connection cannot be reused."""
    response.force_close()
    return response


def _too_large() -> web.Response:
    return _error(413, f"body is larger than {MAX_BODY // 1024} KiB")


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive"})


async def readyz(request: web.Request) -> web.Response:
    """Can this instance accept and store webhooks (store writable, rules loaded)? What a
    load balancer needs. The chat platforms do not count: an outage of Slack must not stop
    ingest. Without the webhook token the body is one word; with it, the details."""
    services = request.app[SERVICES]
    checks: dict[str, dict[str, str]] = {}
    ready = True
    for name, check in services.readiness.items():
        try:
            checks[name] = {"status": "ok", "detail": await check()}
        except Exception as err:  # a readiness probe reports, it never crashes
            ready = False
            checks[name] = {"status": "failing", "detail": str(err) or type(err).__name__}
    status = 200 if ready else 503
    body: dict[str, Any] = {"status": "ready" if ready else "not ready"}
    if not _authorised(request, services.token):
        return web.json_response(body, status=status)
    body["checks"] = checks
    if services.delivery is not None:
        _healthy, report = await services.delivery()
        body["delivery"] = report["status"]
        body["chat"] = report.get("chat", {})
    return web.json_response(body, status=status)


async def delivery_view(request: web.Request) -> web.Response:
    """Do the chat messages go out (chat platforms working, store writable)? What a monitor
    alerts on; 503 with the reasons (to a caller with the webhook token) when they do not."""
    services = request.app[SERVICES]
    if services.delivery is None:
        return _error(404, "delivery status is not available")
    healthy, report = await services.delivery()
    status = 200 if healthy else 503
    if not _authorised(request, services.token):
        return web.json_response({"status": report["status"]}, status=status)
    return web.json_response(report, status=status)


async def metrics_view(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    return web.Response(body=services.metrics.render(), headers={"Content-Type": CONTENT_TYPE})


IN_PROGRESS = web.AppKey("in_progress", set[web.RequestHandler])


@web.middleware
async def track_requests(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Keep the app's :data:`IN_PROGRESS` set: the connections with a request being handled
    (the connection cap closes an idle one before any of those)."""
    in_progress = request.app[IN_PROGRESS]
    connection = request.protocol
    in_progress.add(connection)
    try:
        return await handler(request)
    finally:
        in_progress.discard(connection)


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
    except (ConnectionResetError, ClientGone) as err:  # the client left: routine
        log.debug("http.client_gone", method=request.method, path=request.path, error=str(err))
        return _closing(_error(400, "the connection was closed by the client"))
    except Exception:
        log.exception("http.unhandled", method=request.method, path=request.path)
        return _error(500, "internal error; see the service log")


def make_app(
    services: Services,
    interactions: slack_actions.Interactions | None = None,
    preview_: preview.Preview | None = None,
    teams: teams_actions.TeamsActions | None = None,
    *,
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
) -> web.Application:
    """``interactions``: Slack's button clicks are accepted (None: that endpoint answers 404).
    ``preview_``: the dry-run preview page is served (None: ``/preview`` answers 404).
    ``teams``: Teams' activities (its button clicks) are accepted (None: 404).
    ``body_timeout``: seconds a client has to send a request's body once its headers came."""
    app = web.Application(client_max_size=MAX_BODY, middlewares=[track_requests, json_errors])
    app[SERVICES] = services
    app[IN_PROGRESS] = set()
    app[BODY_TIMEOUT] = body_timeout
    if interactions is not None:
        app[slack_actions.INTERACTIONS] = interactions
    if teams is not None:
        app[teams_actions.TEAMS_ACTIONS] = teams
    app.router.add_post("/notifications", notifications)
    app.router.add_post(slack_actions.PATH, slack_actions.interactions)
    app.router.add_post(teams_actions.PATH, teams_actions.messages)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/delivery", delivery_view)
    app.router.add_get("/metrics", metrics_view)
    if preview_ is not None:
        preview.add_routes(app, preview_)
    return app
