"""Passwords in URLs are masked in messages and given to the log redaction safety net."""

from __future__ import annotations

import pytest

from bridge.core.urls import url_passwords, without_password


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://alice:s3cret@proxy.example:3128", "http://alice:***@proxy.example:3128"),
        ("postgresql://u:pw@db:5432/cb", "postgresql://u:***@db:5432/cb"),
        ("postgresql://u@db/cb", "postgresql://u@db/cb"),  # no password: nothing to hide
        ("http://alice:@proxy.example", "http://alice:@proxy.example"),
        ("https://slack.com/api/", "https://slack.com/api/"),
        (
            "postgresql://db/cb?password=pw&sslmode=require",
            "postgresql://db/cb?password=***&sslmode=require",
        ),
        ("host=db user=u password=pw dbname=cb", "host=db user=u password=*** dbname=cb"),
        # Written without percent-encoding: all of it is hidden, not what follows an @ or ?.
        ("postgresql://u:p@ss@db/cb", "postgresql://u:***@db/cb"),
        ("http://u:pa?ss#x@host/", "http://u:***@host/"),
        ("http://u:pa%40ss@host/", "http://u:***@host/"),
        # What urlsplit cannot read, and what is no URL at all.
        ("http://u:pw@[::1", "http://u:***@[::1"),
        ("u:pw@host", "u:pw@host"),
        ("", ""),
    ],
)
def test_without_password_hides_the_password_only(url: str, shown: str) -> None:
    assert without_password(url) == shown


@pytest.mark.parametrize(
    ("url", "passwords"),
    [
        ("http://alice:s3cret@proxy.example:3128", ["s3cret"]),
        ("http://u:pa%40ss@host/", ["pa%40ss", "pa@ss"]),  # as written and as sent
        ("postgresql://u:a@db/cb?password=b", ["a", "b"]),
        ("postgresql://u@db/cb", []),
        ("https://slack.com/api/", []),
    ],
)
def test_url_passwords_are_what_is_hidden(url: str, passwords: list[str]) -> None:
    assert url_passwords(url) == passwords
