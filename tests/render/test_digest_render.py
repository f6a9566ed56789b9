"""The daily digest on Slack, Teams and in the dry-run log: every text written out by hand.

The period: Wednesday 2 December 2026 08:30 to Thursday 3 December 08:30 in Amsterdam (CET,
UTC+1). The cases are written as the digest tells them (bridge.core.digest.DigestCase); the
times below are local, the structs' UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bridge.core.digest import DigestCase, DigestContent
from bridge.render import slack, teams, text
from bridge.render.preview_html import slack_html, teams_html
from tests.support.fake_teams import card_texts

SINCE = datetime(2026, 12, 2, 7, 30, tzinfo=UTC)  # Wed 08:30
UNTIL = datetime(2026, 12, 3, 7, 30, tzinfo=UTC)  # Thu 08:30


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """``day`` December 2026, ``hour:minute`` in Amsterdam (UTC+1)."""
    return datetime(2026, 12, day, hour - 1, minute, tzinfo=UTC)


def closed(caller: str, opened: datetime, how: Any, at: datetime, by: str | None) -> DigestCase:
    return DigestCase(
        number=caller, caller=caller, opened_at=opened, misses=1, how=how, closed_at=at, by=by
    )


FULL = (
    closed("+31600000001", datetime(2026, 11, 29, 9, tzinfo=UTC), "expired", local(2, 10), None),
    DigestCase(number="+31201234567", caller="+31201234567", opened_at=local(1, 16, 45), misses=2),
    closed("+31600000002", local(2, 9, 10), "called_back", local(2, 9, 28), "Alice"),  # 18 min
    closed("+31600000003", local(2, 11), "got_through", local(2, 13, 5), "Bob"),  # 2 h 5 min
    closed("+31600000004", local(2, 12), "done", local(2, 12, 3), "Bob"),
    DigestCase(
        number="+31612345678",
        caller="+31612345678",
        opened_at=local(2, 14, 2),
        misses=1,
        claimed_by="Alice",
        claimed_at=local(2, 14, 10),
    ),
    closed("+31600000005", local(2, 15), "called_back", local(2, 15, 40), "Alice"),  # 40 min
    closed("+31600000006", local(2, 16), "got_through", local(2, 16, 10), "Sanne"),  # 10 min
)


def digest(cases: tuple[DigestCase, ...], since: datetime = SINCE) -> DigestContent:
    return DigestContent(
        destination="support", since=since, until=UNTIL, tz="Europe/Amsterdam", cases=cases
    )


def header(words: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": words}}


def section(words: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": words}}


TITLE = "📊 Callbacks · Thu 3 Dec"
HEADLINE = "6 missed customers since Wed 08:30, and 2 from before"
COUNTS = [
    "✅ 4 called back or got through (median 29 min, longest 2 h 5 min)",
    "✋ 1 closed by hand",
    "⌛ 1 not called back in time",
    "⏳ 2 still waiting (1 from before)",
]
WAITING = [
    "+31 20 123 4567 since Tue 16:45 (1 d 15 h 45 min)",
    "+31 6 12345678 since Wed 14:02 (18 h 28 min) · 📞 Alice is calling back",
]
SUMMARY = f"{TITLE}: {HEADLINE} · " + " · ".join(COUNTS)


def test_slack_digest() -> None:
    message = slack.render(digest(FULL), {}, None)
    assert message.blocks == (
        header(TITLE),
        section(f"*{HEADLINE}*\n" + "\n".join(COUNTS)),
        section("*Still waiting*\n• " + "\n• ".join(WAITING)),
    )
    assert message.text == SUMMARY
    assert not message.broadcast


def test_teams_digest() -> None:
    message = teams.render(digest(FULL), {}, None)
    assert card_texts(message.card) == [TITLE, HEADLINE, *COUNTS, "Still waiting", *WAITING]
    assert message.card is not None
    assert message.card["body"][0] == {
        "type": "TextBlock",
        "text": TITLE,
        "wrap": True,
        "weight": "Bolder",
        "size": "Large",
    }
    assert message.text == SUMMARY


def test_text_digest() -> None:
    assert text.render(digest(FULL), {}, None).text == (
        f"DIGEST support: {SUMMARY.replace(': ', ' | ', 1)} | waiting: " + "; ".join(WAITING)
    )


def test_the_empty_digest() -> None:
    empty = "✅ No missed customers since Wed 08:30."
    slack_message = slack.render(digest(()), {}, None)
    assert slack_message.blocks == (header(TITLE), section(f"*{empty}*"))
    assert slack_message.text == f"{TITLE}: {empty}"
    teams_message = teams.render(digest(()), {}, None)
    assert card_texts(teams_message.card) == [TITLE, empty]
    assert teams_message.text == f"{TITLE}: {empty}"
    assert text.render(digest(()), {}, None).text == f"DIGEST support: {TITLE} | {empty}"


def test_only_older_cases_and_a_weekly_period() -> None:
    one = (closed("+31600000003", local(1, 11), "got_through", local(2, 13, 5), "Bob"),)
    week_ago = datetime(2026, 11, 26, 7, 30, tzinfo=UTC)
    assert text.render(digest(one), {}, None).text == (
        f"DIGEST support: {TITLE} | No new missed customers since Wed 08:30; 1 from before"
        " · ✅ 1 called back or got through (in 1 d 2 h 5 min)"
    )
    assert text.render(digest(one, week_ago), {}, None).text == (
        f"DIGEST support: {TITLE} | 1 missed customer since Thu 26 Nov 08:30"
        " · ✅ 1 called back or got through (in 1 d 2 h 5 min)"
    )


def test_at_most_ten_waiting_cases_are_listed() -> None:
    many = tuple(
        DigestCase(
            number=f"+316000000{i:02d}",
            caller=f"+316000000{i:02d}",
            opened_at=local(2, 9 + i),
            misses=1,
        )
        for i in range(12)
    )
    shown = [f"+31 6 000000{i:02d} since Wed {9 + i:02d}:00" for i in range(10)]
    waited = [f"{23 - i} h 30 min" for i in range(10)]
    lines = [f"{s} ({w})" for s, w in zip(shown, waited, strict=True)]
    message = slack.render(digest(many), {}, None)
    assert message.blocks[1:] == (
        section("*12 missed customers since Wed 08:30*\n⏳ 12 still waiting"),
        section("*Still waiting*\n• " + "\n• ".join(lines) + "\n… and 2 more"),
    )
    assert card_texts(teams.render(digest(many), {}, None).card)[-3:] == [
        lines[8],
        lines[9],
        "… and 2 more",
    ]
    assert text.render(digest(many), {}, None).text.endswith(
        f"waiting: {'; '.join(lines)}; … and 2 more"
    )


EVIL = "<!channel> *Bob* & [x](https://evil.example)"
EVIL_CASE = DigestCase(
    number="+31612345678",
    caller=EVIL,
    opened_at=local(2, 14, 2),
    misses=1,
    claimed_by="Eve_<@U1>",
    claimed_at=local(2, 15),
)


def test_names_are_escaped() -> None:
    message = slack.render(digest((EVIL_CASE,)), {}, None)
    assert message.blocks[2] == section(
        "*Still waiting*\n• &lt;!channel&gt; *Bob* &amp; [x](https://evil.example) (+31 6"
        " 12345678) since Wed 14:02 (18 h 28 min) · 📞 Eve_&lt;@U1&gt; is calling back"
    )
    assert card_texts(teams.render(digest((EVIL_CASE,)), {}, None).card)[-1] == (
        "\\<!channel\\> \\*Bob\\* & \\[x\\](https://evil.example) (+31 6 12345678) since Wed"
        " 14:02 (18 h 28 min) · 📞 Eve\\_\\<@U1\\> is calling back"
    )


def test_the_preview_draws_a_digest() -> None:
    slack_message = slack.render(digest(FULL), {}, None)
    drawn = slack_html(slack_message.text, slack_message.blocks)
    assert drawn.startswith(f'<div class="bk-header">{TITLE}</div>')
    assert "<b>Still waiting</b>" in drawn
    card = teams.render(digest(FULL), {}, None).card
    assert f'<div class="ac-text ac-weight-bolder ac-size-large">{TITLE}</div>' in teams_html(
        "x", card
    )
