"""systemd/slack-app-manifest.yaml asks for exactly the scopes of the methods callbridge calls."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from bridge.ingest import slack_actions

REPO = Path(__file__).resolve().parent.parent
MANIFEST = yaml.safe_load((REPO / "systemd" / "slack-app-manifest.yaml").read_text())

# Slack's documented bot scope for each Web API method (docs.slack.dev, reference/methods),
# written out by hand; private channels need groups:history where public ones need
# channels:history, and users:read.email is only granted together with users:read.
SCOPES_OF = {
    "auth.test": set(),
    "chat.postMessage": {"chat:write"},
    "chat.update": {"chat:write"},
    "chat.delete": {"chat:write"},
    "conversations.history": {"channels:history", "groups:history"},
    "conversations.replies": {"channels:history", "groups:history"},
    "users.lookupByEmail": {"users:read", "users:read.email"},
}


def methods_called() -> set[str]:
    """The Web API methods the Slack client calls (`self._client.chat_postMessage(...)`)."""
    source = (REPO / "bridge" / "notify" / "slack.py").read_text(encoding="utf-8")
    calls = re.findall(r"self\._client\.([a-z]+)_([A-Za-z]+)\b", source)
    return {f"{group}.{name}" for group, name in calls}


def test_the_client_calls_only_methods_whose_scopes_are_known() -> None:
    assert methods_called() == set(SCOPES_OF)


def test_the_manifest_asks_for_exactly_those_scopes() -> None:
    needed = set().union(*(SCOPES_OF[m] for m in methods_called()))
    bot = MANIFEST["oauth_config"]["scopes"]["bot"]
    assert sorted(bot) == sorted(needed)
    assert len(bot) == len(set(bot))
    assert "user" not in MANIFEST["oauth_config"]["scopes"]


def test_a_long_lived_bot_token_and_the_buttons_request_url() -> None:
    settings = MANIFEST["settings"]
    assert settings["token_rotation_enabled"] is False
    assert settings["socket_mode_enabled"] is False
    # The interactivity Request URL is the endpoint bridge/ingest/slack_actions.py serves.
    assert settings["interactivity"] == {
        "is_enabled": True,
        "request_url": "https://YOUR-HOST" + slack_actions.PATH,
    }
    assert MANIFEST["features"]["bot_user"]["display_name"]
    assert len(MANIFEST["display_information"]["description"]) <= 140  # Slack's limit
