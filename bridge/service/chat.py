"""The chat platforms a bridge delivers to, built from the settings: Slack and Teams clients
where credentials are configured, a dry-run platform (logged, and drawn on the local preview)
for every other; their HTTP session and their pacing."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial

import aiohttp

from bridge.core.plan import Content, MissedContent
from bridge.deliver.delivery import Platform, Render, render_message
from bridge.deliver.pacing import SLACK, TEAMS, Action, Rate
from bridge.metrics import Metrics
from bridge.notify import decode_ref
from bridge.notify.dryrun import DryRunNotifier
from bridge.notify.preview import PreviewBoard
from bridge.notify.slack import SlackNotifier
from bridge.notify.teams import TeamsNotifier
from bridge.notify.teams_auth import MsalTokenProvider
from bridge.render.message import Json, OutgoingMessage
from bridge.render.slack import render as slack_render
from bridge.render.teams import render as teams_render
from bridge.render.text import render as text_render
from bridge.service.settings import Settings


def default_pacing(settings: Settings) -> dict[str, Mapping[Action, tuple[tuple[str, Rate], ...]]]:
    """Pace only the platforms that really post (dry-run needs no budget)."""
    limits: dict[str, Mapping[Action, tuple[tuple[str, Rate], ...]]] = {}
    if settings.slack_enabled:
        limits["slack"] = SLACK
    if settings.teams_enabled:
        limits["teams"] = TEAMS
    return limits


PlatformFactory = Callable[[aiohttp.ClientSession, Metrics], Mapping[str, Platform]]


def dry_run_render(rich: Render) -> Render:
    """A dry-run platform's renderer: the text renderer's line as ``text`` (what the dry-run
    log line shows), and the platform's own message (Block Kit blocks, Adaptive Card: what the
    preview draws) built only when the preview first shows it (``OutgoingMessage.rich``)."""

    def render(content: Content, users: Mapping[str, str], link: str | None) -> OutgoingMessage:
        return OutgoingMessage(
            text_render(content, users, link).text, rich=partial(rich, content, users, link)
        )

    return render


def chat_platforms(
    settings: Settings, *, timeout: float = 10.0, preview: PreviewBoard | None = None
) -> PlatformFactory:
    """Slack when a bot token is configured; every platform without credentials is dry-run.

    ``timeout``: seconds a single platform request may take before it counts as failed.
    ``preview``: the dry-run platforms show what they would post there too."""

    def build(session: aiohttp.ClientSession, metrics: Metrics) -> Mapping[str, Platform]:
        def count(name: str) -> Callable[[str], None]:
            return lambda action: metrics.dryrun.labels(name, action).inc()

        # The preview draws the buttons the real platform would show (the demo's too).
        rich: dict[str, Render] = {
            "slack": partial(slack_render, buttons=settings.slack_interactivity),
            "teams": partial(teams_render, buttons=settings.teams_offers_buttons),
        }
        platforms: dict[str, Platform] = {
            name: Platform(
                DryRunNotifier(name, count(name), preview), dry_run_render(rich[name]), finds=False
            )
            for name in ("slack", "teams")
        }
        if settings.slack_bot_token is not None:
            notifier = SlackNotifier(
                token=settings.slack_bot_token,
                session=session,
                base_url=settings.slack_api_url,
                timeout=timeout,
                on_call=lambda method, result: metrics.chat_calls.labels(
                    "slack", method, result
                ).inc(),
            )
            # Case buttons only where Slack's clicks reach the bridge: POST /slack/interactions
            # verifies them with the signing secret (bridge/ingest/slack_actions.py).
            render = partial(slack_render, buttons=settings.slack_interactivity)
            platforms["slack"] = Platform(notifier, render, notifier.link)
        if settings.teams_app_id and settings.teams_app_password and settings.teams_tenant_id:
            tokens = MsalTokenProvider(
                app_id=settings.teams_app_id,
                password=settings.teams_app_password,
                tenant_id=settings.teams_tenant_id,
                authority_host=settings.teams_authority_host,
                scope=settings.teams_bot_scope,
                timeout=timeout,
                proxy=settings.proxy,
            )
            teams = TeamsNotifier(
                tokens,
                session,
                settings.teams_service_url,
                app_id=settings.teams_app_id,
                tenant_id=settings.teams_tenant_id,
                timeout=timeout,
                mention_emails=settings.teams_mention_emails,
                on_call=lambda method, result: metrics.chat_calls.labels(
                    "teams", method, result
                ).inc(),
            )
            # Case buttons once the operator says Teams' clicks reach the bridge: the bot's
            # messaging endpoint is POST /teams/messages (bridge/ingest/teams_actions.py).
            render_teams = partial(teams_render, buttons=settings.teams_offers_buttons)
            platforms["teams"] = Platform(teams, render_teams, teams.link, finds=False)
        return platforms

    return build


def chat_session(settings: Settings) -> aiohttp.ClientSession:
    """The one HTTP session of the chat clients (Slack, Bot Connector). It goes through
    ``CALLBRIDGE_PROXY`` when set, as Teams' token requests do; it ignores the environment's
    ``HTTPS_PROXY`` (``trust_env=False``), as they do too."""
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=30), proxy=settings.proxy, trust_env=False
    )


async def teams_card(
    platforms: Mapping[str, Platform], content: MissedContent, root_ref: str | None
) -> Json | None:
    """The Adaptive Card Teams' platform, real or dry-run, would send for ``content`` (the
    answer to a press on its buttons, :mod:`bridge.ingest.teams_card`); None without Teams."""
    platform = platforms.get("teams")
    if platform is None:
        return None
    message = await render_message(platform, content, decode_ref(root_ref))
    if message.card is None and message.rich is not None:  # dry run: built when shown
        message = message.rich()
    return message.card
