"""POST /notifications and the probes, over real HTTP against a real store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from bridge import logs
from bridge.secret import Secret
from bridge.service.app import open_store
from bridge.store import StoreError
from tests.support.harness import (
    FIXTURES,
    body,
    fixture_bytes,
    make_settings,
    payload,
    running_bridge,
)

TOKEN = "s3cret-webhook-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def fixture_names() -> list[str]:
    names = sorted(p.name for p in FIXTURES.glob("*.json"))
    assert names, f"no provider fixtures found in {FIXTURES}"
    return names


@pytest.mark.parametrize("name", fixture_names())
async def test_every_provider_fixture_is_accepted(tmp_path: Path, name: str) -> None:
    async with running_bridge(make_settings(tmp_path)) as (bridge, client, _sink):
        response = await client.post("/notifications", data=fixture_bytes(name), headers=AUTH)
        assert response.status == 200
        assert await response.json() == {"status": "accepted"}
        call_id = json.loads(fixture_bytes(name))["call_id"]
        story = await bridge.store.story(call_id)
        assert story is not None
        assert [e.call_id for e in story.events] == [call_id]


async def test_redelivery_is_a_duplicate_and_changes_nothing(tmp_path: Path) -> None:
    async with running_bridge(make_settings(tmp_path)) as (bridge, client, chat):
        first = await client.post("/notifications", data=body(), headers=AUTH)
        assert await first.json() == {"status": "accepted"}
        await bridge.dispatcher.drained()
        assert bridge.delivery is not None
        await bridge.delivery.settled()
        posted = list(chat.sent)
        # Same event, other key order and whitespace, plus an unknown field: still a duplicate.
        doc = dict(reversed(list(payload().items())))
        doc["id"] = 42
        again = await client.post("/notifications", data=json.dumps(doc, indent=2), headers=AUTH)
        assert again.status == 200
        assert await again.json() == {"status": "duplicate"}
        await bridge.dispatcher.drained()
        await bridge.delivery.settled()
        story = await bridge.store.story("abc-1700000000.1")
        assert story is not None
        assert len(story.events) == 1
        # One live root and one thread reply ("ringing B"), and nothing more after the dup.
        assert [(s.action, s.slot.split(":")[0]) for s in posted] == [
            ("post", "root"),
            ("post", "reply"),
        ]
        assert chat.sent == posted


@pytest.mark.parametrize(
    ("headers", "query"),
    [
        ({"Authorization": f"Bearer {TOKEN}"}, ""),
        ({"Authorization": f"Token {TOKEN}"}, ""),
        ({}, f"?token={TOKEN}"),
    ],
)
async def test_token_is_accepted_in_every_documented_place(
    tmp_path: Path, headers: dict[str, str], query: str
) -> None:
    async with running_bridge(make_settings(tmp_path)) as (_b, client, _s):
        response = await client.post(f"/notifications{query}", data=body(), headers=headers)
        assert response.status == 200


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-token"}, {"Authorization": f"Basic {TOKEN}"}],
)
async def test_missing_or_wrong_token_is_401(tmp_path: Path, headers: dict[str, str]) -> None:
    async with running_bridge(make_settings(tmp_path)) as (bridge, client, _s):
        response = await client.post("/notifications", data=body(), headers=headers)
        assert response.status == 401
        assert "missing or wrong token" in (await response.json())["error"]
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert await bridge.store.story("abc-1700000000.1") is None


async def test_refused_token_and_oversized_body_are_logged_without_the_token(
    tmp_path: Path,
) -> None:
    wrong = "wrong-token-typed-into-the-portal"
    big = json.dumps(payload(padding="x" * (70 * 1024))).encode()
    async with running_bridge(make_settings(tmp_path)) as (_b, client, _s):
        with capture_logs() as logged:
            no_token = await client.post("/notifications", data=body())
            too_large = await client.post("/notifications", data=big, headers=AUTH)
        assert (no_token.status, too_large.status) == (401, 413)
        refused = [e for e in logged if e["event"] == "ingest.notification_refused"]
        assert [(e["reason"], e["detail"], e["log_level"]) for e in refused] == [
            ("unauthorized", "no token", "warning"),
            ("too_large", "body over 64 KiB", "warning"),
        ]
        assert all(e["client"] == "127.0.0.1" for e in refused)

    (tmp_path / "wrong").mkdir()
    async with running_bridge(make_settings(tmp_path / "wrong")) as (_b, client, _s):
        with capture_logs() as logged:
            response = await client.post(
                "/notifications", data=body(), headers={"Authorization": f"Bearer {wrong}"}
            )
        assert response.status == 401
        refused = [e for e in logged if e["event"] == "ingest.notification_refused"]
        assert [(e["reason"], e["detail"]) for e in refused] == [("unauthorized", "wrong token")]
        assert wrong not in repr(logged)
        assert TOKEN not in repr(logged)


async def test_a_flood_of_refused_tokens_is_logged_once_per_interval(tmp_path: Path) -> None:
    async with running_bridge(make_settings(tmp_path)) as (_b, client, _s):
        with capture_logs() as logged:
            for n in range(20):
                response = await client.post(f"/notifications?token=guess-{n}", data=body())
                assert response.status == 401
        refused = [e for e in logged if e["event"] == "ingest.notification_refused"]
        assert [e["reason"] for e in refused] == ["unauthorized"]  # 19 left out (10 s)
        assert "guess-" not in repr(logged)


async def test_no_token_configured_accepts_anyone(tmp_path: Path) -> None:
    async with running_bridge(make_settings(tmp_path, webhook_token=None)) as (_b, client, _s):
        response = await client.post("/notifications", data=body())
        assert response.status == 200


async def test_not_json_is_400(tmp_path: Path) -> None:
    async with running_bridge(make_settings(tmp_path)) as (_b, client, _s):
        response = await client.post("/notifications", data=b"call_id=1&status=x", headers=AUTH)
        assert response.status == 400
        assert (await response.json())["error"].startswith("body is not valid JSON")


@pytest.mark.parametrize("chunked", [False, True])
async def test_body_over_64_kib_is_413(tmp_path: Path, chunked: bool) -> None:
    doc = payload()
    doc["padding"] = "x" * (64 * 1024)
    data = json.dumps(doc).encode()

    async def chunks() -> Any:
        for start in range(0, len(data), 4096):
            yield data[start : start + 4096]

    async with running_bridge(make_settings(tmp_path)) as (bridge, client, _s):
        response = await client.post(
            "/notifications", data=chunks() if chunked else data, headers=AUTH
        )
        assert response.status == 413
        assert (await response.json())["error"] == "body is larger than 64 KiB"
        assert await bridge.store.story("abc-1700000000.1") is None


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            payload(destination={"number": "+31508009000", "targets": [{"number": 31508009000}]}),
            "destination.targets[0].number: expected string, got integer",
        ),
        (payload(caller="+31501234567"), "caller: expected object, got string"),
        (
            {k: v for k, v in payload().items() if k != "call_id"},
            "call_id: required field is missing",
        ),
        (
            payload(timestamp="yesterday"),
            "timestamp: expected an ISO 8601 date-time, got 'yesterday'",
        ),
        (
            payload(status="on-hold"),
            "status: unknown status 'on-hold' (expected one of created, ringing, in-progress, "
            "warm-transfer, cold-transfer, transfer, ended)",
        ),
        (
            payload(direction="sideways"),
            "direction: expected 'inbound' or 'outbound', got 'sideways'",
        ),
        ([payload()], "expected object, got array"),
    ],
)
async def test_schema_errors_are_422_naming_the_field(
    tmp_path: Path, doc: Any, message: str
) -> None:
    async with running_bridge(make_settings(tmp_path)) as (_b, client, _s):
        response = await client.post("/notifications", data=json.dumps(doc), headers=AUTH)
        assert response.status == 422
        assert (await response.json())["error"] == message


async def test_other_versions_are_rejected_clearly(tmp_path: Path) -> None:
    async with running_bridge(make_settings(tmp_path)) as (_b, client, _s):
        response = await client.post("/notifications", data=body(version="v1"), headers=AUTH)
        assert response.status == 422
        error = (await response.json())["error"]
        assert error.startswith("version: unsupported version 'v1'")
        assert "v2" in error


async def test_wrong_method_is_405_and_unknown_path_404(tmp_path: Path) -> None:
    async with running_bridge(make_settings(tmp_path)) as (_b, client, _s):
        response = await client.get("/notifications")
        assert response.status == 405
        assert response.headers["Allow"] == "POST"
        assert "use POST" in (await response.json())["error"]
        missing = await client.post("/notification", data=body(), headers=AUTH)
        assert missing.status == 404
        assert "error" in await missing.json()


class FailingStore:
    """A store whose writes fail (disk full, database gone) while reads still answer."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def add_event(self, *args: Any, **kwargs: Any) -> Any:
        raise StoreError("database or disk is full")

    async def ping(self) -> None:
        raise StoreError("database or disk is full")


async def test_store_failure_is_503_with_retry_after(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    store = FailingStore(open_store(settings.store))
    async with running_bridge(settings, store=store) as (_bridge, client, _s):
        response = await client.post("/notifications", data=body(), headers=AUTH)
        assert response.status == 503
        assert response.headers["Retry-After"] == "5"
        ready = await client.get("/readyz", headers=AUTH)
        assert ready.status == 503
        checks = (await ready.json())["checks"]
        assert checks["store"] == {"status": "failing", "detail": "database or disk is full"}
        metrics = await (await client.get("/metrics")).text()
        assert 'callbridge_store_errors_total{operation="add_event"} 1.0' in metrics


async def test_probes_and_metrics(tmp_path: Path) -> None:
    async with running_bridge(make_settings(tmp_path)) as (_bridge, client, _s):
        assert (await client.get("/healthz")).status == 200
        ready = await client.get("/readyz", headers=AUTH)
        assert ready.status == 200
        report = await ready.json()
        assert set(report["checks"]) == {"store", "rules"}
        assert all(c["status"] == "ok" for c in report["checks"].values())
        assert report["delivery"] == "delivering"
        assert {c["status"] for c in report["chat"].values()} == {"ok"}
        await client.post("/notifications", data=body(), headers=AUTH)
        await client.post("/notifications", data=body(), headers=AUTH)
        await client.post("/notifications", data=b"{", headers=AUTH)
        text = await (await client.get("/metrics")).text()
        assert 'callbridge_events_received_total{result="accepted",status="ringing"} 1.0' in text
        assert 'callbridge_events_received_total{result="duplicate",status="ringing"} 1.0' in text
        assert 'callbridge_events_received_total{result="not_json",status="invalid"} 1.0' in text
        assert "callbridge_ingest_latency_seconds_count 3.0" in text


async def test_token_is_never_logged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    secret = "xoxb-very-secret-slack-token"
    settings = make_settings(tmp_path, slack_bot_token=Secret(secret))
    logs.configure(fmt="json", level="debug", secrets=settings.secrets())
    async with running_bridge(settings) as (bridge, client, _s):
        await client.post(f"/notifications?token={TOKEN}", data=body())
        await client.post("/notifications?token=wrong", data=body(call_id="x-2"))
        await bridge.dispatcher.drained()
        structlog.get_logger("test").info("settings", settings=repr(settings), token=secret)
    out = capsys.readouterr()
    assert "call_id" in out.out  # logging did happen
    for value in (TOKEN, secret):
        assert value not in out.out
        assert value not in out.err


async def test_each_event_is_logged_at_debug_level_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for level, logged in (("info", False), ("debug", True)):
        logs.configure(fmt="json", level=level)
        assert logs.debug_enabled() is logged
        (tmp_path / level).mkdir()
        async with running_bridge(make_settings(tmp_path / level)) as (bridge, client, _s):
            response = await client.post(f"/notifications?token={TOKEN}", data=body())
            assert response.status == 200
            await bridge.dispatcher.drained()
        out = capsys.readouterr().out
        assert ('"ingest.event"' in out) is logged
        assert ('"dispatch.planned"' in out) is logged
    logs.reset()
    assert logs.debug_enabled()  # unconfigured structlog logs everything
