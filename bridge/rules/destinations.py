"""The ``destinations:`` block of a rules file: named Slack channels and Teams conversations,
checked strictly (IDs, not names; mentions in the platform's own syntax)."""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import urlsplit

from bridge.core.mentions import is_slack_markup
from bridge.core.urls import without_password
from bridge.rules.fields import Reader
from bridge.rules.model import Destination, SlackTarget, TeamsTarget
from bridge.rules.yamlpos import Node, join

_SLACK_CHANNEL: Final = re.compile(r"^[CGD][A-Z0-9]{6,}$")
# Channels "19:…@thread.tacv2", chats "19:…@thread.v2", personal chats "a:…", "8:orgid:…".
_TEAMS_CONVERSATION: Final = re.compile(r"^[0-9a-z]+:\S+$", re.IGNORECASE)
_SLACK_MENTION: Final = re.compile(r"^<(@[UW][A-Z0-9]+|!subteam\^[A-Z0-9]+|!here|!channel)>$")
SLACK_MENTION_HINT: Final = (
    "write a Slack mention like <@U0123ABCD> (a person), <!subteam^S0123ABCD> (a user group) "
    "or <!here>"
)


SERVICE_URL_RULE: Final = (
    "an https:// URL (http:// only to a loopback address, e.g. a local test server), "
    "e.g. https://smba.trafficmanager.net/teams/"
)
_LOOPBACK_HOSTS: Final = ("localhost", "127.0.0.1", "::1")


def service_url(text: str) -> str:
    """A Bot Connector service URL, by the one rule for ``TEAMS_SERVICE_URL`` and a
    destination's ``service_url:``: https (http only to loopback), with a host, and written
    with a trailing slash. Raises ``ValueError`` saying what is expected."""
    value = text.strip()
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:  # a URL urlsplit cannot read (http://[::1)
        parts, host = urlsplit(""), None
    secure = parts.scheme == "https" or (parts.scheme == "http" and host in _LOOPBACK_HOSTS)
    if not host or not secure or parts.query or parts.fragment:
        raise ValueError(f"expected {SERVICE_URL_RULE}, got {without_password(text)!r}")
    return value if value.endswith("/") else value + "/"


def read_destinations(reader: Reader, node: Node | None) -> dict[str, Destination]:
    out: dict[str, Destination] = {}
    if node is None:
        return out
    block = reader.mapping(node, "destinations", allowed=None, what="a mapping of names")
    if block is None:
        return out
    if not block.items:
        reader.error(block, "destinations", "define at least one destination")
    for key, value in block.items:
        path = join("destinations", key.text)
        out[key.text] = Destination(name=key.text)  # known name, even when invalid below
        spec = reader.mapping(value, path, allowed=("slack", "teams"))
        if spec is None:
            continue
        slack, teams = spec.get("slack"), spec.get("teams")
        # Both read, whatever else is wrong: every problem of the file in one pass.
        slack_target = None if slack is None else _slack(reader, slack, join(path, "slack"))
        teams_target = None if teams is None else _teams(reader, teams, join(path, "teams"))
        if (slack is None) == (teams is None):
            reader.error(spec, path, "give exactly one of `slack` or `teams`")
        elif slack is not None:
            out[key.text] = Destination(key.text, slack=slack_target)
        else:
            out[key.text] = Destination(key.text, teams=teams_target)
    # Problems above were recorded; placeholders only keep name lookups quiet.
    return out


def _slack(reader: Reader, node: Node, path: str) -> SlackTarget | None:
    spec = reader.mapping(
        node,
        path,
        allowed=("channel", "mention"),
        required={"channel": "the channel ID, e.g. C0123456789"},
    )
    if spec is None or (channel_node := spec.get("channel")) is None:
        return None
    channel = reader.text(channel_node, join(path, "channel"), example="C0123456789")
    if channel is not None and not _SLACK_CHANNEL.match(channel):
        reader.error(
            channel_node,
            join(path, "channel"),
            f'"{channel}" is not a Slack channel ID (use the '
            "ID like C0123456789: channel details, at the bottom; names can change)",
        )
    mention = _mentions(reader, spec.get("mention"), join(path, "mention"), slack=True)
    return SlackTarget(channel or "", mention)


def _teams(reader: Reader, node: Node, path: str) -> TeamsTarget | None:
    spec = reader.mapping(
        node,
        path,
        allowed=("conversation", "service_url", "mention"),
        required={"conversation": 'the conversation ID, e.g. "19:abc...@thread.tacv2"'},
    )
    if spec is None or (conv_node := spec.get("conversation")) is None:
        return None
    conversation = reader.text(
        conv_node, join(path, "conversation"), example='"19:abc@thread.tacv2"'
    )
    if conversation is not None and not _TEAMS_CONVERSATION.match(conversation):
        reader.error(
            conv_node,
            join(path, "conversation"),
            f'"{conversation}" is not a Teams conversation ID: a channel\'s looks like '
            '"19:abc123@thread.tacv2" (the URL-decoded part after /channel/ in the '
            'channel\'s "Get link to channel"); a name is refused because names change',
        )
    url = None
    if (url_node := spec.get("service_url")) is not None:
        text = reader.text(url_node, join(path, "service_url"))
        try:
            url = None if text is None else service_url(text)
        except ValueError:
            reader.error(url_node, join(path, "service_url"), f'"{text}" is not {SERVICE_URL_RULE}')
    mention = _mentions(reader, spec.get("mention"), join(path, "mention"), slack=False)
    return TeamsTarget(conversation or "", url, mention)


def _mentions(reader: Reader, node: Node | None, path: str, *, slack: bool) -> tuple[str, ...]:
    if node is None:
        return ()
    out: list[str] = []
    for value, item, item_path in reader.texts(node, path, example="<!subteam^S0123ABCD>"):
        if slack and not _SLACK_MENTION.match(value):
            reader.error(
                item, item_path, f'"{value}" is not a Slack mention ({SLACK_MENTION_HINT})'
            )
        elif not slack and is_slack_markup(value):
            reader.error(
                item,
                item_path,
                f'"{value}" is a Slack mention: a Teams destination mentions people by their '
                "e-mail address (sign-in name), e.g. jan@example.com",
            )
        out.append(value)
    return tuple(out)
