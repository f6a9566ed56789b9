"""A rendered message, as renderers produce it and the chat clients send it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Json = Mapping[str, Any]
"""One JSON object as the platform documents it (a Block Kit block, an Adaptive Card)."""


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
    A renderer fills the one for its platform; a notifier ignores the other. ``broadcast``: a
    thread reply that is also shown in the channel (Slack's ``reply_broadcast``; ignored for
    a message that is not a reply, and by Teams).

    ``rich`` (dry run only): builds the platform's own message (blocks or card) when the local
    preview first shows it, so a dry run that nobody previews does not build it at all.
    """

    text: str
    blocks: tuple[Json, ...] = ()
    card: Json | None = None
    metadata: MessageMetadata | None = None
    broadcast: bool = False
    rich: Callable[[], OutgoingMessage] | None = field(default=None, compare=False, repr=False)
