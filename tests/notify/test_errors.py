"""The Retry-After parsing both platform clients share."""

from __future__ import annotations

import pytest

from bridge.notify.errors import retry_after_seconds


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
