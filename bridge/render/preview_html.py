"""The local preview's HTML: Slack Block Kit and Teams Adaptive Card payloads drawn roughly as
the chat clients draw them, so a person can watch a demo without a workspace.

Pure and defensive: every text from a payload (a caller's name comes from the provider) is
HTML-escaped; a link is kept only for ``http``, ``https``, ``mailto`` and ``tel`` URLs; a
block or element this module does not know is shown as its type, never as raw markup.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

_SAFE_URL: Final = re.compile(r"^(https?://|mailto:|tel:)[^\s\"'<>]*$", re.IGNORECASE)
_HOLD: Final = "\ue000"  # marks a placeholder (private use: never in a payload we render)
_PLACEHOLDER: Final = re.compile(_HOLD + r"(\d+)" + _HOLD)


@dataclass(frozen=True, slots=True)
class PreviewMessage:
    """One message as the preview shows it: a post with its thread replies."""

    id: str
    at: str  # the local time it was posted, "HH:MM:SS"
    html: str  # the rendered body (see slack_html, teams_html)
    edits: int = 0
    replies: tuple[PreviewMessage, ...] = ()


@dataclass(frozen=True, slots=True)
class PreviewChannel:
    platform: str  # "slack" | "teams"
    channel: str  # the channel id or conversation id
    name: str  # the destination's name in the rules ("" when none names it)
    messages: tuple[PreviewMessage, ...] = ()


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _link(url: str, label: str) -> str:
    """``label`` (already HTML) as a link to ``url`` when the URL is harmless, else as is."""
    if _SAFE_URL.match(url):
        return f'<a href="{esc(url)}" target="_blank" rel="noopener noreferrer">{label}</a>'
    return label


class _Held:
    """Pieces of finished HTML set aside while the rest of a text is escaped and styled."""

    def __init__(self) -> None:
        self.pieces: list[str] = []

    def hold(self, piece: str) -> str:
        self.pieces.append(piece)
        return f"{_HOLD}{len(self.pieces) - 1}{_HOLD}"

    def restore(self, text: str) -> str:
        return _PLACEHOLDER.sub(lambda m: self.pieces[int(m.group(1))], text)


def _styled(text: str, rules: Sequence[tuple[re.Pattern[str], str]]) -> str:
    """Escape ``text`` (placeholders survive escaping), then apply the emphasis ``rules``."""
    out = esc(text)
    for pattern, tag in rules:
        out = pattern.sub(lambda m, t=tag: f"<{t}>{m.group(1)}</{t}>", out)  # type: ignore[misc]
    return out.replace("\n", "<br>")


# ---- Slack ------------------------------------------------------------------------------

_SLACK_ANGLE: Final = re.compile(r"<([^<>]*)>")
_SLACK_STYLE: Final = (
    (re.compile(r"(?<![\w*])\*(?!\s)([^*\n]+?)(?<!\s)\*(?![\w*])"), "b"),
    (re.compile(r"(?<![\w_])_(?!\s)([^_\n]+?)(?<!\s)_(?![\w_])"), "i"),
    (re.compile(r"(?<![\w~])~(?!\s)([^~\n]+?)(?<!\s)~(?![\w~])"), "s"),
    (re.compile(r"`([^`\n]+)`"), "code"),
)


def _slack_unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _slack_special(inner: str) -> str:
    """One ``<…>`` of Slack mrkdwn as HTML: a link, a mention, a date (its fallback text)."""
    target, _, label = inner.partition("|")
    target, label = _slack_unescape(target), _slack_unescape(label)
    if target.startswith("!date^"):
        return f'<span class="date">{esc(label or target)}</span>'
    if target.startswith("!subteam^"):
        return f'<span class="mention">{esc(label or "@" + target[9:])}</span>'
    if target.startswith("!"):
        return f'<span class="mention">@{esc(label or target[1:])}</span>'
    if target.startswith("@"):
        return f'<span class="mention">{esc(label or target)}</span>'
    if target.startswith("#"):
        return f'<span class="mention">#{esc(label or target[1:])}</span>'
    return _link(target, esc(label or target))


def mrkdwn(text: str) -> str:
    """Slack mrkdwn as HTML: *bold*, _italic_, ~strike~, `code`, links, mentions, dates."""
    held = _Held()
    text = text.replace(_HOLD, "")  # a stray marker in the payload is dropped
    text = _SLACK_ANGLE.sub(lambda m: held.hold(_slack_special(m.group(1))), text)
    return held.restore(_styled(_slack_unescape(text), _SLACK_STYLE))


def _slack_text(obj: Any) -> str:
    if not isinstance(obj, Mapping):
        return ""
    text = str(obj.get("text", ""))
    return mrkdwn(text) if obj.get("type") == "mrkdwn" else esc(text).replace("\n", "<br>")


def _slack_block(block: Mapping[str, Any]) -> str:
    kind = block.get("type")
    if kind == "header":
        return f'<div class="bk-header">{_slack_text(block.get("text"))}</div>'
    if kind == "section":
        parts = [f'<div class="bk-text">{_slack_text(block.get("text"))}</div>']
        fields = [f"<div>{_slack_text(f)}</div>" for f in _list(block.get("fields"))]
        if fields:
            parts.append(f'<div class="bk-fields">{"".join(fields)}</div>')
        return f'<div class="bk-section">{"".join(parts)}</div>'
    if kind == "context":
        items = [f"<span>{_slack_text(e)}</span>" for e in _list(block.get("elements"))]
        return f'<div class="bk-context">{" ".join(items)}</div>'
    if kind == "divider":
        return "<hr>"
    if kind == "actions":
        buttons = [
            f'<button disabled class="{esc(e.get("style", ""))}">{_slack_text(e.get("text"))}'
            "</button>"
            for e in _list(block.get("elements"))
        ]
        return f'<div class="bk-actions">{"".join(buttons)}</div>'
    return f'<div class="unknown">[{esc(kind)} block]</div>'


def slack_html(text: str, blocks: Iterable[Mapping[str, Any]]) -> str:
    """A Slack message: its blocks, or its ``text`` when it has none (as Slack shows it)."""
    drawn = [_slack_block(b) for b in blocks if isinstance(b, Mapping)]
    return "".join(drawn) if drawn else f'<div class="bk-text">{mrkdwn(text)}</div>'


# ---- Teams ------------------------------------------------------------------------------

_TEAMS_ESCAPE: Final = re.compile(r"\\(.)")
_TEAMS_LINK: Final = re.compile(r"\[([^\]]*)\]\(([^)\s]*)\)")
_TEAMS_AT: Final = re.compile(r"<at>(.*?)</at>", re.IGNORECASE)
_TEAMS_STYLE: Final = (
    (re.compile(r"\*\*(?!\s)(.+?)(?<!\s)\*\*"), "b"),
    (re.compile(r"(?<![\w_])_(?!\s)([^_\n]+?)(?<!\s)_(?![\w_])"), "i"),
    (re.compile(r"(?<![\w*])\*(?!\s)([^*\n]+?)(?<!\s)\*(?![\w*])"), "i"),
)


def teams_markdown(text: str) -> str:
    """A TextBlock's markdown subset as HTML: **bold**, _italic_, [links](url), ``<at>``
    mentions, backslash escapes, "- " list lines."""
    held = _Held()
    text = text.replace(_HOLD, "")  # a stray marker in the payload is dropped
    text = _TEAMS_ESCAPE.sub(lambda m: held.hold(esc(m.group(1))), text)
    text = _TEAMS_AT.sub(
        lambda m: held.hold(f'<span class="mention">@{esc(held.restore(m.group(1)))}</span>'),
        text,
    )
    text = _TEAMS_LINK.sub(
        lambda m: held.hold(_link(held.restore(m.group(2)), teams_markdown(m.group(1)))), text
    )
    lines = [
        f"• {line[2:]}" if line.startswith(("- ", "* ")) else line for line in text.split("\n")
    ]
    return held.restore(_styled("\n".join(lines), _TEAMS_STYLE))


def _teams_element(element: Mapping[str, Any]) -> str:
    kind = element.get("type")
    if kind == "TextBlock":
        classes = ["ac-text"]
        for key in ("weight", "size", "color"):
            if isinstance(element.get(key), str):
                classes.append(f"ac-{key}-{element[key].lower()}")
        if element.get("isSubtle"):
            classes.append("ac-subtle")
        body = teams_markdown(str(element.get("text", "")))
        return f'<div class="{esc(" ".join(classes))}">{body}</div>'
    if kind == "FactSet":
        rows = [
            f"<tr><th>{teams_markdown(str(f.get('title', '')))}</th>"
            f"<td>{teams_markdown(str(f.get('value', '')))}</td></tr>"
            for f in _list(element.get("facts"))
        ]
        return f'<table class="ac-facts">{"".join(rows)}</table>'
    if kind == "ColumnSet":
        columns = [
            f'<div class="ac-column">{_teams_items(c.get("items"))}</div>'
            for c in _list(element.get("columns"))
        ]
        return f'<div class="ac-columns">{"".join(columns)}</div>'
    if kind == "Container":
        return f'<div class="ac-container">{_teams_items(element.get("items"))}</div>'
    if kind == "ActionSet":
        return _teams_actions(element.get("actions"))
    return f'<div class="unknown">[{esc(kind)}]</div>'


def _teams_items(items: Any) -> str:
    return "".join(_teams_element(e) for e in _list(items))


def _teams_actions(actions: Any) -> str:
    drawn = []
    for action in _list(actions):
        title = esc(action.get("title", ""))
        url = action.get("url")
        if action.get("type") == "Action.OpenUrl" and isinstance(url, str):
            drawn.append(_link(url, f'<span class="ac-action">{title}</span>'))
        else:
            drawn.append(f'<button disabled class="ac-action">{title}</button>')
    return f'<div class="ac-actions">{"".join(drawn)}</div>' if drawn else ""


def teams_html(text: str, card: Mapping[str, Any] | None) -> str:
    """A Teams message: its Adaptive Card, or its ``text`` when it has none."""
    if card is None:
        return f'<div class="ac-text">{teams_markdown(text)}</div>'
    return (
        f'<div class="ac-card">{_teams_items(card.get("body"))}'
        f"{_teams_actions(card.get('actions'))}</div>"
    )


def _list(value: Any) -> list[Mapping[str, Any]]:
    if not isinstance(value, list | tuple):
        return []
    return [v for v in value if isinstance(v, Mapping)]


# ---- The board --------------------------------------------------------------------------

_ICON: Final = {"slack": "#", "teams": "T"}


def _message(message: PreviewMessage, reply: bool = False) -> str:
    edited = ' <span class="edited">(edited)</span>' if message.edits else ""
    replies = "".join(_message(r, reply=True) for r in message.replies)
    thread = (
        f'<div class="thread"><div class="thread-count">{len(message.replies)} '
        f"{'reply' if len(message.replies) == 1 else 'replies'}</div>{replies}</div>"
        if message.replies
        else ""
    )
    kind = "reply" if reply else "message"
    return (
        f'<div class="{kind}" data-id="{esc(message.id)}">'
        f'<div class="meta"><b>callbridge</b> <span class="time">{esc(message.at)}</span>'
        f"{edited}</div>"
        f'<div class="body">{message.html}</div>{thread}</div>'
    )


def board_html(channels: Iterable[PreviewChannel]) -> str:
    """Every channel with its messages, newest first (a thread's replies oldest first), as
    the page's board."""
    out = []
    for channel in channels:
        title = channel.name or channel.channel
        messages = "".join(_message(m) for m in reversed(channel.messages)) or (
            '<div class="empty">no messages yet</div>'
        )
        out.append(
            f'<section class="channel {esc(channel.platform)}" data-channel="{esc(title)}">'
            f'<h2><span class="icon">{_ICON.get(channel.platform, "?")}</span>{esc(title)}'
            f" <small>{esc(channel.platform)} · {esc(channel.channel)}</small></h2>"
            f'<div class="messages">{messages}</div></section>'
        )
    return "".join(out) or '<div class="empty">no destinations</div>'
