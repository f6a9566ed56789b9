"""The parts of Bot Connector answers that callbridge reads, the activities it sends, and
how a failed answer becomes the typed error delivery acts on. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, TypeVar
from urllib.parse import quote

import msgspec

from bridge.notify import OutgoingMessage
from bridge.notify.errors import (
    AuthError,
    NotifyError,
    PermanentError,
    RetryableError,
    parse_answer,
    retry_after_seconds,
)

PLATFORM: Final = "teams"
CARD_CONTENT_TYPE: Final = "application/vnd.microsoft.card.adaptive"
RETRYABLE_STATUS: Final = frozenset({408, 412, 429})

_AUTH_HINT: Final = (
    "the Bot Connector refused the bot's token: check that TEAMS_APP_ID is the Azure Bot's "
    "Microsoft App ID, that the bot's type is single tenant in TEAMS_TENANT_ID, and that "
    "the Microsoft Teams channel is enabled on the Azure Bot (Channels)"
)
_HINTS: Final[Mapping[int, str]] = {
    # One conversation refuses the bot (not installed there): that destination fails, loudly,
    # and every other conversation goes on (a bad token is a 401, which pauses Teams).
    403: (
        "the bot may not post here: install the Teams app that contains the bot in the team "
        "that owns this channel (Teams > the team > Manage team > Apps), check the conversation "
        "id in the rules file, and that the team's owners did not remove or block the app"
    ),
    400: (
        "Teams rejected the request as malformed; if it names the card this is a callbridge "
        "rendering bug (please report it with this log line), otherwise check the "
        "conversation id in the rules file"
    ),
    404: (
        "the conversation or message does not exist (or the bot cannot see it): check the "
        "channel id (19:…@thread.tacv2) in the rules file and TEAMS_SERVICE_URL"
    ),
    413: "the card is too large; this is a callbridge rendering bug, please report it",
}


# -- the parts of the Bot Connector's answers that we read ---------------------------------------


_T = TypeVar("_T")


class Created(msgspec.Struct):
    id: str
    activityId: str | None = None  # the wire name


class Resource(msgspec.Struct):
    id: str = ""


class ErrorDetail(msgspec.Struct):
    code: str = ""
    message: str = ""


class ErrorBody(msgspec.Struct):
    error: ErrorDetail | None = None
    message: str = ""


def classify(
    method: str, status: int, text: str, retry_after: str | None, where: str = ""
) -> NotifyError:
    """Turn a failed Bot Connector answer into the typed error the delivery layer acts on."""
    detail = error_detail(text)
    said = f" (Teams says: {detail.message[:300]})" if detail.message else ""
    seconds = retry_after_seconds(retry_after)
    if status == 429 or status in RETRYABLE_STATUS or status >= 500:
        code = "ratelimited" if status == 429 else f"http_{status}"
        wait = "" if seconds is None else f" (Retry-After: {seconds:g} s)"
        what = "rate-limited" if status == 429 else f"failed with HTTP {status}"
        return RetryableError(
            f"Teams {method} {what}{where}{wait}{said}; will retry",
            platform=PLATFORM,
            method=method,
            code=code,
            retry_after=seconds,
        )
    if status == 401:
        return AuthError(
            f"Teams {method} was refused{where}: HTTP {status} {detail.code or ''}".rstrip()
            + f"{said}; {_AUTH_HINT}",
            platform=PLATFORM,
            method=method,
            code="unauthorized",
        )
    code = {403: "forbidden", 404: "not_found"}.get(status) or detail.code or f"http_{status}"
    hint = _HINTS.get(status, "Teams will reject this request again; not retrying")
    return PermanentError(
        f"Teams {method} rejected the request{where}: HTTP {status} {detail.code}".rstrip()
        + f"{said}; {hint}",
        platform=PLATFORM,
        method=method,
        code=code,
    )


def activity_of(message: OutgoingMessage) -> dict[str, Any]:
    """A message activity: the card as an attachment, ``summary`` for notifications and
    previews; ``text`` only when there is no card (Teams would show it above the card)."""
    activity: dict[str, Any] = {"type": "message", "summary": message.text}
    if message.card is not None:
        activity["attachments"] = [{"contentType": CARD_CONTENT_TYPE, "content": message.card}]
    else:
        activity["text"] = message.text
        activity["textFormat"] = "plain"
    return activity


def activity_url(service: str, conversation: str, activity: str) -> str:
    return (
        f"{service}v3/conversations/{quote(conversation, safe='')}"
        f"/activities/{quote(activity, safe='')}"
    )


def message_id(conversation: str) -> str:
    """``19:…@thread.tacv2;messageid=1700000000000`` -> ``1700000000000``."""
    _, found, rest = conversation.partition(";messageid=")
    return rest if found else ""


def slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"


def split_channel(channel: str) -> tuple[str, str]:
    """A Teams destination's channel, ``"<service_url> <conversation>"`` or
    ``"<conversation>"``, as (service URL or "", conversation id)."""
    service, _, conversation = channel.strip().rpartition(" ")
    return service.strip(), conversation


def json_or_empty(text: str) -> Any:
    if not text.strip():
        return {}
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError:
        return {}


def error_detail(text: str) -> ErrorDetail:
    try:
        body = msgspec.json.decode(text, type=ErrorBody)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return ErrorDetail()
    if body.error is not None:
        return body.error
    return ErrorDetail(message=body.message)


def parse(data: Any, into: type[_T], method: str) -> _T:
    return parse_answer(
        data,
        into,
        platform=PLATFORM,
        method=method,
        check="is TEAMS_SERVICE_URL a Bot Connector endpoint?",
    )
