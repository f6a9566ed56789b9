"""What the delivery layer needs from a chat platform, and nothing more.

``notify/slack.py`` and ``notify/teams.py`` implement :class:`Notifier` side by side. They only
build requests, call, and classify failures into :mod:`bridge.notify.errors`; they never retry
(delivery is the one retry layer) and never render (``bridge/render`` builds the
:class:`OutgoingMessage`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from bridge.notify.errors import AuthError, NotifyError, PermanentError, RetryableError
from bridge.render.message import Json, MessageMetadata, OutgoingMessage

__all__ = [
    "AuthError",
    "CallObserver",
    "CallResult",
    "Json",
    "MessageMetadata",
    "MessageRef",
    "Notifier",
    "NotifyError",
    "OutgoingMessage",
    "PermanentError",
    "RetryableError",
    "ignore_call",
]

CallResult = Literal["ok", "not_found", "ratelimited", "retryable", "permanent", "auth"]


class CallObserver(Protocol):
    """Told about every platform API call's outcome (e.g. to count it in Prometheus)."""

    def __call__(self, method: str, result: CallResult) -> None: ...


def ignore_call(method: str, result: CallResult) -> None:
    """The default :class:`CallObserver`: tells no one."""


@dataclass(frozen=True, slots=True)
class MessageRef:
    """Where a posted message lives: enough to update it, reply to it, or link to it.

    ``ts_or_id`` is Slack's message ``ts`` or the Teams activity id; ``thread`` is the root's
    ``ts_or_id`` when this message is a thread reply, else None.
    """

    platform: str
    channel: str
    ts_or_id: str
    thread: str | None = None


def encode_ref(ref: MessageRef) -> str:
    """A posted message's reference as the outbox keeps it."""
    return json.dumps([ref.platform, ref.channel, ref.ts_or_id, ref.thread])


def decode_ref(text: str | None) -> MessageRef | None:
    if text is None:
        return None
    platform, channel, ts, thread = json.loads(text)
    return MessageRef(platform, channel, ts, thread)


class Notifier(Protocol):
    """One chat platform. Every method raises :class:`RetryableError`,
    :class:`PermanentError` or :class:`AuthError` on failure and never retries by itself."""

    @property
    def platform(self) -> str:
        """``"slack"`` or ``"teams"``: the value of :attr:`MessageRef.platform`."""
        ...

    async def post(
        self, channel: str, message: OutgoingMessage, *, thread: MessageRef | None = None
    ) -> MessageRef:
        """Post a new message in ``channel``, as a reply in ``thread`` when given."""
        ...

    async def update(self, ref: MessageRef, message: OutgoingMessage) -> None:
        """Replace the content of a message this app posted."""
        ...

    async def delete(self, ref: MessageRef) -> None:
        """Remove a message this app posted (a retracted alert, an orphaned consult call).
        A message that is already gone counts as deleted."""
        ...

    def link(self, ref: MessageRef) -> str | None:
        """A URL people can open to see the message, when the platform has one."""
        ...

    async def find(
        self,
        channel: str,
        event_type: str,
        key: Mapping[str, str],
        oldest: datetime,
        *,
        thread: MessageRef | None = None,
    ) -> MessageRef | None:
        """The newest message posted at or after ``oldest`` whose metadata has ``event_type``
        and every ``key`` item in its payload (searching ``thread``'s replies when given).

        None when there is none, or when this platform or token cannot look messages up.
        """
        ...

    async def lookup_user(self, email: str) -> str | None:
        """The platform's user id for ``email`` (for mentions), or None if unknown."""
        ...

    async def verify(self) -> str:
        """Check the credentials; a one-line description for ``/readyz``. Raises AuthError."""
        ...
