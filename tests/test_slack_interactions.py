"""POST /slack/interactions through the HTTP surface: Slack's signed button clicks on a
callback case's alert are verified, stored, folded by the dispatcher; bad requests change
nothing; refusals are answered to the clicker alone through the payload's response URL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import structlog
from structlog.testing import capture_logs

from bridge import logs
from bridge.core.cases import CaseRef, fold
from bridge.store import StoreError
from bridge.store.sqlite import SqliteStore
from tests.support.clicks_env import KEY, REF, World, callback_call, clicks_bridge
from tests.support.slack_clicks import (
    FORM,
    PATH,
    SIGNING_SECRET,
    ResponseUrls,
    block_actions,
    form,
    sign,
    signed_headers,
)

# -- a valid click -----------------------------------------------------------------------------


async def test_a_claim_is_stored_and_the_alert_shows_it(tmp_path: Path) -> None:
    async with clicks_bridge(tmp_path) as world:
        await world.missed()
        world.clock.advance(timedelta(minutes=4))  # 12:05 UTC, 13:05 in Amsterdam
        before = len(world.chat.sent)

        response = await world.click("claim", user_id="U0ALICE", user="alice")
        assert response.status == 200
        assert await response.read() == b""  # Slack wants an empty 200
        [click] = await world.clicks()
        assert (click.action, click.user_id, click.user) == ("claim", "U0ALICE", "alice")
        assert (click.case_id, click.at) == ("miss-1", world.clock.now)

        # The dispatcher was told (its poller is off in these tests): the alert's story is
        # refolded, the alert updated, and its thread tells the claim.
        await world.settle()
        after = world.chat.sent[before:]
        assert [s.action for s in after if s.slot == "missed"] == ["update"]
        [reply] = [s.text for s in after if s.slot.startswith("alert:")]
        assert "13:05" in reply
        assert "alice is calling back" in reply
        [case] = fold(KEY, (await world.bridge.store.case_facts([KEY]))[KEY].facts, world.clock())
        assert case.claim is not None
        assert case.claim.user == "alice"
        assert world.responses.answers == []  # nothing to tell the claimer


async def test_a_retried_click_is_a_duplicate_and_changes_nothing_twice(tmp_path: Path) -> None:
    async with clicks_bridge(tmp_path) as world:
        await world.missed()
        first = await world.click("claim", action_ts="1700000000.000777")
        assert first.status == 200
        await world.settle()
        sent = len(world.chat.sent)
        world.clock.advance(timedelta(seconds=2))
        # The same press signed anew (another timestamp, so another signature): a retry.
        again = await world.click("claim", action_ts="1700000000.000777")
        assert again.status == 200
        assert await again.read() == b""
        await world.settle()
        assert len(await world.clicks()) == 1
        assert len(world.chat.sent) == sent
        assert await world.bridge.store.dirty_stories() == []


async def test_clicks_are_counted_by_button_and_result(tmp_path: Path) -> None:
    async with clicks_bridge(tmp_path) as world:
        await world.missed()
        body, headers = world.request("claim")
        assert (await world.post(body, headers)).status == 200
        assert (await world.post(body, headers)).status == 401  # the exact request again
        retry = await world.click(
            "claim", action_ts=json.loads(_payload(body))["actions"][0]["action_ts"]
        )
        assert retry.status == 200
        assert (await world.post(b"payload=%7B", headers)).status == 401  # signed for another body
        await world.settle()
        text = world.bridge.metrics.render().decode()
        counted = {
            line.split(" ")[0]: float(line.split(" ")[1])
            for line in text.splitlines()
            if line.startswith("callbridge_slack_clicks_total{")
        }
        assert counted == {
            'callbridge_slack_clicks_total{action="claim",result="accepted"}': 1.0,
            'callbridge_slack_clicks_total{action="claim",result="refused"}': 1.0,
            'callbridge_slack_clicks_total{action="claim",result="duplicate"}': 1.0,
            'callbridge_slack_clicks_total{action="unknown",result="refused"}': 1.0,
        }


def _payload(body: bytes) -> str:
    return parse_qs(body.decode())["payload"][0]


# -- signatures ---------------------------------------------------------------------------------


async def test_a_replayed_request_is_refused_and_stored_once(tmp_path: Path) -> None:
    async with clicks_bridge(tmp_path) as world:
        await world.missed()
        body, headers = world.request("claim")
        assert (await world.post(body, headers)).status == 200
        await world.settle()
        sent = len(world.chat.sent)
        world.clock.advance(timedelta(seconds=30))  # still inside the 5-minute window
        replay = await world.post(body, headers)
        assert replay.status == 401
        assert "replay" in (await replay.json())["error"]
        await world.settle()
        assert len(await world.clicks()) == 1
        assert len(world.chat.sent) == sent


@pytest.mark.parametrize(
    ("age", "accepted"),
    [
        (timedelta(minutes=4, seconds=59), True),
        (timedelta(minutes=5, seconds=1), False),
        (-timedelta(minutes=5, seconds=1), False),  # from the future
    ],
)
async def test_a_signature_older_than_five_minutes_is_stale(
    tmp_path: Path, age: timedelta, accepted: bool
) -> None:
    async with clicks_bridge(tmp_path) as world:
        await world.missed()
        body = form(block_actions("claim", REF, response_url=world.responses.url()))
        response = await world.post(body, signed_headers(body, world.clock.now - age))
        if accepted:
            assert response.status == 200
            assert len(await world.clicks()) == 1
        else:
            assert response.status == 401
            assert "5 minutes" in (await response.json())["error"]
            assert await world.clicks() == []


def _forged(world: World) -> tuple[bytes, dict[str, str]]:
    body = form(block_actions("claim", REF))
    return body, signed_headers(body, world.clock.now, secret="not-the-signing-secret")


def _tampered_after_signing(world: World) -> tuple[bytes, dict[str, str]]:
    _body, headers = world.request("claim")
    other = CaseRef("default", "+31201111111", "miss-1")
    return form(block_actions("claim", other)), headers


def _resigned_elsewhere(world: World) -> tuple[bytes, dict[str, str]]:
    body, headers = world.request("claim")
    timestamp = int(world.clock.now.timestamp()) - 1  # a signature of another moment
    return body, {**headers, "X-Slack-Signature": sign(body, timestamp)}


@pytest.mark.parametrize(
    "request_of", [_forged, _tampered_after_signing, _resigned_elsewhere], ids=lambda f: f.__name__
)
async def test_a_forged_signature_is_refused_and_changes_nothing(
    tmp_path: Path, request_of: Callable[[World], tuple[bytes, dict[str, str]]]
) -> None:
    async with clicks_bridge(tmp_path) as world:
        await world.missed()
        response = await world.post(*request_of(world))
        assert response.status == 401
        assert "X-Slack-Signature does not match" in (await response.json())["error"]
        assert await world.clicks() == []
        assert await world.bridge.store.dirty_stories() == []


# -- malformed requests ---------------------------------------------------------------------------


def _signed(world: World, body: bytes, **kwargs: Any) -> tuple[bytes, dict[str, str]]:
    return body, signed_headers(body, world.clock.now, **kwargs)


BAD: dict[str, tuple[Callable[[World], tuple[bytes, dict[str, str]]], str]] = {
    "no headers": (
        lambda w: (form(block_actions("claim", REF)), {"Content-Type": FORM}),
        "missing X-Slack-Request-Timestamp or X-Slack-Signature",
    ),
    "wrong content type": (
        lambda w: _signed(
            w, json.dumps(block_actions("claim", REF)).encode(), content_type="application/json"
        ),
        "expected Content-Type application/x-www-form-urlencoded",
    ),
    "timestamp not a number": (
        lambda w: (
            form(block_actions("claim", REF)),
            {
                "Content-Type": FORM,
                "X-Slack-Request-Timestamp": "yesterday",
                "X-Slack-Signature": "v0=00",
            },
        ),
        "X-Slack-Request-Timestamp is not a number",
    ),
    "no payload": (lambda w: _signed(w, b"token=x&team_id=T0FAKE"), "no `payload` field"),
    "malformed JSON": (lambda w: _signed(w, form("{not json")), "payload is not a JSON"),
    "not block_actions": (
        lambda w: _signed(w, form({**block_actions("claim", REF), "type": "view_submission"})),
        "expected a block_actions payload, got type 'view_submission'",
    ),
    "no user": (
        lambda w: _signed(
            w, form({k: v for k, v in block_actions("claim", REF).items() if k != "user"})
        ),
        "payload: Object missing required field `user`",
    ),
    "unknown action": (
        lambda w: _signed(w, form(block_actions("x", REF, action_id="someone_elses_button"))),
        "action_id 'someone_elses_button' is not a case button",
    ),
    "not one of the case actions": (
        lambda w: _signed(w, form(block_actions("escalate", REF))),
        "action_id 'callbridge_case_escalate' is not a case button",
    ),
    "tampered value": (
        lambda w: _signed(w, form(block_actions("claim", None, value='{"case": "miss-1"}'))),
        "the button's value is not a case reference",
    ),
    "empty value": (
        lambda w: _signed(w, form(block_actions("claim", CaseRef("default", "", "")))),
        "the button's value names no case",
    ),
}


@pytest.mark.parametrize("name", list(BAD))
async def test_a_malformed_request_is_refused_with_400_and_changes_nothing(
    tmp_path: Path, name: str
) -> None:
    make, expected = BAD[name]
    async with clicks_bridge(tmp_path) as world:
        await world.missed()
        sent = len(world.chat.sent)
        response = await world.post(*make(world))
        assert response.status == 400, await response.text()
        assert expected in (await response.json())["error"]
        await world.settle()
        assert await world.clicks() == []
        assert len(world.chat.sent) == sent
        assert world.responses.answers == []


async def test_a_body_over_512_kib_is_refused_before_it_is_read(tmp_path: Path) -> None:
    async with clicks_bridge(tmp_path) as world:
        payload = {**block_actions("claim", REF), "padding": "x" * 600_000}
        response = await world.post(*_signed(world, form(payload)))
        assert response.status == 413
        assert "larger than 512 KiB" in (await response.json())["error"]
        assert await world.clicks() == []
        # Slack's real payloads carry the whole message clicked: a large one still fits.
        world.clock.advance(timedelta(seconds=1))
        await world.missed()
        big = {**block_actions("claim", REF), "padding": "x" * 200_000}
        assert (await world.post(*_signed(world, form(big)))).status == 200


async def test_refusals_are_logged_with_the_client_and_rate_limited(tmp_path: Path) -> None:
    async with clicks_bridge(tmp_path) as world:
        with capture_logs() as logged:
            for _ in range(5):
                assert (await world.post(*_forged(world))).status == 401
            assert (await world.post(*_signed(world, form("{not json")))).status == 400
        refused = [e for e in logged if e["event"] == "slack.interaction_refused"]
        assert [(e["reason"], e["client"], e["log_level"]) for e in refused] == [
            ("forged", "127.0.0.1", "warning"),
            ("malformed", "127.0.0.1", "warning"),
        ]


async def test_the_signing_secret_is_never_logged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with clicks_bridge(tmp_path) as world:
        logs.configure(fmt="json", level="debug", secrets=world.bridge.settings.secrets())
        await world.missed()
        assert (await world.click("claim")).status == 200
        assert (await world.post(*_forged(world))).status == 401
        await world.settle()
        structlog.get_logger("test").info("oops", value=SIGNING_SECRET)
    out = capsys.readouterr()
    assert '"slack.click"' in out.out  # logging did happen
    assert SIGNING_SECRET not in out.out + out.err


# -- not configured, store down --------------------------------------------------------------------


async def test_without_a_signing_secret_the_endpoint_is_not_there(tmp_path: Path) -> None:
    async with clicks_bridge(tmp_path, signing_secret=None) as world:
        assert not world.bridge.settings.slack_interactivity
        response = await world.click("claim")
        assert response.status == 404
        assert "set SLACK_SIGNING_SECRET" in (await response.json())["error"]
        assert (await world.client.get(PATH)).status == 405
        assert await world.clicks() == []


class FailingClicks(SqliteStore):
    async def add_click(self, *args: Any, **kwargs: Any) -> Any:
        raise StoreError("disk I/O error (test)")


async def test_a_click_the_store_cannot_keep_gets_503(tmp_path: Path) -> None:
    store = FailingClicks(tmp_path / "bridge.db")
    async with clicks_bridge(tmp_path, store=store) as world:
        await world.missed()
        response = await world.click("claim")
        assert response.status == 503
        assert response.headers["Retry-After"] == "5"
        assert "could not be stored" in (await response.json())["error"]
        await world.settle()
        assert await world.clicks() == []
        assert world.responses.answers == []


# -- refusals, told to the clicker alone ---------------------------------------------------------


async def test_a_second_claim_is_refused_to_the_clicker_naming_the_claimer(tmp_path: Path) -> None:
    async with clicks_bridge(tmp_path) as world:
        await world.missed()
        world.clock.advance(timedelta(minutes=4))  # 13:05 in Amsterdam
        assert (await world.click("claim", user_id="U0ALICE", user="alice")).status == 200
        await world.settle()
        sent = len(world.chat.sent)
        world.clock.advance(timedelta(minutes=2))
        bob_url = world.responses.url()
        bob = await world.click("claim", user_id="U0BOB", user="bob", response_url=bob_url)
        assert bob.status == 200  # answered at once; the refusal follows in the background
        await world.settle()
        [answer] = world.responses.answers
        assert bob_url.endswith(answer.path)
        assert answer.body == {
            "response_type": "ephemeral",
            "replace_original": False,
            "text": "alice is already calling back (since 13:05).",
        }
        assert len(world.chat.sent) == sent  # the alert does not change
        [case] = fold(KEY, (await world.bridge.store.case_facts([KEY]))[KEY].facts, world.clock())
        assert case.claim is not None
        assert case.claim.user_id == "U0ALICE"


async def test_anyone_may_release_and_is_told_whose_claim_it_was(tmp_path: Path) -> None:
    async with clicks_bridge(tmp_path) as world:
        await world.missed()
        world.clock.advance(timedelta(minutes=4))
        assert (await world.click("claim", user_id="U0ALICE", user="alice")).status == 200
        world.clock.advance(timedelta(minutes=3))
        assert (await world.click("release", user_id="U0BOB", user="bob")).status == 200
        await world.settle()
        assert world.responses.texts() == [
            "You released alice's claim (alice was calling back since 13:05): nobody is "
            "calling back now."
        ]
        claimed, released = [s.text for s in world.chat.sent if s.slot.startswith("alert:")]
        assert "alice is calling back" in claimed
        assert "13:08" in released
        assert "Released by bob" in released


async def test_a_click_on_a_case_closed_by_hand_is_answered_as_closed(tmp_path: Path) -> None:
    async with clicks_bridge(tmp_path) as world:
        await world.missed()
        world.clock.advance(timedelta(minutes=4))
        assert (await world.click("claim", user_id="U0ALICE", user="alice")).status == 200
        world.clock.advance(timedelta(minutes=10))
        assert (await world.click("done", user_id="U0BOB", user="bob")).status == 200
        await world.settle()
        sent = len(world.chat.sent)
        world.clock.advance(timedelta(minutes=1))
        for action in ("claim", "release", "done"):
            assert (await world.click(action, user_id="U0CAROL", user="carol")).status == 200
        await world.settle()
        closed = "This case is closed: closed by bob at 13:15. Nothing changed."
        assert world.responses.texts() == [
            "You closed the case alice had claimed (calling back since 13:05).",
            closed,
            closed,
            closed,
        ]
        assert len(world.chat.sent) == sent
        [case] = fold(KEY, (await world.bridge.store.case_facts([KEY]))[KEY].facts, world.clock())
        assert case.closing is not None
        assert (case.closing.how, case.closing.by) == ("done", "bob")


async def test_a_click_on_a_case_the_call_stream_closed_is_answered_as_closed(
    tmp_path: Path,
) -> None:
    async with clicks_bridge(tmp_path) as world:
        await world.missed()
        world.clock.advance(timedelta(minutes=20))
        # Alice calls the customer back, dialling the number nationally; it is answered.
        await world.send(callback_call("back-1", world.clock.now, "0501234567", "Alice"))
        world.clock.advance(timedelta(minutes=2))
        await world.settle()
        assert (await world.click("claim", user_id="U0BOB", user="bob")).status == 200
        await world.settle()
        assert world.responses.texts() == [
            "This case is closed: called back by Alice at 13:21. Nothing changed."
        ]


async def test_an_answer_never_goes_to_a_host_the_payload_names(tmp_path: Path) -> None:
    async with clicks_bridge(tmp_path) as world, ResponseUrls() as elsewhere:
        await world.missed()
        assert (await world.click("claim", user_id="U0ALICE", user="alice")).status == 200
        world.clock.advance(timedelta(minutes=1))
        bob = await world.click("claim", user_id="U0BOB", user="bob", response_url=elsewhere.url())
        assert bob.status == 200  # the click itself is Slack's, signed: it is kept
        await world.settle()
        assert len(await world.clicks()) == 2
        assert elsewhere.answers == []
        assert world.responses.answers == []


# -- the answers' tasks at shutdown ----------------------------------------------------------------


async def _refused_claim(world: World) -> None:
    """Alice claims, then Bob: his refusal is on its way to the response URL."""
    await world.missed()
    assert (await world.click("claim", user_id="U0ALICE", user="alice")).status == 200
    world.clock.advance(timedelta(minutes=1))
    assert (await world.click("claim", user_id="U0BOB", user="bob")).status == 200
    await world.responses.arrived.wait()


async def test_shutdown_waits_for_an_answer_under_way(tmp_path: Path) -> None:
    async with ResponseUrls(hold=True) as responses, AsyncExitStack() as stack:
        world = await stack.enter_async_context(clicks_bridge(tmp_path, responses=responses))
        await _refused_claim(world)
        with capture_logs() as logged:
            closing = asyncio.create_task(stack.aclose())
            responses.release()
            await closing
        assert [a.body["text"] for a in responses.answers] == [
            "alice is already calling back (since 13:01)."
        ]
        events = [e["event"] for e in logged]
        assert "slack.answered" in events
        assert "slack.answers_cancelled" not in events


async def test_shutdown_gives_up_an_answer_that_hangs_after_the_timeout(tmp_path: Path) -> None:
    async with ResponseUrls(hold=True) as responses, AsyncExitStack() as stack:
        world = await stack.enter_async_context(
            clicks_bridge(
                tmp_path,
                responses=responses,
                settings_extra={"shutdown_timeout": timedelta(seconds=0.2)},
            )
        )
        await _refused_claim(world)
        assert len(await world.clicks()) == 2  # both clicks are kept whatever the answer
        with capture_logs() as logged:
            await stack.aclose()  # returns although the response URL never answers
        [cancelled] = [e for e in logged if e["event"] == "slack.answers_cancelled"]
        assert cancelled["count"] == 1
        assert responses.answers == []
