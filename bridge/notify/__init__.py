"""What the delivery layer needs from a chat platform, and nothing more.

``notify/slack.py`` and ``notify/teams.py`` implement :class:`Notifier` side by side. They only
build requests, call, and classify failures into :mod:`bridge.notify.errors`; they never retry
(delivery is the one retry layer) and never render (``bridge/render`` builds the
:class:`OutgoingMessage`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from bridge.notify.errors import AuthError, NotifyError, PermanentError, RetryableError

__all__ = [
    "AuthError",
    "CallObserver",
    "CallResult",
    "MessageMetadata",
    "MessageRef",
    "Notifier",
    "NotifyError",
    "OutgoingMessage",
    "PermanentError",
    "RetryableError",
    "ignore_call",
]

Json = Mapping[str, Any]
"""One JSON object as the platform documents it (a Block Kit block, an Adaptive Card)."""

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


@dataclass(frozen=True, slots=True)
class MessageMetadata:
    """Invisible machine-readable tag on a message (Slack message metadata), used to find the
    message again after a crash between the platform's answer and the store's commit.

    ``event_type`` is an identifier like ``callbridge_root``; ``payload`` holds short strings
    such as the story id and slot.
    """

    event_type: str
    payload: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """A rendered message, ready for one platform.

    ``text`` is always set: Slack shows it in notifications and to screen readers, Teams as the
    activity text. ``blocks`` is the Slack Block Kit body; ``card`` the Teams Adaptive Card.
    A renderer fills the one for its platform; a notifier ignores the other.
    """

    text: str
    blocks: tuple[Json, ...] = ()
    card: Json | None = None
    metadata: MessageMetadata | None = None


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
