"""The dry-run notifier: logs what would be posted, one line per change, posts nothing.

Used for every platform without credentials, so `callbridge serve` plus `callbridge simulate`
is a complete demo of routing, threads, updates and alerts, and so operators can watch what a
rules change would do before connecting a workspace.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable, Mapping
from datetime import datetime

import structlog

from bridge.notify import MessageRef, OutgoingMessage
from bridge.notify.preview import PreviewBoard

log = structlog.get_logger("bridge.dryrun")


def _no_count(action: str) -> None:
    """The default ``on_message``: counts nothing."""


class DryRunNotifier:
    """``on_message(action)`` is told of every message logged instead of sent (``post``,
    ``reply``, ``update``, ``delete``): the service counts them in
    ``callbridge_dryrun_messages_total``. ``board``: the local preview (``GET /preview``)
    that is shown every message as the chat platform would show it."""

    def __init__(
        self,
        platform: str,
        on_message: Callable[[str], None] = _no_count,
        board: PreviewBoard | None = None,
    ) -> None:
        self.platform = platform
        self._ids = itertools.count(1)
        # A message id is unique across restarts (a stored ref from an earlier run must not
        # name a message of this one): the run's own short token, then a counter.
        self._run = secrets.token_hex(2)
        self._on_message = on_message
        self._board = board

    async def post(
        self, channel: str, message: OutgoingMessage, *, thread: MessageRef | None = None
    ) -> MessageRef:
        root = None if thread is None else thread.ts_or_id
        ref = MessageRef(self.platform, channel, f"dry-{self._run}-{next(self._ids)}", root)
        self._on_message("reply" if thread else "post")
        if self._board is not None:
            self._board.post(ref, message)
        log.info(
            "dryrun.reply" if thread else "dryrun.post",
            platform=self.platform,
            channel=channel,
            message=ref.ts_or_id,
            thread=ref.thread,
            text=message.text,
            **_meta(message),
        )
        return ref

    async def update(self, ref: MessageRef, message: OutgoingMessage) -> None:
        self._on_message("update")
        if self._board is not None:
            self._board.update(ref, message)
        log.info(
            "dryrun.update",
            platform=self.platform,
            channel=ref.channel,
            message=ref.ts_or_id,
            text=message.text,
            **_meta(message),
        )

    async def delete(self, ref: MessageRef) -> None:
        self._on_message("delete")
        if self._board is not None:
            self._board.delete(ref)
        log.info("dryrun.delete", platform=self.platform, channel=ref.channel, message=ref.ts_or_id)

    def link(self, ref: MessageRef) -> str | None:
        return f"dry-run://{ref.channel}/{ref.ts_or_id}"

    async def find(
        self,
        channel: str,
        event_type: str,
        key: Mapping[str, str],
        oldest: datetime,
        *,
        thread: MessageRef | None = None,
    ) -> MessageRef | None:
        return None

    async def lookup_user(self, email: str) -> str | None:
        return None

    async def verify(self) -> str:
        return f"{self.platform}: dry-run (no credentials configured; messages are logged)"


def _meta(message: OutgoingMessage) -> dict[str, str]:
    if message.metadata is None:
        return {}
    payload = message.metadata.payload
    return {"story": payload.get("story", ""), "slot": payload.get("slot", "")}
