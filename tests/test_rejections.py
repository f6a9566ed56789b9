"""Refused requests are logged, at most once per reason and interval, with a count of the rest."""

from __future__ import annotations

from structlog.testing import capture_logs

from bridge.ingest.rejections import RejectionLog


def test_one_line_per_reason_and_interval_counting_what_was_left_out() -> None:
    now = [100.0]
    rejections = RejectionLog("test.refused", interval=10.0, monotonic=lambda: now[0])
    with capture_logs() as logged:
        assert rejections.refused("forged", "192.0.2.1")
        for _ in range(3):
            assert not rejections.refused("forged", "192.0.2.2")
        assert rejections.refused("stale", "192.0.2.3", detail="old")  # another reason
        now[0] += 10.0
        assert rejections.refused("forged", "192.0.2.4")
    assert [(e["reason"], e["client"], e["left_out_since_last"]) for e in logged] == [
        ("forged", "192.0.2.1", 0),
        ("stale", "192.0.2.3", 0),
        ("forged", "192.0.2.4", 3),
    ]
    assert {e["log_level"] for e in logged} == {"warning"}
    assert logged[1]["detail"] == "old"


def test_an_unknown_client_is_said_so() -> None:
    with capture_logs() as logged:
        RejectionLog("test.refused").refused("forged", None)
    assert logged[0]["client"] == "unknown"
