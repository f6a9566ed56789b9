"""Lifecycle: every long-lived resource and background task is created, owned and awaited here.

Start order (aiohttp ``cleanup_ctx``, reversed on shutdown): store -> chat session -> Slack
answers -> dispatcher -> watchdog. On SIGTERM the listener stops accepting, in-flight
requests finish (bounded by ``CALLBRIDGE_SHUTDOWN_TIMEOUT``), the dispatcher drains its
queue, the answers to button clicks under way are sent (bounded too), and the store flushes
and closes. SIGHUP reloads the rules file (a bad file keeps the running rules).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import structlog
from aiohttp import web

from bridge import __version__
from bridge.deliver.delivery import Delivery, DeliveryOptions, Platform
from bridge.deliver.dispatcher import Dispatcher, DispatchOptions
from bridge.deliver.pacing import Action, Pacer, Rate
from bridge.ingest.http import IN_PROGRESS, Services, make_app
from bridge.ingest.preview import Preview
from bridge.ingest.rejections import RejectionLog
from bridge.ingest.slack_actions import Interactions, verifier
from bridge.ingest.slack_answers import SLACK_RESPONSE_BASE, Answers
from bridge.ingest.teams_actions import TeamsActions
from bridge.metrics import Metrics
from bridge.notify import NotifyError
from bridge.notify.preview import PreviewBoard
from bridge.rules.targets import channels as destination_channels
from bridge.service.chat import (
    PlatformFactory,
    chat_platforms,
    chat_session,
    default_pacing,
    teams_card,
)
from bridge.service.listener import LimitedSite, connection_limit
from bridge.service.rulestate import RulesHolder
from bridge.service.runtime import describe as describe_loop
from bridge.service.sdnotify import SdNotifier
from bridge.service.settings import Settings
from bridge.service.settings_values import sqlite_path
from bridge.store import Store, StoreError
from bridge.store.health import StoreBackoff, StoreHealth
from bridge.store.sqlite import SqliteStore

log = structlog.get_logger("bridge.service.app")

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def open_store(url: str) -> Store:
    if url.startswith("sqlite:"):
        return SqliteStore(sqlite_path(url))
    # asyncpg is the `postgres` extra: imported only for a PostgreSQL store (settings.load
    # has already said which extra to install when it is missing).
    from bridge.store.postgres import PostgresStore  # noqa: PLC0415

    return PostgresStore(url)


class Bridge:
    """The running service's parts, wired together (no I/O until the app starts)."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock = utcnow,
        store: Store | None = None,
        platforms: PlatformFactory | None = None,
        notifier: SdNotifier | None = None,
        dispatch: DispatchOptions | None = None,
        delivery: DeliveryOptions | None = None,
        pacing: Mapping[str, Mapping[Action, tuple[tuple[str, Rate], ...]]] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        slack_response_base: str = SLACK_RESPONSE_BASE,
    ) -> None:
        """``slack_response_base``: where answers to Slack clicks may go (tests: a fake)."""
        self.settings = settings
        self.clock = clock
        self.metrics = Metrics()
        self.store = store or open_store(settings.store)
        # Whether events can be stored now (a full disk fails writes while reads work):
        # told by ingest, dispatch and delivery, read by /readyz.
        self.store_health = StoreHealth()
        self.rules = RulesHolder(settings.rules, self.metrics, retention=settings.retention)
        self.notifier = notifier or SdNotifier.from_env(os.environ)
        # The local preview (GET /preview): only while nothing is really posted.
        dry_run = not (settings.slack_enabled or settings.teams_enabled)
        self.preview = PreviewBoard(clock=self._local_time) if dry_run else None
        self._platform_factory = platforms or chat_platforms(settings, preview=self.preview)
        self._delivery_options = delivery or DeliveryOptions()
        self._pacing = dict(pacing) if pacing is not None else default_pacing(settings)
        self._monotonic = monotonic
        self.platforms: Mapping[str, Platform] = {}
        self.chat_status: dict[str, str] = {}
        self.delivery: Delivery | None = None
        self.leading = False
        self._standby_poll = 1.0  # seconds between a standby's attempts to lead
        self.dispatcher = Dispatcher(
            self.store,
            self.rules,
            self.metrics,
            clock,
            dispatch
            or DispatchOptions(
                stale_after=settings.stale_after,
                retention=settings.retention,
                # Another instance may have stored the event: the leader polls more often.
                poll_interval=5.0 if settings.store.startswith("sqlite:") else 1.0,
            ),
            on_planned=self._wake_delivery,
            store_health=self.store_health,
        )
        token = settings.webhook_token
        self.services = Services(
            store=self.store,
            dispatcher=self.dispatcher,
            metrics=self.metrics,
            clock=clock,
            token=token.reveal().encode() if token else None,
            # /readyz: can webhooks be accepted and stored? The chat platforms are not part
            # of it (a Slack outage must not take instances out of a load balancer): they
            # are in /delivery, for monitoring.
            readiness={"store": self._store_ready, "rules": self.rules.ready},
            delivery=self._delivery_report,
            store_health=self.store_health,
        )
        self.answers = Answers(
            self.store, lambda: self.rules.timezone, allowed_base=slack_response_base
        )
        self.teams_actions = self._teams_actions()
        # Fetching Bot Framework's signing keys at start (owned here, awaited at shutdown).
        self.teams_keys: asyncio.Task[bool] | None = None
        self.app = make_app(
            self.services,
            self._interactions(),
            None if self.preview is None else Preview(self.preview, self._destinations),
            self.teams_actions,
            body_timeout=settings.client_timeout.total_seconds(),
        )
        self.app.cleanup_ctx.extend(
            [
                self._store_ctx,
                self._chat_ctx,
                self._answers_ctx,
                self._leader_ctx,
                self._watchdog_ctx,
            ]
        )

    def _interactions(self) -> Interactions | None:
        """Slack's button clicks, accepted only with the app's signing secret to verify them."""
        secret = self.settings.slack_signing_secret
        if secret is None:
            return None
        return Interactions(
            verifier=verifier(secret.reveal(), self.clock),
            store=self.store,
            notify=self.dispatcher.notify,
            clock=self.clock,
            answers=self.answers,
            rejections=RejectionLog("slack.interaction_refused"),
            counted=lambda action, result: self.metrics.clicks.labels(action, result).inc(),
        )

    def _teams_actions(self) -> TeamsActions | None:
        """Teams' button clicks, accepted only from the Bot Framework for this bot's app id
        (the token's audience); the key fetcher starts with the app (``_answers_ctx``)."""
        if self.settings.teams_app_id is None:
            return None
        return TeamsActions(
            store=self.store,
            notify=self.dispatcher.notify,
            clock=self.clock,
            timezone=lambda: self.rules.timezone,
            rejections=RejectionLog("teams.activity_refused"),
            counted=lambda action, result: self.metrics.teams_clicks.labels(action, result).inc(),
            render=lambda content, root: teams_card(self.platforms, content, root),
        )

    def _local_time(self) -> str:
        """Now in the rules' time zone, as the preview stamps a message."""
        return datetime.now(self.rules.timezone).strftime("%H:%M:%S")

    def _destinations(self) -> list[tuple[str, str, str]]:
        """(platform, channel, name) of each destination in the rules, for the preview."""
        rules = self.rules.current
        if rules is None:
            return []
        return [
            (platform, channel, name)
            for name, destination in rules.destinations.items()
            for platform, channel in destination_channels(destination)
        ]

    def _wake_delivery(self) -> None:
        if self.delivery is not None:
            self.delivery.wake()

    async def _store_ready(self) -> str:
        try:
            await self.store.ping()
        except StoreError:
            self.store_health.pinged(ok=False)
            raise
        self.store_health.pinged(ok=True)
        problem = self.store_health.problem()
        if problem is not None:
            raise RuntimeError(f"writes are failing: {problem}")
        role = "leader: dispatching and delivering" if self.leading else "standby: ingesting"
        return f"{self.settings.store.split('://', 1)[0]}; {role}"

    async def _verify(self, name: str, platform: Platform) -> None:
        try:
            self.chat_status[name] = await platform.notifier.verify()
        except NotifyError as err:
            self.chat_status.pop(name, None)
            self.metrics.chat_up.labels(name).set(0)
            raise RuntimeError(f"{name}: {err}") from None
        self.metrics.chat_up.labels(name).set(1)

    async def _chat_health(self) -> dict[str, dict[str, str]]:
        """Each chat platform: ok (what its credentials verified as) or failing (why)."""
        problems = self.delivery.problems() if self.delivery is not None else {}
        report: dict[str, dict[str, str]] = {}
        for name, platform in sorted(self.platforms.items()):
            problem = problems.get(name)
            if problem is None and name not in self.chat_status:
                try:
                    await self._verify(name, platform)
                except RuntimeError as err:
                    problem = str(err).removeprefix(f"{name}: ")
            if problem is None:
                report[name] = {"status": "ok", "detail": self.chat_status[name]}
            else:
                report[name] = {"status": "failing", "detail": f"{name}: {problem}"}
        return report

    async def _delivery_report(self) -> tuple[bool, dict[str, Any]]:
        """GET /delivery: healthy while every chat platform works and the store can be
        written; a standby is healthy (the leader delivers), its chat platforms are shown."""
        chat = await self._chat_health()
        reasons = [c["detail"] for c in chat.values() if c["status"] != "ok"]
        try:
            await self._store_ready()
        except Exception as err:  # a probe reports, it never crashes
            reasons.append(f"store: {err or type(err).__name__}")
        if not self.leading:
            return True, {"status": "standby", "chat": chat, "reasons": reasons}
        healthy = not reasons
        status = "delivering" if healthy else "failing"
        return healthy, {"status": status, "chat": chat, "reasons": reasons}

    async def _store_ctx(self, app: web.Application) -> AsyncIterator[None]:
        await self.store.open()
        yield
        await self.store.close()

    async def _chat_ctx(self, app: web.Application) -> AsyncIterator[None]:
        async with chat_session(self.settings) as session:
            self.platforms = self._platform_factory(session, self.metrics)
            for name, platform in self.platforms.items():
                try:
                    await self._verify(name, platform)
                except RuntimeError as err:  # reported by /delivery; delivery keeps retrying
                    log.error("chat.verify_failed", platform=name, error=str(err))
                else:
                    log.info("chat.verified", platform=name, detail=self.chat_status[name])
            yield

    async def _answers_ctx(self, app: web.Application) -> AsyncIterator[None]:
        """The answers to Slack clicks go out on their own session (through the proxy), as
        the requests for the keys that sign Teams' clicks do."""
        async with chat_session(self.settings) as session:
            self.answers.start(session)
            teams, app_id = self.teams_actions, self.settings.teams_app_id
            if teams is not None and app_id is not None:
                # PyJWT comes with the `teams` extra: imported only when Teams is configured.
                from bridge.ingest.botframework import BotAuth  # noqa: PLC0415

                teams.auth = BotAuth(
                    app_id=app_id,
                    session=session,
                    clock=self.clock,
                    metadata_url=self.settings.teams_openid_metadata,
                    issuer=self.settings.teams_token_issuer,
                    timeout=self.settings.client_timeout.total_seconds(),
                )
                self.teams_keys = asyncio.create_task(teams.auth.warm(), name="teams-keys")
            yield
            if self.teams_keys is not None:
                self.teams_keys.cancel()
                await asyncio.gather(self.teams_keys, return_exceptions=True)
                self.teams_keys = None
            if teams is not None:
                teams.auth = None
            await self.answers.close(self.settings.shutdown_timeout.total_seconds())

    async def _leader_ctx(self, app: web.Application) -> AsyncIterator[None]:
        """Dispatch and delivery run on one instance at a time: the store's leader.

        With SQLite this instance always leads. With PostgreSQL every instance ingests, and
        the one holding the leadership lock folds, plans and posts; when it dies another
        takes over within seconds (see bridge/store/leader.py) and resumes from the store.
        """
        if await self.store.acquire_leadership():
            await self._lead()
        task = asyncio.create_task(self._leadership_loop(), name="leadership")
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await self._step_down()
        await self.store.release_leadership()

    async def _leadership_loop(self) -> None:
        backoff = StoreBackoff("leader")  # logs the failing state once per interval
        while True:
            if self.leading:
                await self.store.leadership_lost()
                log.warning("leader.lost", hint="another instance takes over")
                await self._step_down()
            await asyncio.sleep(max(self._standby_poll, backoff.wait()))
            try:
                if await self.store.acquire_leadership():
                    await self._lead()
            except StoreError as err:
                backoff.failed(err)
            else:
                backoff.succeeded(wrote=False)

    async def _lead(self) -> None:
        self.delivery = Delivery(
            self.store,
            self.platforms,
            Pacer(self._pacing, self._monotonic),
            self.metrics,
            self.clock,
            self._delivery_options,
            store_backoff=StoreBackoff("delivery", self.store_health),
        )
        await self.delivery.start()
        await self.dispatcher.start()
        self.leading = True
        resumed = await self.dispatcher.resume()
        log.info("leader.acquired", resumed_stories=resumed)

    async def _step_down(self) -> None:
        if not self.leading:
            return
        self.leading = False
        timeout = self.settings.shutdown_timeout.total_seconds()
        await self.dispatcher.stop(timeout)
        if self.delivery is not None:
            await self.delivery.stop(timeout)

    async def _watchdog_ctx(self, app: web.Application) -> AsyncIterator[None]:
        interval = self.notifier.watchdog_interval()
        task: asyncio.Task[None] | None = None
        if interval:
            task = asyncio.create_task(self._watchdog(interval), name="sd-watchdog")
        yield
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _watchdog(self, interval: float) -> None:
        """Ping systemd only while the store answers: a wedged store should get us restarted."""
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                await asyncio.wait_for(self.store.ping(), timeout=interval / 2)
            except (StoreError, TimeoutError) as err:
                log.warning("watchdog.store_unhealthy", error=str(err) or "ping timed out")
            else:
                self.notifier.watchdog()
            await asyncio.sleep(max(interval - (loop.time() - started), 0))

    async def reload_rules(self) -> bool:
        self.notifier.reloading()
        try:
            return await self.rules.reload()
        finally:  # systemd waits for READY=1 after RELOADING=1, whatever happened
            self.notifier.ready(self._status())

    def _status(self) -> str:
        return f"listening on {self.settings.listen}; rules: {self.rules.summary()}"


async def serve(settings: Settings, *, ready: Callable[[int], None] | None = None) -> int:
    """Run until SIGTERM/SIGINT; returns the process exit code."""
    bridge = Bridge(settings)
    if not await bridge.rules.reload():
        log.error("serve.rules_invalid", rules=str(settings.rules), hint="fix it, then start")
        return 1
    runner = web.AppRunner(
        bridge.app,
        handle_signals=False,
        access_log=None,
        shutdown_timeout=settings.shutdown_timeout.total_seconds(),
        # Armed when a connection opens and after each answer: a client that has not sent a
        # whole request's headers by then is disconnected (the body has its own timeout).
        keepalive_timeout=settings.client_timeout.total_seconds(),
        # After an answer to a request whose body was not read (408, 413), how long the rest
        # is read and dropped before closing (so that the client sees the answer).
        lingering_time=min(10.0, settings.client_timeout.total_seconds()),
    )
    try:
        await runner.setup()
    except StoreError as err:
        log.error("serve.store_unavailable", error=str(err))
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    reloads: set[asyncio.Task[Any]] = set()

    def on_hup() -> None:
        task = loop.create_task(bridge.reload_rules(), name="rules-reload")
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, on_hup)
    try:
        site = LimitedSite(
            runner,
            settings.listen.host,
            settings.listen.port,
            max_connections=connection_limit(settings.max_connections),
            in_progress=bridge.app[IN_PROGRESS],
        )
        try:
            await site.start()
        except OSError as err:
            log.error("serve.listen_failed", listen=str(settings.listen), error=err.strerror)
            return 1
        port = _bound_port(runner, settings.listen.port)
        log.info(
            "serve.listening",
            version=__version__,
            host=settings.listen.host,
            port=port,
            store=settings.store.split("://", 1)[0],
            rules=str(settings.rules),
            chat=sorted(bridge.chat_status.values()),
            event_loop=describe_loop(loop),
            max_connections=site.max_connections,
        )
        for warning in settings.warnings:
            log.warning("settings.warning", message=warning)
        if ready is not None:
            ready(port)
        bridge.notifier.ready(bridge._status())
        await stop.wait()
        log.info("serve.stopping", reason="signal")
        bridge.notifier.stopping()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        await asyncio.gather(*reloads, return_exceptions=True)
        await runner.cleanup()
    log.info("serve.stopped")
    return 0


def _bound_port(runner: web.AppRunner, fallback: int) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return fallback
