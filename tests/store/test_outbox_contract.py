"""The delivery outbox contract (bridge/core/slots.py), run on every backend.

Expected values follow the docstrings of ``Store.plan`` and friends: the desired version
only moves when content changes; new (destination, kind) decisions need ``allow_new``; a
missed alert no longer planned is retracted (content None); recording a post
(``posted_next``) makes a slot settled; merges keep the posted message of a slot and retract
the other one as ``orphan:``.
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import timedelta

import pytest

from bridge.store import (
    Dispatched,
    Emitted,
    Outgoing,
    Planned,
    PlanRequest,
    ShownAlert,
    SlotKey,
    postgres_outbox,
    sqlite_outbox,
)
from tests.store import T0, posted, ringing, warm_transfer
from tests.store.conftest import CountingStore

A, B = "call-a", "call-b"
NOW = T0 + timedelta(seconds=2)
SETTLE = timedelta(seconds=30)
ZERO = timedelta(0)
CH = "C0123456789"


def live(slot: str, content: bytes, *, order: int = 0, dest: str = "support") -> Planned:
    return Planned(dest, "slack", CH, slot, "live", order, content, final=False)


def missed(content: bytes, *, dest: str = "oncall") -> Planned:
    return Planned(dest, "slack", "C0999999999", "missed", "missed", 0, content, True, True)


def key(story: str, slot: str, dest: str = "support") -> SlotKey:
    return SlotKey(story, dest, "slack", slot)


async def plan(
    store: CountingStore, story: str, planned: list[Planned], *, at: timedelta, new: bool = True
) -> int:
    now = NOW + at
    return await store.plan(story, planned, now=now, missed_due=now + SETTLE, allow_new=new)


async def due_by_key(store: CountingStore, at: timedelta) -> dict[SlotKey, Outgoing]:
    return {o.key: o for o in await store.due(NOW + at)}


async def story_with(store: CountingStore, call_id: str) -> str:
    return (await store.add_event(ringing(call_id), T0)).story_id


async def test_new_slots_are_due_with_version_one(store: CountingStore) -> None:
    await story_with(store, A)
    work = await plan(store, A, [live("root", b"r1"), live("reply:1", b"x", order=1)], at=ZERO)
    assert work == 2

    # The reply is no work until its thread's root is posted (delivery could not send it).
    (root,) = await store.due(NOW)
    assert root == Outgoing(
        key=key(A, "root"),
        channel=CH,
        kind="live",
        order=0,
        content=b"r1",
        version=1,
        ref=None,
        root_ref=None,
        attempted=False,
        attempts=0,
        final=False,
        created_at=NOW,
        desired_at=NOW,
        priority=2,  # the first post of a live call (migration 0006)
    )
    assert await store.next_due() == NOW
    assert await store.pending_counts() == [("slack", CH, 2)]


async def test_same_content_again_changes_nothing(store: CountingStore) -> None:
    await story_with(store, A)
    await plan(store, A, [live("root", b"r1")], at=ZERO)
    assert await plan(store, A, [live("root", b"r1")], at=timedelta(seconds=5)) == 0
    (only,) = await store.due(NOW + timedelta(seconds=5))
    assert (only.version, only.desired_at) == (1, NOW)


async def test_posted_settles_and_replies_see_the_root_ref(store: CountingStore) -> None:
    await story_with(store, A)
    await plan(store, A, [live("root", b"r1"), live("reply:1", b"x", order=1)], at=ZERO)
    await store.begin_attempt(key(A, "root"), NOW)
    await posted(store, key(A, "root"), 1, "ref-root")

    due = await due_by_key(store, ZERO)
    assert list(due) == [key(A, "reply:1")]
    assert due[key(A, "reply:1")].root_ref == "ref-root"
    assert await store.pending_counts() == [("slack", CH, 1)]

    await posted(store, key(A, "reply:1"), 1, "ref-reply")
    assert await store.due(NOW + timedelta(hours=1)) == []
    assert await store.next_due() is None
    assert await store.pending_counts() == []


async def test_posted_next_hands_out_the_channels_work_as_due_would(
    store: CountingStore,
) -> None:
    """Recording a send also reads what its channel can send next, in the same transaction:
    the root's post makes its replies sendable, with the root's ref; other channels' work
    is left to the delivery loop's own reads."""
    await story_with(store, A)
    await story_with(store, B)
    replies = [live(f"reply:{n}", b"x", order=n) for n in (1, 2, 3)]
    await plan(store, A, [live("root", b"r1"), *replies], at=ZERO)
    await plan(store, B, [live("root", b"b1", dest="other"), missed(b"m")], at=ZERO)
    await posted(store, key(B, "root", "other"), 1, "ref-b")

    kept, following = await store.posted_next(
        key(A, "root"), 1, "ref-root", channel=CH, now=NOW + SETTLE
    )
    assert kept
    assert following == await store.due(NOW + SETTLE, closed={("slack", "C0999999999", 0)})
    # the thread's next reply (its later ones wait for it) from one channel, and not B's
    # due alert
    assert [(o.key, o.root_ref) for o in following] == [(key(A, "reply:1"), "ref-root")]
    kept, following = await store.posted_next(
        key(A, "nothing"), 1, "ref", channel=CH, now=NOW + SETTLE
    )
    assert not kept  # no such slot: nothing recorded, the channel's work as before
    assert [o.key for o in following] == [key(A, "reply:1")]
    kept, following = await store.posted_next(
        key(A, "reply:1"), 1, "ref-1", channel=CH, now=NOW + SETTLE
    )
    assert kept  # its post makes the next reply sendable, in the same read
    assert [o.key for o in following] == [key(A, "reply:2")]


async def test_content_change_bumps_the_version_and_keeps_the_ref(store: CountingStore) -> None:
    await story_with(store, A)
    await plan(store, A, [live("root", b"ringing")], at=ZERO)
    await posted(store, key(A, "root"), 1, "ref-root")
    later = timedelta(seconds=9)

    assert await plan(store, A, [live("root", b"answered")], at=later) == 1
    (update,) = await store.due(NOW + later)
    assert (update.version, update.content, update.ref) == (2, b"answered", "ref-root")
    assert (update.created_at, update.desired_at) == (NOW, NOW + later)
    assert update.root_ref == "ref-root"  # the slot is the root itself


async def test_a_change_while_a_retry_waits_keeps_the_backoff(store: CountingStore) -> None:
    await story_with(store, A)
    await plan(store, A, [live("root", b"v1")], at=ZERO)
    backoff = NOW + timedelta(seconds=60)
    await store.retry_later(key(A, "root"), due=backoff, error="timeout", maybe_sent=False)
    # v1 was never posted (the slot lags): a newer content does not jump the backoff.
    await plan(store, A, [live("root", b"v2")], at=timedelta(seconds=1))
    assert await store.due(NOW + timedelta(seconds=59)) == []
    assert await store.next_due() == backoff
    (retry,) = await store.due(backoff)
    assert (retry.version, retry.content, retry.attempts) == (2, b"v2", 1)


async def test_attempt_marks_and_retries(store: CountingStore) -> None:
    await story_with(store, A)
    await plan(store, A, [live("root", b"v1")], at=ZERO)
    k = key(A, "root")

    await store.begin_attempt(k, NOW)
    (item,) = await store.due(NOW)
    assert (item.attempted, item.attempts) == (True, 0)

    await store.retry_later(k, due=NOW + timedelta(seconds=5), error="503", maybe_sent=True)
    assert await store.due(NOW + timedelta(seconds=4)) == []
    (item,) = await store.due(NOW + timedelta(seconds=5))
    assert (item.attempted, item.attempts) == (True, 1)  # it may have reached the platform

    await store.retry_later(k, due=NOW + timedelta(seconds=7), error="refused", maybe_sent=False)
    (item,) = await store.due(NOW + timedelta(seconds=7))
    assert (item.attempted, item.attempts) == (False, 2)

    await store.begin_attempt(k, NOW)
    await posted(store, k, 1, "ref")
    await plan(store, A, [live("root", b"v2")], at=timedelta(seconds=8))
    (item,) = await store.due(NOW + timedelta(seconds=8))
    assert (item.attempted, item.attempts, item.version) == (False, 0, 2)


async def test_give_up_stops_the_slot_until_its_content_changes(store: CountingStore) -> None:
    await story_with(store, A)
    await plan(store, A, [live("root", b"v1")], at=ZERO)
    await store.give_up(key(A, "root"), "channel_not_found")
    assert await store.due(NOW + timedelta(days=1)) == []
    assert await store.next_due() is None
    assert await store.pending_counts() == []

    await plan(store, A, [live("root", b"v2")], at=timedelta(seconds=3))
    (revived,) = await store.due(NOW + timedelta(seconds=3))
    assert (revived.version, revived.content) == (2, b"v2")


async def test_missed_alert_waits_for_the_settle_time(store: CountingStore) -> None:
    await story_with(store, A)
    await plan(store, A, [live("root", b"ended"), missed(b"alert")], at=ZERO)
    assert [o.key.slot for o in await store.due(NOW)] == ["root"]
    assert await store.next_due() == NOW
    await posted(store, key(A, "root"), 1, "r")
    assert await store.next_due() == NOW + SETTLE
    (alert,) = await store.due(NOW + SETTLE)
    assert (alert.key, alert.kind, alert.content) == (
        key(A, "missed", "oncall"),
        "missed",
        b"alert",
    )


async def test_a_thread_line_that_settles_waits_like_the_alert(store: CountingStore) -> None:
    """The live thread's "Missed" line (``settles``) waits for the settle time, as the alert
    does; the lines before it do not."""
    await story_with(store, A)
    ringing_line = live("reply:ring", b"ringing", order=1)
    missed_line = replace(live("reply:end", b"missed", order=2), settles=True)
    await plan(store, A, [live("root", b"missed"), ringing_line, missed_line], at=ZERO)
    await posted(store, key(A, "root"), 1, "r")
    assert [o.key.slot for o in await store.due(NOW)] == ["reply:ring"]
    await posted(store, key(A, "reply:ring"), 1, "r1")
    assert await store.next_due() == NOW + SETTLE
    (line,) = await store.due(NOW + SETTLE)
    assert (line.key.slot, line.content) == ("reply:end", b"missed")


async def test_a_line_that_stops_settling_is_due_at_once(store: CountingStore) -> None:
    """An ``ended`` that overtook its ``in-progress`` planned "Missed" (waiting for the settle
    time); the late answer turns it into a plain end line, due at once, not at the settle
    time the "Missed" was given. A settling line changed again keeps its settle time."""
    await story_with(store, A)
    await plan(store, A, [live("root", b"ended")], at=ZERO)
    await posted(store, key(A, "root"), 1, "r")
    missed_line = replace(live("reply:end", b"missed", order=2), settles=True)
    await plan(store, A, [live("root", b"ended"), missed_line], at=ZERO)
    stacked = replace(missed_line, content=b"missed twice")
    later = timedelta(seconds=2)
    await plan(store, A, [live("root", b"ended"), stacked], at=later)
    assert await store.next_due() == NOW + SETTLE  # not pushed back by the change
    answered = live("reply:end", b"ended after 1m", order=2)
    await plan(store, A, [live("root", b"answered"), answered], at=later)
    due = await due_by_key(store, later)
    assert due[key(A, "reply:end")].content == b"ended after 1m"


async def test_a_threads_replies_go_in_story_order_not_in_plan_order(
    store: CountingStore,
) -> None:
    """A late fact adds a step before a reply that is not sent yet (a redelivered
    ``in-progress`` after the ``ended``; an attempt to call back that reaches the bridge after
    the case's expiry was planned): a thread is a log, so the earlier step's reply goes first,
    however late it was planned. Each thread of a story on its own: the live message's
    replies (``reply:``) and the alert's (``alert:``) do not wait for each other."""
    await story_with(store, A)
    ring = live("reply:ring", b"ringing", order=1)
    first = [live("root", b"r"), ring, live("reply:end", b"ended", order=2)]
    await plan(store, A, first, at=ZERO)
    await posted(store, key(A, "root"), 1, "ref-root")
    assert [o.key.slot for o in await store.due(NOW)] == ["reply:ring"]  # "end" waits for it
    await posted(store, key(A, "reply:ring"), 1, "r1")
    later = timedelta(seconds=1)
    # The late answer takes the end line's place; the end line, unchanged, moves one down.
    late = [
        live("root", b"r"),
        ring,
        live("reply:answered", b"answered", order=2),
        live("reply:end", b"ended", order=3),
    ]
    await plan(store, A, late, at=later)
    assert [o.key.slot for o in await store.due(NOW + later)] == ["reply:answered"]
    await posted(store, key(A, "reply:answered"), 1, "r2")
    (end,) = await store.due(NOW + later)
    assert (end.key.slot, end.content) == ("reply:end", b"ended")

    # The alert's thread: its "tried" step, planned after "expired", goes before it; the two
    # threads' pending replies (the live thread's "end", order 3) do not hold each other up.
    alert = missed(b"alert", dest="support")
    expired = replace(
        alert, slot="alert:expired", order=2, content=b"expired", final=False, settles=False
    )
    alert_first = [*late, alert, expired]
    await plan(store, A, alert_first, at=later)
    await posted(store, key(A, "missed"), 1, "ref-alert")
    tried = replace(expired, slot="alert:tried", content=b"tried", order=1)
    await plan(store, A, [*alert_first, tried], at=later)
    due = {o.key.slot for o in await store.due(NOW + later)}
    assert due == {"alert:tried", "reply:end"}


async def test_missed_alert_no_longer_planned_is_retracted(store: CountingStore) -> None:
    await story_with(store, A)
    await plan(store, A, [missed(b"alert")], at=ZERO)
    await posted(store, key(A, "missed", "oncall"), 1, "ref-alert")
    later = timedelta(seconds=40)

    # A late answer: the dispatcher no longer plans the alert.
    assert await plan(store, A, [live("root", b"answered")], at=later) == 2
    due = await due_by_key(store, later)
    retract = due[key(A, "missed", "oncall")]
    assert (retract.content, retract.version, retract.ref) == (None, 2, "ref-alert")
    assert retract.desired_at == NOW + later
    # Retracting again is not more work.
    assert await plan(store, A, [live("root", b"answered")], at=later) == 0


async def test_a_missed_alert_withdrawn_before_it_was_posted_is_dropped(
    store: CountingStore,
) -> None:
    await story_with(store, A)
    await plan(store, A, [missed(b"alert")], at=ZERO)
    assert await plan(store, A, [live("root", b"answered")], at=timedelta(seconds=5)) == 2
    due = await due_by_key(store, timedelta(days=1))
    assert set(due) == {key(A, "root")}  # nothing was posted: nothing to delete


async def test_a_live_thread_no_longer_decided_is_withdrawn(store: CountingStore) -> None:
    """The whole call belongs elsewhere (its late events, or a merge, showed whose call it
    is): the thread's posted messages are deleted, its unposted ones dropped, and what may
    have been posted (an attempt whose answer was lost) is deleted too."""
    await story_with(store, A)
    thread = [
        live("root", b"internal", dest="lost"),
        live("reply:1", b"rang", order=1, dest="lost"),
        live("reply:2", b"answered", order=2, dest="lost"),
        live("reply:3", b"talking", order=3, dest="lost"),
    ]
    await plan(store, A, thread, at=ZERO)
    await posted(store, key(A, "root", "lost"), 1, "ref-root")
    await posted(store, key(A, "reply:1", "lost"), 1, "ref-1")
    await store.begin_attempt(key(A, "reply:2", "lost"), NOW)  # its answer was lost
    later = timedelta(seconds=9)
    assert await plan(store, A, [live("root", b"customer")], at=later) == 5
    due = await due_by_key(store, later)
    withdrawn = {k.slot: (o.content, o.ref) for k, o in due.items() if k.destination == "lost"}
    assert withdrawn == {
        "root": (None, "ref-root"),
        "reply:1": (None, "ref-1"),
        "reply:2": (None, None),  # retracted all the same: delivery looks before deleting
    }
    assert key(A, "root") in due


async def test_a_posted_reply_is_never_edited(store: CountingStore) -> None:
    await story_with(store, A)
    await plan(store, A, [live("root", b"r"), live("reply:1", b"A rang", order=1)], at=ZERO)
    await posted(store, key(A, "root"), 1, "ref-root")
    await posted(store, key(A, "reply:1"), 1, "ref-1")
    respelled = [live("root", b"r"), live("reply:1", b"(no name) rang", order=1)]
    assert await plan(store, A, respelled, at=timedelta(seconds=1)) == 0
    assert await store.due(NOW + timedelta(days=1)) == []


async def test_without_allow_new_only_existing_decisions_grow(store: CountingStore) -> None:
    await story_with(store, A)
    await plan(store, A, [live("root", b"r")], at=ZERO)
    await posted(store, key(A, "root"), 1, "ref-root")  # (its replies can be sent)
    planned = [
        live("root", b"r-final"),
        live("reply:9", b"ended", order=9),  # a new reply of the decided live message
        live("root", b"elsewhere", dest="sales"),  # a new decision: not taken
        missed(b"alert"),  # a new decision: not taken
    ]
    assert await plan(store, A, planned, at=timedelta(seconds=1), new=False) == 2
    due = await due_by_key(store, timedelta(days=1))
    assert set(due) == {key(A, "root"), key(A, "reply:9")}


async def test_plan_follows_merges_and_ignores_unknown_stories(store: CountingStore) -> None:
    assert await plan(store, "never-seen", [live("root", b"r")], at=ZERO) == 0
    await story_with(store, A)
    await store.add_event(ringing(B, 2), T0)
    await store.add_event(warm_transfer(B, A, 3), T0)  # B absorbed into A
    assert await plan(store, B, [live("root", b"r")], at=ZERO) == 1
    assert [o.key for o in await store.due(NOW)] == [key(A, "root")]


async def test_merge_keeps_posted_threads_and_retracts_the_orphan(store: CountingStore) -> None:
    await story_with(store, A)
    await store.add_event(ringing(B, 2), T0)
    await plan(store, A, [live("root", b"a-root"), live("reply:1", b"a1", order=1)], at=ZERO)
    await plan(store, B, [live("root", b"b-root"), live("reply:2", b"b2", order=2)], at=ZERO)
    await posted(store, key(A, "root"), 1, "ref-a")
    await posted(store, key(B, "root"), 1, "ref-b")
    await posted(store, key(B, "reply:2"), 1, "ref-b2")

    later = timedelta(seconds=20)
    await store.add_event(warm_transfer(A, B, 20), T0 + later)
    same = [live("root", b"a-root"), live("reply:1", b"a1", order=1)]
    await plan(store, A, same, at=later)  # nothing new: only what the merge left

    due = await due_by_key(store, later)
    # B's posted root collides with A's posted root: B's is retracted (A's survives).
    orphan = due[key(A, f"orphan:{B}:root")]
    assert (orphan.content, orphan.ref, orphan.version, orphan.kind) == (None, "ref-b", 2, "live")
    # A's unposted reply is still due, now threaded under A's root.
    assert due[key(A, "reply:1")].root_ref == "ref-a"
    # B's posted reply belonged to B's thread, which lost: it is retracted with its root.
    reply = due[key(A, f"orphan:{B}:reply:2")]
    assert (reply.content, reply.ref, reply.version) == (None, "ref-b2", 2)
    assert set(due) == {
        key(A, f"orphan:{B}:root"),
        key(A, f"orphan:{B}:reply:2"),
        key(A, "reply:1"),
    }


async def test_merge_where_only_the_absorbed_root_was_posted(store: CountingStore) -> None:
    await story_with(store, A)
    await store.add_event(ringing(B, 2), T0)
    await plan(store, A, [live("root", b"a-root")], at=ZERO)  # not posted yet
    await plan(store, B, [live("root", b"b-root")], at=ZERO)
    await posted(store, key(B, "root"), 1, "ref-b")

    await store.add_event(warm_transfer(B, A, 20), T0)
    # The absorbed story's posted root carries on as the survivor's root; A's unposted
    # root is dropped (nothing to retract), so nothing is due.
    assert await store.due(NOW + timedelta(days=1)) == []
    assert await plan(store, A, [live("root", b"merged")], at=ZERO) == 1
    (root,) = await store.due(NOW)
    assert (root.key, root.ref, root.version, root.content) == (
        key(A, "root"),
        "ref-b",
        2,
        b"merged",
    )


async def test_purge_removes_the_outbox_of_purged_stories(store: CountingStore) -> None:
    a = await store.add_event(ringing(A), T0)
    await store.add_event(ringing(B), T0)
    await plan(store, A, [live("root", b"a")], at=ZERO)
    await plan(store, B, [live("root", b"b")], at=ZERO)
    await store.save_state(
        A, upto_seq=a.seq, digest="d", ended_at=T0, last_event_at=T0 + timedelta(seconds=1)
    )
    hour = T0 + timedelta(hours=1)
    assert await store.purge(hour, now=hour) == 1
    assert [o.key for o in await store.due(NOW)] == [key(B, "root")]
    # Once its purge is forgotten the same call id is new again: it gets a fresh outbox.
    await store.forget(hour + timedelta(seconds=1))
    await store.add_event(warm_transfer(A, "call-c"), T0)
    assert await plan(store, A, [live("root", b"again")], at=ZERO) == 1


async def test_dispatched_plans_and_saves_the_state_in_one_transaction(
    store: CountingStore,
) -> None:
    story = await store.add_event(ringing(A), T0)
    before = store.commits
    state = Emitted(story.seq, "ringing", ended_at=None, last_event_at=T0)
    request = PlanRequest([live("root", b"r1")], now=NOW, missed_due=NOW + SETTLE, allow_new=True)

    assert await store.dispatched(A, state, request) == Dispatched(1, clean=True)
    assert store.commits - before == 1
    assert [o.key for o in await store.due(NOW)] == [key(A, "root")]
    assert await store.dirty_stories() == []
    saved = await store.story(A)
    assert saved is not None
    assert saved.digest == "ringing"

    # Nothing visible changed: only the state is saved; a newer event keeps the story dirty.
    newer = await store.add_event(warm_transfer(A, B), T0)
    assert await store.dispatched(A, Emitted(story.seq, "ringing", None, T0)) == Dispatched(
        0, False
    )
    assert await store.dirty_stories() == [A]
    assert await store.dispatched(A, Emitted(newer.seq, "ringing", None, T0)) == Dispatched(0, True)
    assert [o.version for o in await store.due(NOW)] == [1]


async def test_a_fold_read_before_a_merge_plans_nothing(store: CountingStore) -> None:
    """The dispatcher read a story, then a transfer merged another story into it (or it into
    another) before its fold was written: the fold is not of the story any more. Written, B's
    plan (the consult leg alone, routed nowhere) withdrew A's posted thread, which the next
    cycle posted again (the README demo's warm transfer: its live message and thread deleted
    and posted anew). Neither plan is applied; the story stays dirty for the next cycle."""
    await story_with(store, A)
    await plan(store, A, [live("root", b"a")], at=ZERO)
    await posted(store, key(A, "root"), 1, "ref-a")
    await story_with(store, B)
    read_a, read_b = await store.story(A), await store.story(B)
    assert read_a is not None
    assert read_b is not None
    merged = await store.add_event(warm_transfer(A, B), T0)
    assert merged.story_id == A

    alone = PlanRequest([], now=NOW, missed_due=NOW + SETTLE, allow_new=True)
    state_b = Emitted(read_b.max_seq, "b alone", None, T0, calls=len(read_b.call_ids))
    assert await store.dispatched(B, state_b, alone) == Dispatched(0, False, stale=True)
    stale = PlanRequest([live("root", b"a, stale")], now=NOW, missed_due=NOW, allow_new=True)
    state_a = Emitted(read_a.max_seq, "a alone", None, T0, calls=len(read_a.call_ids))
    assert await store.dispatched(A, state_a, stale) == Dispatched(0, False, stale=True)

    assert await due_by_key(store, SETTLE) == {}  # nothing withdrawn, nothing changed
    assert await store.dirty_stories() == [A]
    whole = await store.story(A)
    assert whole is not None
    assert set(whole.call_ids) == {A, B}
    state = Emitted(whole.max_seq, "a and b", None, T0, calls=len(whole.call_ids))
    request = PlanRequest([live("root", b"a and b")], now=NOW, missed_due=NOW, allow_new=True)
    assert await store.dispatched(A, state, request) == Dispatched(1, True)


async def test_posted_says_whether_the_slot_still_exists(store: CountingStore) -> None:
    await story_with(store, A)
    await story_with(store, B)
    await plan(store, A, [live("root", b"a")], at=ZERO)
    await plan(store, B, [live("root", b"b")], at=ZERO)
    assert await posted(store, key(A, "root"), 1, "ref-a") is True
    # B's root is being posted when a transfer merges B into A, whose thread is posted:
    # B's unposted root is dropped, so its answer finds no slot.
    await store.add_event(warm_transfer(A, B), T0)
    assert await posted(store, key(B, "root"), 1, "ref-b") is False
    assert [o.key for o in await store.due(NOW)] == []


async def test_only_a_new_alert_waits_for_the_settle_time(store: CountingStore) -> None:
    """An alert's first post waits (a late answer may still come); once it is posted, a
    change to it (a claim on its callback case) is due at once, and so is a case step."""
    await story_with(store, A)
    await plan(store, A, [missed(b"alert")], at=ZERO)
    assert await store.due(NOW + SETTLE - timedelta(seconds=1)) == []
    await posted(store, key(A, "missed", "oncall"), 1, "ref-alert")
    step = Planned("oncall", "slack", "C0999999999", "alert:1", "missed", 1, b"claimed", True)
    later = timedelta(seconds=60)
    await plan(store, A, [missed(b"alert, claimed"), step], at=later)
    due = await due_by_key(store, later)
    assert set(due) == {key(A, "missed", "oncall"), key(A, "alert:1", "oncall")}


async def test_an_alert_in_another_channel_links_to_the_live_root_whenever_it_is_posted(
    store: CountingStore,
) -> None:
    """An alert routed elsewhere than the live message links to it (issue 12.10): at once
    when the root is up; by an edit when the root is posted after the alert; and by an edit
    when the root is posted while the alert itself is in flight (unlinked)."""
    later = SETTLE + timedelta(seconds=1)
    alert_key = key(A, "missed", "oncall")

    await story_with(store, A)
    await plan(store, A, [live("root", b"ended"), missed(b"alert")], at=ZERO)
    await posted(store, key(A, "root"), 1, "ref-root")
    assert (await due_by_key(store, later))[alert_key].root_ref == "ref-root"

    # Posted before the root, unlinked: the root's first post makes it due for the link.
    await story_with(store, B)
    await plan(store, B, [live("root", b"ended"), missed(b"alert")], at=ZERO)
    b_alert = key(B, "missed", "oncall")
    assert (await due_by_key(store, later))[b_alert].root_ref is None
    await posted(store, b_alert, 1, "ref-alert", unlinked=True)
    assert b_alert not in await due_by_key(store, later)
    await posted(store, key(B, "root"), 1, "ref-root-b")
    edit = (await due_by_key(store, later))[b_alert]
    assert (edit.ref, edit.root_ref, edit.version) == ("ref-alert", "ref-root-b", 2)


async def test_shown_alerts_are_a_storys_alerts_with_the_root_they_link_to(
    store: CountingStore,
) -> None:
    """What a press on an alert's button is answered with (bridge/ingest/teams_card.py): the
    story's alerts on the platform, with the live root delivery links them to; a merged
    story's by the story it went into."""
    await story_with(store, A)
    await plan(store, A, [live("root", b"ended"), missed(b"alert")], at=ZERO)
    unposted = ShownAlert("oncall", "C0999999999", b"alert", None, None)
    assert await store.shown_alerts(A, "slack") == [unposted]
    assert await store.shown_alerts(A, "teams") == []
    assert await store.shown_alerts("never-seen", "slack") == []

    await posted(store, key(A, "root"), 1, "ref-root")
    await posted(store, key(A, "missed", "oncall"), 1, "ref-alert")
    shown = ShownAlert("oncall", "C0999999999", b"alert", "ref-alert", "ref-root")
    assert await store.shown_alerts(A, "slack") == [shown]

    await store.add_event(ringing(B, 2), T0)
    await store.add_event(warm_transfer(B, A, 3), T0)  # B absorbed into A
    assert await store.shown_alerts(B, "slack") == [shown]


async def test_an_alert_in_flight_while_its_root_is_posted_gets_the_link(
    store: CountingStore,
) -> None:
    later = SETTLE + timedelta(seconds=1)
    alert_key = key(A, "missed", "oncall")
    await story_with(store, A)
    await plan(store, A, [live("root", b"ended"), missed(b"alert")], at=ZERO)
    in_flight = (await due_by_key(store, later))[alert_key]
    assert in_flight.root_ref is None
    await posted(store, key(A, "root"), 1, "ref-root")  # while the alert is being posted
    await posted(store, alert_key, in_flight.version, "ref-alert", unlinked=True)
    edit = (await due_by_key(store, later))[alert_key]
    assert (edit.ref, edit.root_ref, edit.version) == ("ref-alert", "ref-root", 2)
    # An alert posted with its link is not edited again.
    await posted(store, alert_key, edit.version, "ref-alert")
    assert alert_key not in await due_by_key(store, later)


async def test_resume_makes_what_backed_off_on_a_platform_due_now(store: CountingStore) -> None:
    await story_with(store, A)
    await plan(store, A, [live("root", b"r"), live("reply:1", b"x", order=1)], at=ZERO)
    far = NOW + timedelta(minutes=5)
    await store.retry_later(key(A, "root"), due=far, error="503", maybe_sent=True)
    assert key(A, "root") not in await due_by_key(store, ZERO)
    assert await store.resume("teams", NOW) == 0  # another platform's slots stay
    assert await store.resume("slack", NOW) == 1  # the reply never failed: it is not counted
    root = (await due_by_key(store, ZERO))[key(A, "root")]
    assert root.attempts == 1  # its history stays: failing on its own, it backs off further


async def test_a_failing_read_of_the_next_work_keeps_the_post_recorded(
    store: CountingStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The channel's next work is read in the transaction that records a post; if that read
    fails, the record stands (no duplicate post later) and no next work is handed out."""

    def broken(*args: object) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(sqlite_outbox, "_windows", broken)
    bad = "SELECT no_such_column FROM outbox WHERE $1::text IS NULL"
    monkeypatch.setattr(postgres_outbox, "_CHANNEL_WINDOWS", (bad, bad))
    await story_with(store, A)
    await plan(store, A, [live("root", b"r1"), live("reply:1", b"x", order=1)], at=ZERO)
    assert await store.posted_next(key(A, "root"), 1, "ref-root", channel=CH, now=NOW) == (
        True,
        [],
    )
    monkeypatch.undo()
    assert list(await due_by_key(store, ZERO)) == [key(A, "reply:1")]  # the root is posted
