"""The parts of Slack Web API answers that callbridge reads, and how a failed answer becomes
the typed error delivery acts on (retry later, pause on credentials, give up with a hint).
Pure: no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

from bridge.notify import MessageMetadata
from bridge.notify.errors import (
    AuthError,
    NotifyError,
    PermanentError,
    RetryableError,
    parse_answer,
    retry_after_seconds,
)

PLATFORM = "slack"

# Slack error strings that mean "try again later" even with HTTP 200.
RETRYABLE_CODES = frozenset(
    {"ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable"}
    | {"request_timeout", "team_added_to_org"}
)
AUTH_CODES = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"}
    | {"missing_scope", "no_permission", "not_allowed_token_type", "ekm_access_denied"}
    | {"team_access_not_granted", "org_login_required"}
)
_RENDER_BUG = (
    "the rendered message was rejected; this is a callbridge rendering bug, "
    "please report it with this log line"
)
_HINTS: Mapping[str, str] = {
    "channel_not_found": (
        "the channel does not exist or the app cannot see it (private channel?): check the "
        "channel id in the rules file and invite the app to the channel"
    ),
    "not_in_channel": "the app is not a member of the channel: invite it with /invite @app",
    "is_archived": "the channel is archived: unarchive it or point the rules file elsewhere",
    "message_not_found": "the message was deleted or never existed; a new one will be needed",
    "cant_update_message": "the message was not posted by this app and cannot be edited",
    "thread_not_found": "the thread's first message was deleted or never existed",
    "invalid_blocks": _RENDER_BUG,
    "invalid_blocks_format": _RENDER_BUG,
    "msg_too_long": _RENDER_BUG,
    "no_text": _RENDER_BUG,
    "invalid_arguments": _RENDER_BUG,
    "invalid_metadata_format": _RENDER_BUG,
    "invalid_metadata_schema": _RENDER_BUG,
}
_AUTH_HINT = (
    "the Slack bot token is invalid, revoked or its app was removed: set SLACK_BOT_TOKEN "
    "(or the slack-bot-token credential) to the app's current xoxb- token"
)


# -- the parts of Slack's answers that we read -----------------------------------------------


class Posted(msgspec.Struct):
    channel: str
    ts: str


class Metadata(msgspec.Struct):
    event_type: str = ""
    event_payload: dict[str, Any] = msgspec.field(default_factory=dict)


class Message(msgspec.Struct):
    ts: str
    thread_ts: str | None = None
    metadata: Metadata | None = None


class Cursor(msgspec.Struct):
    next_cursor: str = ""


class History(msgspec.Struct):
    messages: list[Message] = msgspec.field(default_factory=list)
    has_more: bool = False
    response_metadata: Cursor | None = None


class User(msgspec.Struct):
    id: str


class UserFound(msgspec.Struct):
    user: User


class AuthTest(msgspec.Struct):
    user: str = "?"
    team: str = "?"
    url: str = ""


_T = TypeVar("_T")


def classify(method: str, response: Any, where: str = "") -> NotifyError:
    """Turn a failed Slack answer (an ``AsyncSlackResponse``, or the raw aiohttp response when
    the body was not JSON) into the typed error the delivery layer acts on."""
    status = getattr(response, "status_code", None) or getattr(response, "status", 0) or 0
    raw = getattr(response, "data", None)
    body: Mapping[str, Any] = raw if isinstance(raw, dict) else {}
    code = str(body.get("error") or f"http_{status}")
    if status == 429 or code in {"ratelimited", "rate_limited"}:
        headers = getattr(response, "headers", None) or {}
        retry_after = retry_after_seconds(headers.get("Retry-After"))
        wait = "" if retry_after is None else f" (Retry-After: {retry_after:g} s)"
        return RetryableError(
            f"Slack rate-limited {method}{where}{wait}; will retry",
            platform=PLATFORM,
            method=method,
            code="ratelimited",
            retry_after=retry_after,
        )
    if status >= 500 or code in RETRYABLE_CODES:
        return RetryableError(
            f"Slack {method} failed{where}: {code} (HTTP {status}), a problem on Slack's side; "
            "will retry",
            platform=PLATFORM,
            method=method,
            code=code,
        )
    if code in AUTH_CODES:
        needed = body.get("needed")
        needed = needed if isinstance(needed, str) else None
        hint = (
            f"the Slack app lacks the {needed or 'required'} scope: add it under OAuth & "
            "Permissions and reinstall the app"
            if code == "missing_scope"
            else _AUTH_HINT
        )
        return AuthError(
            f"Slack {method} refused the credentials{where}: {code}; {hint}",
            platform=PLATFORM,
            method=method,
            code=code,
            needed=needed,
        )
    meta = body.get("response_metadata")
    details = meta.get("messages") if isinstance(meta, dict) else None
    said = f" (Slack says: {'; '.join(map(str, details))})" if details else ""
    hint = _HINTS.get(code, "Slack will reject this request again; not retrying")
    return PermanentError(
        f"Slack {method} rejected the request{where}: {code}{said}; {hint}",
        platform=PLATFORM,
        method=method,
        code=code,
    )


def metadata_of(meta: MessageMetadata | None) -> dict[str, Any] | None:
    if meta is None:
        return None
    return {"event_type": meta.event_type, "event_payload": dict(meta.payload)}


def message_matches(
    message: Message, event_type: str, key: Mapping[str, str], root: str | None
) -> bool:
    if root is not None and message.ts == root:
        return False  # conversations.replies lists the root first
    meta = message.metadata
    if meta is None or meta.event_type != event_type:
        return False
    return all(meta.event_payload.get(k) == v for k, v in key.items())


def parse(data: Any, into: type[_T], method: str) -> _T:
    return parse_answer(
        data, into, platform=PLATFORM, method=method, check="is SLACK_API_URL a Slack Web API?"
    )
