"""``POST /teams/messages``: the bot's messaging endpoint, where Teams sends the button clicks
on callback case alerts (Adaptive Card Universal Actions, ``Action.Execute``).

Teams POSTs a Bot Framework *activity* (JSON) with ``Authorization: Bearer <JWT>``; a click is
an ``invoke`` activity named ``adaptiveCard/action`` whose ``value.action`` carries the button's
``verb`` and ``data``. The handler

1. answers 404 when Teams is not configured (no ``TEAMS_APP_ID``: there is no bot to be);
2. refuses with 400 a body that is not a JSON activity (of another content type, too large,
   not UTF-8); with 401 a request whose token does not validate
   (:mod:`bridge.ingest.botframework`: Bot Framework's signing keys, issuer, the bot's app id
   as audience, the activity's ``serviceUrl`` and channel); with 503 (``Retry-After``) when
   Bot Framework's signing keys cannot be fetched. Each refusal is logged as a warning with
   the client's address (rate-limited) and changes nothing;
3. answers any other activity (the bot added to a team, a message to it) 200 with nothing
   to say: the bot only posts;
4. for a click on a case button: stores it durably (:meth:`Store.add_click`, as a Slack click
   is), tells the dispatcher, and answers with an *invoke response* carrying the alert card as
   the click left it (:mod:`bridge.ingest.teams_card`), which Teams shows the clicker at once,
   with what their click did not do (:mod:`bridge.ingest.click_answers`, the same words as
   Slack's); without such a card, those words or that it was noted, as a message. Everyone
   else's card changes through the normal reconciliation (the Bot Connector's update, as for
   every other change), so this works on any instance, survives a restart, and a click that
   arrives twice is stored once. A click on anything else, or whose data names no case, is
   answered with an invoke error (400); a store that cannot commit with one (503) that asks
   to try again.

A Bot Framework token is not bound to the request (unlike Slack's signature): Teams reuses it
for an hour, so there is no replay to detect; a repeated activity is a duplicate click by its
id and changes nothing.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any, Final

import msgspec
import structlog
from aiohttp import web

from bridge.core.cases import ACTION_PREFIX, ACTIONS, Action, CaseRef, Click, Fact, decode_ref
from bridge.ingest.body import Refused, bounded_body, error_response
from bridge.ingest.botframework import KeysUnavailable, Unauthorized
from bridge.ingest.click_answers import answer, case_at_click, facts_of
from bridge.ingest.rejections import RejectionLog
from bridge.ingest.teams_card import Card, Pressed, Render, alert_card, with_note
from bridge.render.teams_case import DATA_KEY
from bridge.store import Store, StoreError

if TYPE_CHECKING:
    from bridge.ingest.botframework import BotAuth

log = structlog.get_logger("bridge.ingest.teams_actions")

PATH: Final = "/teams/messages"
# An invoke carries the card's data, not the card: small. Other activities (a message to the
# bot, a team's roster change) can be larger, and are read only to be ignored.
MAX_BODY: Final = 256 * 1024
RETRY_AFTER_SECONDS: Final = "5"
JSON: Final = "application/json"
ACTION_INVOKE: Final = "adaptiveCard/action"
MESSAGE_TYPE: Final = "application/vnd.microsoft.activity.message"
CARD_TYPE: Final = "application/vnd.microsoft.card.adaptive"
ERROR_TYPE: Final = "application/vnd.microsoft.error"

NOTED: Final[dict[Action, str]] = {
    "claim": "Noted: you are calling this customer back. The card shows it in a moment.",
    "release": "Released: nobody is calling this customer back now.",
    "done": "Closed in your name. The card shows it in a moment.",
}
ALREADY: Final = "This click was already received: nothing changed."


@dataclass
class TeamsActions:
    """What the endpoint needs; built and owned by :mod:`bridge.service.app`."""

    store: Store
    notify: Callable[[str], None]  # the dispatcher: a story's alert must show a change
    clock: Callable[[], datetime]
    timezone: Callable[[], tzinfo]  # the rules' (the times in an answer)
    rejections: RejectionLog
    counted: Callable[[str, str], None] = lambda action, result: None  # metrics: action, result
    render: Render | None = None  # an alert card as delivery would send it (the answer)
    auth: BotAuth | None = None  # set once the app runs (it fetches keys on its HTTP session)


TEAMS_ACTIONS: Final = web.AppKey("teams_actions", TeamsActions)


# -- the activity (only what the bridge reads; Teams sends much more) --------------------------


class Account(msgspec.Struct, frozen=True, rename="camel"):
    id: str = ""
    name: str | None = None
    aad_object_id: str | None = None


class Activity(msgspec.Struct, frozen=True, rename="camel"):
    type: str = ""
    id: str = ""
    name: str | None = None
    channel_id: str = ""
    service_url: str = ""
    sender: Account | None = msgspec.field(name="from", default=None)
    # Where the pressed card is: read leniently, as only the answer's card needs them (an odd
    # value costs the presser the card, never the press).
    conversation: Any = None  # {"id": ...}
    reply_to_id: Any = None  # the message holding the pressed card
    value: Any = None


class ExecuteAction(msgspec.Struct, frozen=True):
    type: str = ""
    verb: str = ""
    data: Any = None


class ActionValue(msgspec.Struct, frozen=True):
    action: ExecuteAction


def _said(text: str) -> web.Response:
    """An invoke response: a message the clicker sees."""
    return web.json_response({"statusCode": 200, "type": MESSAGE_TYPE, "value": text})


def _shown(card: Card) -> web.Response:
    """An invoke response: the card Teams shows the clicker in place of the pressed one."""
    return web.json_response({"statusCode": 200, "type": CARD_TYPE, "value": card})


def _invoke_error(status: int, code: str, message: str) -> web.Response:
    """An invoke response that reports an error to the clicker (the HTTP exchange is fine)."""
    value = {"code": code, "message": message}
    return web.json_response({"statusCode": status, "type": ERROR_TYPE, "value": value})


# -- the handler -------------------------------------------------------------------------------


async def messages(request: web.Request) -> web.Response:
    config = request.app.get(TEAMS_ACTIONS)
    if config is None:
        return error_response(
            404,
            "Teams is not configured on this bridge: set TEAMS_APP_ID (with TEAMS_APP_PASSWORD "
            f"and TEAMS_TENANT_ID) to accept the bot's activities at {PATH}",
        )
    if config.auth is None:  # starting or stopping: no HTTP session to fetch keys with
        return error_response(503, "starting or stopping; try again", **{"Retry-After": "1"})
    try:
        activity = await _activity(request)
        await config.auth.verify(
            request.headers.get("Authorization"),
            service_url=activity.service_url,
            channel_id=activity.channel_id,
        )
    except Refused as refused:
        config.rejections.refused(refused.reason, request.remote, detail=refused.message)
        config.counted("unknown", "refused")
        return error_response(refused.status, refused.message)
    except Unauthorized as err:
        config.rejections.refused(err.reason, request.remote, detail=str(err))
        config.counted("unknown", "refused")
        return error_response(401, str(err))
    except KeysUnavailable as err:
        log.error("teams.keys_unavailable", error=str(err))
        config.counted("unknown", "unavailable")
        return error_response(
            503,
            "Bot Framework's signing keys cannot be fetched to check this request; try again",
            **{"Retry-After": RETRY_AFTER_SECONDS},
        )
    if activity.type != "invoke":
        log.info("teams.activity_ignored", type=activity.type[:40])
        return web.Response(status=200)
    if activity.name != ACTION_INVOKE:
        log.info("teams.invoke_ignored", name=(activity.name or "")[:60])
        return _invoke_error(400, "BadRequest", "this bot answers only its own card buttons")
    try:
        action, ref, user_id, user = _case_action(activity)
    except Refused as refused:
        config.rejections.refused(refused.reason, request.remote, detail=refused.message)
        config.counted("unknown", "refused")
        return _invoke_error(400, "BadRequest", refused.message)
    return await _click(config, activity, action, ref, user_id, user)


async def _click(
    config: TeamsActions, activity: Activity, action: Action, ref: CaseRef, user_id: str, user: str
) -> web.Response:
    click = Click(
        click_id=click_id(activity, action, ref, user_id),
        case_id=ref.case_id,
        at=config.clock(),
        action=action,
        user_id=user_id,
        user=user,
    )
    try:
        # A fresh key for the replay check: a Bot Framework token is reused, not per request.
        added = await config.store.add_click(
            ref.key, click, click.at, f"teams:{secrets.token_hex(16)}"
        )
    except StoreError as err:
        log.error("teams.click_store_failed", case=ref.case_id, error=str(err))
        config.counted(action, "unavailable")
        return _invoke_error(
            503, "ServiceUnavailable", "The click could not be stored: try again in a moment."
        )
    config.counted(action, added.status)
    log.info(
        "teams.click",
        case=ref.case_id,
        action=action,
        user=user_id,
        result=added.status,
        refold=len(added.refold),
    )
    accepted = added.status == "accepted"
    for story_id in added.refold:
        config.notify(story_id)
    try:  # the click is stored: what fails from here on only costs the answer its detail
        facts = await facts_of(config.store, ref.key)
    except StoreError as err:
        log.warning("teams.answer_skipped", case=ref.case_id, error=str(err))
        return _said(NOTED[action] if accepted else ALREADY)
    card = await _card(config, activity, ref, facts, click.at)
    if not accepted:  # sent again (its answer was lost): show the card as it is now
        return _said(ALREADY) if card is None else _shown(card)
    note = answer(case_at_click(ref.key, facts, click), click, config.timezone())
    if card is None:
        return _said(note or NOTED[action])
    return _shown(card if note is None else with_note(card, note))


async def _card(
    config: TeamsActions, activity: Activity, ref: CaseRef, facts: list[Fact], now: datetime
) -> Card | None:
    if config.render is None:
        return None
    where = activity.conversation
    conversation = where.get("id") if isinstance(where, dict) else None
    message_id = activity.reply_to_id
    pressed = Pressed(
        conversation if isinstance(conversation, str) else "",
        message_id if isinstance(message_id, str) else None,
    )
    try:
        return await alert_card(config.store, config.render, ref, pressed, facts, now)
    except StoreError as err:
        log.warning("teams.card_skipped", case=ref.case_id, error=str(err))
    except Exception:  # a bug here must not cost the click its answer: it is stored
        log.exception("teams.card_failed", case=ref.case_id)
    return None


def click_id(activity: Activity, action: Action, ref: CaseRef, user_id: str) -> str:
    """One button press, from Teams' id of its activity: the same activity sent again has
    the same id."""
    identity = msgspec.json.encode([activity.id, user_id, action, ref.case_id])
    return hashlib.sha256(identity).hexdigest()[:32]


async def _activity(request: web.Request) -> Activity:
    if request.content_type != JSON:
        raise Refused(
            400, "content_type", f"expected Content-Type {JSON}, got {request.content_type!r}"
        )
    data = await bounded_body(request, MAX_BODY)
    try:
        return msgspec.json.decode(data, type=Activity)
    except msgspec.DecodeError as err:
        raise Refused(400, "malformed", f"not a Bot Framework activity: {err}") from None


def _case_action(activity: Activity) -> tuple[Action, CaseRef, str, str]:
    """The case button pressed and who pressed it, or Refused."""
    try:
        execute = msgspec.convert(activity.value, type=ActionValue).action
    except msgspec.ValidationError as err:
        raise Refused(400, "malformed", f"value: {err}") from None
    name = execute.verb.removeprefix(ACTION_PREFIX)
    prefixed = execute.verb.startswith(ACTION_PREFIX)
    if execute.type != "Action.Execute" or not prefixed or name not in ACTIONS:
        raise Refused(400, "unknown_action", f"verb {execute.verb[:80]!r} is not a case button")
    encoded = execute.data.get(DATA_KEY) if isinstance(execute.data, dict) else None
    try:
        ref = decode_ref(encoded if isinstance(encoded, str) else "")
    except ValueError:
        raise Refused(400, "bad_value", "the button's data is not a case reference") from None
    if not (ref.scope and ref.number and ref.case_id):
        raise Refused(400, "bad_value", "the button's data names no case")
    sender = activity.sender or Account()
    user_id = sender.aad_object_id or sender.id
    if not user_id:
        raise Refused(400, "malformed", "the activity names no user (from.id)")
    return name, ref, user_id, sender.name or user_id
