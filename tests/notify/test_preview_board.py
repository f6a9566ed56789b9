"""The preview's memory (bridge/notify/preview.py): posts, in-place edits, thread replies and
deletions kept per channel like a chat platform keeps them, and bounded."""

from __future__ import annotations

from bridge.notify import MessageRef, OutgoingMessage
from bridge.notify.dryrun import DryRunNotifier
from bridge.notify.preview import PreviewBoard

SECTION = {"type": "section", "text": {"type": "mrkdwn", "text": "*Ringing*"}}


def slack(text: str) -> OutgoingMessage:
    return OutgoingMessage(text, ({"type": "section", "text": {"type": "mrkdwn", "text": text}},))


async def test_posts_edits_replies_and_deletions_as_a_platform_shows_them() -> None:
    board = PreviewBoard(clock=lambda: "12:00:00")
    notifier = DryRunNotifier("slack", board=board)
    root = await notifier.post("C1", slack("*Ringing*"))
    reply = await notifier.post("C1", slack("rang"), thread=root)
    await notifier.update(root, slack("*Answered*"))
    alert = await notifier.post("C1", slack("*Missed*"))
    [channel] = board.channels()
    assert (channel.platform, channel.channel, channel.name) == ("slack", "C1", "")
    first, second = channel.messages
    assert first.id == root.ts_or_id
    assert first.edits == 1
    assert first.html == '<div class="bk-section"><div class="bk-text"><b>Answered</b></div></div>'
    assert [r.id for r in first.replies] == [reply.ts_or_id]
    assert second.id == alert.ts_or_id
    version = board.version
    await notifier.delete(alert)
    assert [m.id for m in board.channels()[0].messages] == [root.ts_or_id]
    assert board.version > version


async def test_teams_messages_are_drawn_from_their_card() -> None:
    board = PreviewBoard()
    notifier = DryRunNotifier("teams", board=board)
    card = {"type": "AdaptiveCard", "body": [{"type": "TextBlock", "text": "**Ringing**"}]}
    await notifier.post("19:x", OutgoingMessage("text renderer's line", card=card))
    [message] = board.channels()[0].messages
    assert message.html == ('<div class="ac-card"><div class="ac-text"><b>Ringing</b></div></div>')


async def test_named_destinations_come_first_even_when_empty() -> None:
    board = PreviewBoard()
    await DryRunNotifier("slack", board=board).post("C9", slack("x"))
    names = [("teams", "19:x", "sales"), ("slack", "C1", "support")]
    assert [(c.name, c.channel, len(c.messages)) for c in board.channels(names)] == [
        ("sales", "19:x", 0),
        ("support", "C1", 0),
        ("", "C9", 1),
    ]


async def test_memory_stays_bounded() -> None:
    board = PreviewBoard(per_channel=3)
    notifier = DryRunNotifier("slack", board=board)
    refs = [await notifier.post("C1", slack(str(i))) for i in range(10)]
    for i in range(10):
        await notifier.post("C1", slack(f"reply {i}"), thread=refs[-1])
    [channel] = board.channels()
    assert [m.id for m in channel.messages] == [r.ts_or_id for r in refs[-3:]]
    assert len(channel.messages[-1].replies) == 3
    # A reply to, or an edit of, a message the board no longer holds changes nothing.
    version = board.version
    await notifier.post("C1", slack("late"), thread=refs[0])
    await notifier.update(refs[0], slack("late"))
    assert board.version == version
    assert MessageRef("slack", "C1", refs[0].ts_or_id) == refs[0]


async def test_a_message_built_on_demand_is_built_once_when_first_shown() -> None:
    board = PreviewBoard()
    notifier = DryRunNotifier("slack", board=board)
    built: list[str] = []

    def rich(text: str) -> OutgoingMessage:
        built.append(text)
        return slack(text)

    root = await notifier.post("C1", OutgoingMessage("Ringing line", rich=lambda: rich("*A*")))
    await notifier.update(root, OutgoingMessage("Answered line", rich=lambda: rich("*B*")))
    assert built == []  # a dry run that nobody previews builds no blocks and no HTML
    for _ in range(2):  # the page polls: drawn once, then kept
        [message] = board.channels()[0].messages
        assert message.html == '<div class="bk-section"><div class="bk-text"><b>B</b></div></div>'
    assert built == ["*B*"]


async def test_a_message_that_cannot_be_drawn_says_so_and_the_page_still_shows() -> None:
    board = PreviewBoard()
    notifier = DryRunNotifier("slack", board=board)

    def broken() -> OutgoingMessage:
        raise KeyError("blocks")

    await notifier.post("C1", OutgoingMessage("line", rich=broken))
    await notifier.post("C1", slack("*fine*"))
    bad, good = board.channels()[0].messages
    assert bad.html == "<i>cannot draw this message: KeyError</i>"
    assert good.html == '<div class="bk-section"><div class="bk-text"><b>fine</b></div></div>'
