"""Two instances on one PostgreSQL database: a button click taken by the standby, the
callback event by the leader; the case is claimed, then closed once."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from bridge.core.cases import fold
from bridge.store.postgres import PostgresStore
from tests.store import pg
from tests.support.clicks_env import KEY, callback_call, clicks_bridge
from tests.support.harness import FakeClock
from tests.support.slack_clicks import ResponseUrls
from tests.test_ha import require_postgres


def metric(text: str, name: str) -> float:
    [line] = [line for line in text.splitlines() if line.startswith(name + " ")]
    return float(line.rsplit(" ", 1)[1])


async def test_a_click_on_the_standby_and_a_callback_on_the_leader_close_the_case_once(
    tmp_path: Path,
) -> None:
    await require_postgres()
    clock = FakeClock()
    async with pg.fresh_database() as dsn, ResponseUrls() as responses:

        def instance(name: str):  # type: ignore[no-untyped-def]
            folder = tmp_path / name
            folder.mkdir()
            return clicks_bridge(
                folder,
                clock=clock,
                responses=responses,
                store=PostgresStore(dsn),
                settings_extra={"store": dsn},
            )

        async with instance("a") as leader, instance("b") as standby:
            assert leader.bridge.leading
            assert not standby.bridge.leading
            ref = await leader.missed()

            clock.advance(timedelta(minutes=4))
            press = {"user_id": "U0ALICE", "user": "alice", "action_ts": "1700000000.424242"}
            claim = await standby.click("claim", ref, **press)
            assert claim.status == 200
            # Stored in the shared database, marked for the leader, which finds it when it
            # polls the store (as its poller does every second on PostgreSQL).
            assert await leader.bridge.store.dirty_stories() == [ref.case_id]
            await leader.bridge.dispatcher.resume()
            await leader.settle()
            [claimed] = [s for s in leader.chat.sent if s.slot.startswith("alert:")]
            assert "alice is calling back" in claimed.text

            # Alice calls the customer back: the leader takes the events, the standby gets
            # them once more (a load balancer's retry): duplicates.
            clock.advance(timedelta(minutes=10))
            events = callback_call("back-1", clock.now, "0501234567", "Alice")
            await leader.send(events)
            await standby.send(events)
            await leader.settle()
            # Slack retries the claim on the leader (the same press, signed anew).
            clock.advance(timedelta(seconds=5))
            again = await leader.click("claim", ref, **press)
            assert again.status == 200
            assert len(await leader.clicks()) == 1
            await leader.bridge.dispatcher.resume()
            await leader.settle()

            facts = (await leader.bridge.store.case_facts([KEY]))[KEY].facts
            [case] = fold(KEY, facts, clock.now)
            assert case.closing is not None
            assert (case.closing.how, case.closing.by) == ("called_back", "Alice")
            replies = [s for s in leader.chat.sent if s.slot.startswith("alert:")]
            closings = [s for s in replies if "alled back" in s.text]
            assert len(closings) == 1, [s.text for s in replies]
            metrics = await (await leader.client.get("/metrics")).text()
            assert metric(metrics, 'callbridge_callback_cases_closed_total{how="called_back"}') == 1
            assert metric(metrics, "callbridge_callback_cases_open") == 0

            # Bob, on the standby, finds the case closed: the standby answers him itself.
            bob = await standby.click("claim", ref, user_id="U0BOB", user="bob")
            assert bob.status == 200
            await standby.settle()
            assert responses.texts() == [
                "This case is closed: called back by Alice at 13:15. Nothing changed."
            ]
            assert standby.chat.sent == []  # a standby never posts
