"""Which due work the store hands out first (``Store.due``), run on every backend.

Expected values follow the delivery priority in bridge/deliver/delivery.py's docstring (and the
README): retractions and corrections of posted alerts, then new missed alerts (and the live
root an alert waits for), then the current state of live calls (new roots, their edits),
then the end states of calls that are over and the thread's replies; per
channel a window of PER_CHANNEL new posts and another of edits, so a backlog never hides an
alert, a new root or an edit.
"""

from __future__ import annotations

from datetime import timedelta

from bridge.store import Planned, SlotKey
from bridge.store.outbox import NEW_ALERT, PER_CHANNEL
from tests.store import T0, posted, ringing
from tests.store.conftest import CountingStore

NOW = T0 + timedelta(seconds=2)
SETTLE = timedelta(seconds=30)
LIVE, ONCALL = "C0LIVE0001", "C0ONCALL01"


def live(
    slot: str, content: bytes, *, order: int = 0, final: bool = False, channel: str = LIVE
) -> Planned:
    return Planned("support", "slack", channel, slot, "live", order, content, final)


def alert_in(channel: str, dest: str) -> Planned:
    return Planned(dest, "slack", channel, "missed", "missed", 0, b"alert", True, True)


def key(story: str, slot: str, dest: str = "support") -> SlotKey:
    return SlotKey(story, dest, "slack", slot)


async def new_story(store: CountingStore, n: int) -> str:
    return (await store.add_event(ringing(f"call-{n:03d}"), T0)).story_id


async def plan(store: CountingStore, story: str, planned: list[Planned], at: float = 0) -> None:
    now = NOW + timedelta(seconds=at)
    await store.plan(story, planned, now=now, missed_due=now + SETTLE, allow_new=True)


async def test_each_kind_of_work_has_its_priority(store: CountingStore) -> None:
    stories = [await new_story(store, n) for n in range(6)]
    a, b, c, d, e, f = stories
    await plan(store, a, [alert_in(ONCALL, "oncall")])
    await plan(store, b, [live("root", b"new")])
    # (in a channel of its own: a channel hands out only the PER_CHANNEL first of a lane)
    replies = "C0REPLIES1"
    await plan(
        store,
        c,
        [live("root", b"r", channel=replies), live("reply:1", b"s", order=1, channel=replies)],
    )
    await posted(store, key(c, "root"), 1, "ref-c")
    await plan(store, d, [live("root", b"r")])
    await posted(store, key(d, "root"), 1, "ref-d")
    await plan(store, d, [live("root", b"ended", final=True)], at=1)
    await plan(store, e, [live("root", b"r")])
    await posted(store, key(e, "root"), 1, "ref-e")
    await plan(store, e, [live("root", b"answered")], at=1)
    await plan(store, f, [alert_in(ONCALL, "oncall")])
    await posted(store, key(f, "missed", "oncall"), 1, "ref-f")
    await plan(store, f, [live("root", b"answered after all")], at=1)  # the alert is retracted
    g = await new_story(store, 6)
    await plan(store, g, [alert_in(ONCALL, "oncall")])
    await posted(store, key(g, "missed", "oncall"), 1, "ref-g")
    again = Planned("oncall", "slack", ONCALL, "missed", "missed", 0, b"v2", True, True)
    await plan(store, g, [again])

    due = {o.key: o.priority for o in await store.due(NOW + SETTLE + timedelta(seconds=1))}
    assert due == {
        key(f, "missed", "oncall"): 0,  # a retraction
        key(g, "missed", "oncall"): 0,  # a correction of a posted alert
        key(a, "missed", "oncall"): 1,
        key(b, "root"): 2,  # the first post of a live call
        key(f, "root"): 2,
        key(e, "root"): 2,  # the current state of a live call
        key(c, "reply:1"): 3,
        key(d, "root"): 3,  # the end state of a call that is over
    }


async def test_a_reply_backlog_hides_neither_alerts_nor_roots_nor_edits(
    store: CountingStore,
) -> None:
    backlog = await new_story(store, 0)
    replies = [live(f"reply:{n:03d}", b"step", order=n) for n in range(1, 3 * PER_CHANNEL)]
    await plan(store, backlog, [live("root", b"r"), *replies])
    await posted(store, key(backlog, "root"), 1, "ref-backlog")
    edited = await new_story(store, 1)
    await plan(store, edited, [live("root", b"r")])
    await posted(store, key(edited, "root"), 1, "ref-edited")
    newer = await new_story(store, 2)
    await plan(store, edited, [live("root", b"ended", final=True)], at=5)
    await plan(store, newer, [live("root", b"new"), alert_in(LIVE, "missed-here")], at=5)

    due = await store.due(NOW + SETTLE + timedelta(seconds=5))
    keys = [o.key for o in due]
    # Most important first: the alert, then the new root, then the replies in order, then
    # the edit (ranked in its own window: the replies' window is full).
    assert keys[:2] == [key(newer, "missed", "missed-here"), key(newer, "root")]
    assert key(edited, "root") in keys
    in_window = [k for k in keys if k.story_id == backlog]
    assert in_window == [key(backlog, f"reply:{n:03d}") for n in range(1, len(in_window) + 1)]
    assert len(in_window) <= PER_CHANNEL


async def test_the_root_an_alert_waits_for_ranks_with_the_alert(store: CountingStore) -> None:
    # PER_CHANNEL older new roots fill the channel's window of posts ...
    older = [await new_story(store, n) for n in range(PER_CHANNEL + 5)]
    for n, story in enumerate(older):
        await plan(store, story, [live("root", b"new")], at=n / 100)
    # ... and then a missed call: its alert will link to its live root, so the root must be
    # handed out (as urgent as the alert) even while the alert still settles.
    missed = await new_story(store, 99)
    await plan(store, missed, [live("root", b"missed"), alert_in(LIVE, "support")], at=1)

    settling = {o.key: o.priority for o in await store.due(NOW + timedelta(seconds=1))}
    assert settling[key(missed, "root")] == NEW_ALERT
    assert key(missed, "missed") not in settling
    assert sum(k.story_id in older for k in settling) == PER_CHANNEL

    due = {o.key: o.priority for o in await store.due(NOW + SETTLE + timedelta(seconds=1))}
    assert due[key(missed, "root")] == NEW_ALERT
    assert due[key(missed, "missed")] == NEW_ALERT


async def test_work_backing_off_does_not_hide_the_rest_of_the_window(
    store: CountingStore,
) -> None:
    stories = [await new_story(store, n) for n in range(PER_CHANNEL + 1)]
    for n, story in enumerate(stories):
        await plan(store, story, [live("root", b"new")], at=n / 100)
    for story in stories[:PER_CHANNEL]:
        await store.retry_later(
            key(story, "root"), due=NOW + timedelta(hours=1), error="503", maybe_sent=False
        )

    assert [o.key for o in await store.due(NOW + timedelta(seconds=1))] == [
        key(stories[-1], "root")
    ]


async def test_the_limit_takes_every_channel_first_work_first(store: CountingStore) -> None:
    """Four channels, each with three calls whose live threads have replies to send (one
    sendable per thread: a thread's replies go one after the other): a round of 8 takes the
    two oldest of every channel (its window), not the first channels' whole backlog."""
    channels = [f"C0CHAN{n:04d}" for n in range(4)]
    oldest = []
    for n, channel in enumerate(channels):
        for m in range(3):
            story = await new_story(store, n * 3 + m)
            replies = [
                Planned(f"dest-{n}", "slack", channel, f"reply:{r}", "live", r, b"s", final=False)
                for r in range(1, 4)
            ]
            root = Planned(f"dest-{n}", "slack", channel, "root", "live", 0, b"r", final=False)
            await plan(store, story, [root, *replies], at=m)
            await posted(store, SlotKey(story, f"dest-{n}", "slack", "root"), 1, f"ref-{n}-{m}")
            if m < 2:
                oldest.append((channel, story))

    due = await store.due(NOW + timedelta(seconds=5), limit=8)
    assert sorted((o.channel, o.key.story_id, o.key.slot) for o in due) == sorted(
        (channel, story, "reply:1") for channel, story in oldest
    )


async def test_an_alert_posted_before_its_root_is_edited_once_the_root_is_posted(
    store: CountingStore,
) -> None:
    story = await new_story(store, 0)
    await plan(store, story, [live("root", b"missed"), alert_in(LIVE, "support")])
    backoff = NOW + timedelta(minutes=5)
    await store.retry_later(key(story, "root"), due=backoff, error="503", maybe_sent=False)
    # The root is backing off: the alert goes out alone, without a link to the root.
    (alert,) = await store.due(NOW + SETTLE)
    assert (alert.key, alert.root_ref) == (key(story, "missed"), None)
    await posted(store, alert.key, alert.version, "ref-alert")
    assert await store.due(NOW + SETTLE) == []

    (root,) = await store.due(backoff)
    await posted(store, root.key, root.version, "ref-root")

    (edit,) = await store.due(backoff)
    assert (edit.key, edit.ref, edit.root_ref) == (key(story, "missed"), "ref-alert", "ref-root")
    assert (edit.version, edit.content) == (2, b"alert")
    await posted(store, edit.key, edit.version, "ref-alert")
    # Later posts of the root (edits) leave the linked alert alone.
    await plan(store, story, [live("root", b"ended"), alert_in(LIVE, "support")], at=300)
    (update,) = await store.due(backoff + timedelta(minutes=1))
    assert update.key == key(story, "root")
    await posted(store, update.key, update.version, "ref-root")
    assert await store.due(backoff + timedelta(minutes=1)) == []
