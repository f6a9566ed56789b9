"""The local preview's memory: what the dry-run notifiers would have posted, kept as a chat
platform keeps it (posts, in-place edits, thread replies, deletions), per channel.

Fed by :class:`~bridge.notify.dryrun.DryRunNotifier`, read by ``GET /preview``. Bounded: a
channel keeps its newest ``per_channel`` messages and a thread its newest ``per_channel``
replies, so a long demo or a load test keeps memory flat. Nothing here is stored or sent.
A message is drawn when the page first shows it, not when it is posted: a dry run that nobody
previews never builds the platform's message (``OutgoingMessage.rich``) nor its HTML.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from html import escape

import structlog

from bridge.notify import MessageRef, OutgoingMessage
from bridge.render.preview_html import PreviewChannel, PreviewMessage, slack_html, teams_html

PER_CHANNEL = 200

ChannelKey = tuple[str, str]  # (platform, channel)
Drawing = str | Callable[[], str]  # the HTML, or how to draw it when first shown

log = structlog.get_logger("bridge.notify.preview")


@dataclass
class _Entry:
    id: str
    at: str
    html: Drawing
    edits: int = 0
    replies: OrderedDict[str, _Entry] = field(default_factory=OrderedDict)

    def view(self) -> PreviewMessage:
        if not isinstance(self.html, str):
            self.html = _drawn(self.html)
        return PreviewMessage(
            self.id, self.at, self.html, self.edits, tuple(r.view() for r in self.replies.values())
        )


def _drawn(drawing: Callable[[], str]) -> str:
    """Draw a message now; a message that cannot be drawn shows why instead of breaking the
    page (the dry run already logged its text line)."""
    try:
        return drawing()
    except Exception as err:
        log.exception("preview.draw_failed")
        return f"<i>cannot draw this message: {escape(type(err).__name__)}</i>"


def _now() -> str:
    return datetime.now(UTC).astimezone().strftime("%H:%M:%S")


def draw(platform: str, message: OutgoingMessage) -> Drawing:
    """The message as the preview shows it: from its Block Kit blocks or Adaptive Card; for a
    message whose blocks or card are built on demand (``rich``), how to draw it later."""
    rich = message.rich
    if rich is not None:
        return lambda: _html(platform, replace(rich(), text=message.text))
    return _html(platform, message)


def _html(platform: str, message: OutgoingMessage) -> str:
    if platform == "teams":
        return teams_html(message.text, message.card)
    return slack_html(message.text, message.blocks)


class PreviewBoard:
    """Every channel's messages; ``version`` grows with each change (the page polls it)."""

    def __init__(self, per_channel: int = PER_CHANNEL, clock: Callable[[], str] = _now) -> None:
        self.per_channel = per_channel
        self.version = 0
        self._clock = clock
        self._channels: dict[ChannelKey, OrderedDict[str, _Entry]] = {}

    def post(self, ref: MessageRef, message: OutgoingMessage) -> None:
        entry = _Entry(ref.ts_or_id, self._clock(), draw(ref.platform, message))
        channel = self._channels.setdefault((ref.platform, ref.channel), OrderedDict())
        if ref.thread is not None:
            root = channel.get(ref.thread)
            if root is None:  # its root has been dropped (bounded) or deleted: nowhere to show
                return
            _bounded_add(root.replies, entry, self.per_channel)
        else:
            _bounded_add(channel, entry, self.per_channel)
        self.version += 1

    def update(self, ref: MessageRef, message: OutgoingMessage) -> None:
        entry = self._find(ref)
        if entry is not None:
            entry.html = draw(ref.platform, message)
            entry.edits += 1
            self.version += 1

    def delete(self, ref: MessageRef) -> None:
        channel = self._channels.get((ref.platform, ref.channel))
        if channel is None:
            return
        if ref.thread is not None and (root := channel.get(ref.thread)) is not None:
            root.replies.pop(ref.ts_or_id, None)
        channel.pop(ref.ts_or_id, None)
        self.version += 1

    def _find(self, ref: MessageRef) -> _Entry | None:
        channel = self._channels.get((ref.platform, ref.channel))
        if channel is None:
            return None
        if ref.thread is not None:
            root = channel.get(ref.thread)
            return None if root is None else root.replies.get(ref.ts_or_id)
        return channel.get(ref.ts_or_id)

    def channels(self, named: Iterable[tuple[str, str, str]] = ()) -> list[PreviewChannel]:
        """Each channel: first those ``named`` (platform, channel, destination name) in that
        order, even without messages, then any other channel that has messages."""
        out: list[PreviewChannel] = []
        seen: set[ChannelKey] = set()
        for platform, channel, name in named:
            if (platform, channel) not in seen:
                seen.add((platform, channel))
                out.append(self._channel(platform, channel, name))
        for platform, channel in self._channels:
            if (platform, channel) not in seen:
                out.append(self._channel(platform, channel, ""))
        return out

    def _channel(self, platform: str, channel: str, name: str) -> PreviewChannel:
        entries = self._channels.get((platform, channel), OrderedDict())
        return PreviewChannel(platform, channel, name, tuple(e.view() for e in entries.values()))


def _bounded_add(entries: OrderedDict[str, _Entry], entry: _Entry, limit: int) -> None:
    entries[entry.id] = entry
    while len(entries) > limit:
        entries.popitem(last=False)
