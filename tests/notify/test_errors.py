"""The helpers both platform clients share: Retry-After, answers of an unexpected shape, how
a call is counted."""

from __future__ import annotations

import msgspec
import pytest

from bridge.notify.calls import call_result
from bridge.notify.errors import (
    AuthError,
    PermanentError,
    RetryableError,
    parse_answer,
    retry_after_seconds,
)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        ("2.5", 2.5),
        ("0", 0.0),
        (" 3 ", 3.0),  # whitespace around the number is tolerated by float()
        (None, None),  # no header
        ("", None),
        ("soon", None),
        ("Wed, 21 Oct 2026 07:28:00 GMT", None),  # the HTTP-date form: not used by either API
        ("-1", None),
        ("inf", None),
        ("nan", None),
    ],
)
def test_retry_after_seconds(header: object, seconds: float | None) -> None:
    assert retry_after_seconds(header) == seconds


class _Posted(msgspec.Struct):
    channel: str
    ts: str


def test_an_answer_of_the_expected_shape_is_converted() -> None:
    posted = parse_answer(
        {"channel": "C1", "ts": "1.2", "ok": True},
        _Posted,
        platform="slack",
        method="chat.postMessage",
        check="is SLACK_API_URL a Slack Web API?",
    )
    assert posted == _Posted(channel="C1", ts="1.2")


def test_an_answer_of_another_shape_is_a_permanent_error_that_says_what_to_check() -> None:
    with pytest.raises(PermanentError) as caught:
        parse_answer(
            {"channel": "C1"},  # no ts: not what chat.postMessage answers
            _Posted,
            platform="slack",
            method="chat.postMessage",
            check="is SLACK_API_URL a Slack Web API?",
        )
    err = caught.value
    assert (err.platform, err.method, err.code) == (
        "slack",
        "chat.postMessage",
        "unexpected_response",
    )
    assert str(err).startswith("Slack chat.postMessage answered in an unexpected shape (")
    assert str(err).endswith("; is SLACK_API_URL a Slack Web API?")


@pytest.mark.parametrize(
    ("err", "not_found", "counted"),
    [
        (RetryableError("x", platform="slack", method="m", code="ratelimited"), None,
         "ratelimited"),
        (RetryableError("x", platform="slack", method="m", code="http_503"), None, "retryable"),
        (AuthError("x", platform="teams", method="m", code="invalid_auth"), None, "auth"),
        (PermanentError("x", platform="slack", method="m", code="users_not_found"),
         "users_not_found", "not_found"),
        (PermanentError("x", platform="slack", method="m", code="users_not_found"),
         None, "permanent"),
        (PermanentError("x", platform="teams", method="m", code="forbidden"),
         "not_found", "permanent"),
    ],
)  # fmt: skip
def test_how_both_clients_count_a_failed_call(err, not_found, counted) -> None:
    assert call_result(err, not_found) == counted
