"""``POST /slack/interactions``: the button clicks on callback case alerts (Slack's
interactivity Request URL).

Slack POSTs ``application/x-www-form-urlencoded`` with one ``payload`` field (JSON), signed
with the app's signing secret: ``X-Slack-Signature`` is ``v0=`` HMAC-SHA256 of
``v0:{X-Slack-Request-Timestamp}:{raw body}``. The handler

1. answers 404 when no signing secret is configured (interactivity is off);
2. refuses with 400 a request without Slack's headers, of another content type, without a
   ``payload``, with malformed JSON, that is not ``block_actions``, whose action is not one of
   the case buttons, or whose button value is not a case reference; with 401 a forged
   signature or one older than 5 minutes (slack_sdk's ``SignatureVerifier``, on the bridge's
   clock) and an exact replay of a request already accepted. None of these changes anything;
   each is logged as a warning with the client's address (rate-limited);
3. stores the click durably (:meth:`Store.add_click`: it marks the stories whose alerts show
   the number's cases dirty), tells the dispatcher, and answers 200 with an empty body, well
   within Slack's 3 s. The alert changes through the normal reconciliation (no
   ``chat.update`` here), so this works on any instance, survives a restart, and a retried
   click (same action, newly signed) is a duplicate: 200, nothing changes twice;
4. tells the clicker, in the background, what their click did not do (see
   :mod:`bridge.ingest.slack_answers`). A store that cannot commit gets 503.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final
from urllib.parse import parse_qs

import msgspec
import structlog
from aiohttp import web
from slack_sdk.signature import Clock as SignatureClock
from slack_sdk.signature import SignatureVerifier

from bridge.core.cases import ACTION_PREFIX, ACTIONS, Action, CaseRef, Click, decode_ref
from bridge.ingest.body import Refused, bounded_body, error_response
from bridge.ingest.rejections import RejectionLog
from bridge.ingest.slack_answers import Answers
from bridge.store import Store, StoreError

log = structlog.get_logger("bridge.ingest.slack_actions")

PATH: Final = "/slack/interactions"
# A block_actions payload carries the whole message the button is on (blocks and all),
# URL-encoded: more than a webhook, still bounded.
MAX_BODY: Final = 512 * 1024
WINDOW_SECONDS: Final = 5 * 60  # Slack's replay window (and SignatureVerifier's)
RETRY_AFTER_SECONDS: Final = "5"
FORM: Final = "application/x-www-form-urlencoded"
MAX_FIELDS: Final = 100  # Slack sends one (payload)


class _BridgeClock(SignatureClock):
    """The verifier's clock is the bridge's (injected in tests)."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock

    def now(self) -> float:
        return self._clock().timestamp()


def verifier(signing_secret: str, clock: Callable[[], datetime]) -> SignatureVerifier:
    return SignatureVerifier(signing_secret, clock=_BridgeClock(clock))


@dataclass(frozen=True)
class Interactions:
    """What the endpoint needs; built and owned by :mod:`bridge.service.app`."""

    verifier: SignatureVerifier
    store: Store
    notify: Callable[[str], None]  # the dispatcher: a story's alert must show a change
    clock: Callable[[], datetime]
    answers: Answers
    rejections: RejectionLog
    counted: Callable[[str, str], None] = lambda action, result: None  # metrics: action, result


INTERACTIONS: Final = web.AppKey("slack_interactions", Interactions)


# -- the payload (only what the bridge reads; Slack sends much more) ---------------------------


class _Kind(msgspec.Struct):
    type: str


class SlackUser(msgspec.Struct, frozen=True):
    id: str
    name: str | None = None
    username: str | None = None


class SlackAction(msgspec.Struct, frozen=True):
    action_id: str
    action_ts: str
    value: str | None = None


class BlockActions(msgspec.Struct, frozen=True):
    user: SlackUser
    actions: list[SlackAction]
    response_url: str | None = None


# -- the handler -------------------------------------------------------------------------------


async def interactions(request: web.Request) -> web.Response:
    config = request.app.get(INTERACTIONS)
    if config is None:
        return error_response(
            404,
            "Slack interactivity is not configured on this bridge: set SLACK_SIGNING_SECRET "
            "(or the slack-signing-secret credential) to the Slack app's Signing Secret to "
            f"accept button clicks at {PATH}",
        )
    try:
        signature, payload = await _verified_payload(request, config)
        action, ref = _case_action(payload)
    except Refused as refused:
        config.rejections.refused(refused.reason, request.remote, detail=refused.message)
        config.counted("unknown", "refused")
        return error_response(refused.status, refused.message)
    user = payload.user
    click = Click(
        click_id=click_id(payload.actions[0], user.id),
        case_id=ref.case_id,
        at=config.clock(),
        action=action,
        user_id=user.id,
        user=user.name or user.username or user.id,
    )
    try:
        added = await config.store.add_click(ref.key, click, click.at, signature)
    except StoreError as err:
        log.error("slack.click_store_failed", case=ref.case_id, error=str(err))
        config.counted(action, "unavailable")
        return error_response(
            503,
            "the click could not be stored; try again later",
            **{"Retry-After": RETRY_AFTER_SECONDS},
        )
    if added.status == "replayed":
        message = "this signed request was already received (a replay): nothing changed"
        config.rejections.refused("replayed", request.remote, detail=message)
        config.counted(action, "refused")
        return error_response(401, message)
    config.counted(action, added.status)
    log.info(
        "slack.click",
        case=ref.case_id,
        action=action,
        user=user.id,
        result=added.status,
        refold=len(added.refold),
    )
    if added.status == "accepted":
        for story_id in added.refold:
            config.notify(story_id)
        url = payload.response_url
        if url is not None and not config.answers.allowed(url):
            config.rejections.refused(
                "response_url",
                request.remote,
                detail="the payload's response_url is not Slack's: the click is kept, no "
                "answer is sent to it",
            )
            url = None
        config.answers.explain(ref.key, click, url)
    return web.Response(status=200)


def click_id(action: SlackAction, user_id: str) -> str:
    """One button press, from Slack's stable identifiers of it: the same press signed anew
    (a retry) has the same id."""
    identity = msgspec.json.encode([action.action_ts, user_id, action.action_id, action.value])
    return hashlib.sha256(identity).hexdigest()[:32]


async def _verified_payload(request: web.Request, config: Interactions) -> tuple[str, BlockActions]:
    """The signature and the block_actions payload of a request Slack signed, or Refused."""
    timestamp = request.headers.get("X-Slack-Request-Timestamp")
    signature = request.headers.get("X-Slack-Signature")
    if not timestamp or not signature:
        raise Refused(
            400,
            "missing_headers",
            "missing X-Slack-Request-Timestamp or X-Slack-Signature: this endpoint takes only "
            "Slack's signed interactivity requests",
        )
    if request.content_type != FORM:
        raise Refused(
            400, "content_type", f"expected Content-Type {FORM}, got {request.content_type!r}"
        )
    text = await _body(request)
    _verify(config, text, timestamp, signature)
    try:
        fields = parse_qs(text, keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError:
        raise Refused(400, "malformed", f"the form has more than {MAX_FIELDS} fields") from None
    if not fields.get("payload"):
        raise Refused(400, "no_payload", "the form has no `payload` field")
    raw = fields["payload"][0]
    try:
        kind = msgspec.json.decode(raw, type=_Kind).type
    except msgspec.DecodeError as err:
        raise Refused(400, "malformed", f"payload is not a JSON interaction: {err}") from None
    if kind != "block_actions":
        raise Refused(
            400, "not_block_actions", f"expected a block_actions payload, got type {kind!r}"
        )
    try:
        return signature, msgspec.json.decode(raw, type=BlockActions)
    except msgspec.DecodeError as err:
        raise Refused(400, "malformed", f"payload: {err}") from None


async def _body(request: web.Request) -> str:
    data = await bounded_body(request, MAX_BODY)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(400, "not_utf8", "body is not UTF-8") from None


def _verify(config: Interactions, body: str, timestamp: str, signature: str) -> None:
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise Refused(
            400, "bad_timestamp", "X-Slack-Request-Timestamp is not a number of seconds"
        ) from None
    if abs(config.clock().timestamp() - sent_at) > WINDOW_SECONDS:
        raise Refused(
            401,
            "stale",
            "X-Slack-Request-Timestamp is more than 5 minutes from this bridge's clock (a "
            "replay, or a clock that is off: check NTP)",
        )
    if not config.verifier.is_valid(body=body, timestamp=timestamp, signature=signature):
        raise Refused(
            401,
            "forged",
            "X-Slack-Signature does not match: not signed with this app's signing secret "
            "(check SLACK_SIGNING_SECRET)",
        )


def _case_action(payload: BlockActions) -> tuple[Action, CaseRef]:
    """The case button pressed, or Refused."""
    if not payload.user.id:
        raise Refused(400, "malformed", "payload.user.id is empty")
    if len(payload.actions) != 1:
        raise Refused(400, "unknown_action", f"expected one action, got {len(payload.actions)}")
    pressed = payload.actions[0]
    name = pressed.action_id.removeprefix(ACTION_PREFIX)
    if not pressed.action_id.startswith(ACTION_PREFIX) or name not in ACTIONS:
        raise Refused(
            400, "unknown_action", f"action_id {pressed.action_id[:80]!r} is not a case button"
        )
    try:
        ref = decode_ref(pressed.value or "")
    except ValueError:
        raise Refused(400, "bad_value", "the button's value is not a case reference") from None
    if not (ref.scope and ref.number and ref.case_id):
        raise Refused(400, "bad_value", "the button's value names no case")
    return name, ref
