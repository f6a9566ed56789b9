"""The preview's HTML (bridge/render/preview_html.py): Block Kit and Adaptive Card payloads
drawn as HTML, every text escaped, only harmless links kept. Expected HTML written by hand."""

from __future__ import annotations

from bridge.render.blockkit import escape as slack_escape
from bridge.render.preview_html import (
    PreviewChannel,
    PreviewMessage,
    board_html,
    mrkdwn,
    slack_html,
    teams_html,
    teams_markdown,
)

EVIL = '<script>alert(1)</script><img src=x onerror="alert(2)">'


def test_mrkdwn_basics() -> None:
    assert mrkdwn("*Ringing* · _Johan_ ~gone~ `12:00`") == (
        "<b>Ringing</b> · <i>Johan</i> <s>gone</s> <code>12:00</code>"
    )
    assert mrkdwn("a\nb") == "a<br>b"
    # Slack's own escapes are undone once, then everything is escaped for HTML.
    assert mrkdwn("A &amp; B &lt;b&gt;") == "A &amp; B &lt;b&gt;"


def test_mrkdwn_links_mentions_and_dates() -> None:
    assert mrkdwn("<https://example.com/x?a=1&amp;b=2|the thread>") == (
        '<a href="https://example.com/x?a=1&amp;b=2" target="_blank" '
        'rel="noopener noreferrer">the thread</a>'
    )
    assert mrkdwn("since <!date^1764590400^{time} ({ago})|14:02>") == (
        'since <span class="date">14:02</span>'
    )
    assert mrkdwn("<@U123> <!here> <!subteam^S1|@oncall>") == (
        '<span class="mention">@U123</span> <span class="mention">@here</span> '
        '<span class="mention">@oncall</span>'
    )


def test_a_dangerous_link_is_text_only() -> None:
    assert mrkdwn("<javascript:alert(1)|click>") == "click"
    assert teams_markdown("[click](javascript:alert(1))") == "click)"
    assert 'href="data:' not in mrkdwn("<data:text/html,x|x>")


def test_a_callers_markup_is_text_in_slack_blocks() -> None:
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": EVIL}},
        # mrkdwn as the renderer writes it (Slack-escaped) and raw (Slack's `<…>` syntax)
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{slack_escape(EVIL)}*"}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": slack_escape(EVIL)}]},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": EVIL}]},
    ]
    out = slack_html("fallback", blocks)
    assert "<script" not in out
    assert "<img" not in out
    assert out.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 3
    assert "onerror=&quot;alert(2)&quot;" in out


def test_slack_blocks() -> None:
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "📵 Missed call"}},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "*From* Jan"},
            "fields": [{"type": "mrkdwn", "text": "*Line*\n+31 50"}],
        },
        {"type": "divider"},
        {
            "type": "actions",
            "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": "I'll call back"}}
            ],
        },
        {"type": "video"},
    ]
    assert slack_html("x", blocks) == (
        '<div class="bk-header">📵 Missed call</div>'
        '<div class="bk-section"><div class="bk-text"><b>From</b> Jan</div>'
        '<div class="bk-fields"><div><b>Line</b><br>+31 50</div></div></div>'
        "<hr>"
        '<div class="bk-actions"><button disabled class="">I&#x27;ll call back</button></div>'
        '<div class="unknown">[video block]</div>'
    )
    assert slack_html("plain *text*", ()) == '<div class="bk-text">plain <b>text</b></div>'


def test_adaptive_card() -> None:
    card = {
        "type": "AdaptiveCard",
        "body": [
            {"type": "TextBlock", "text": "**Missed** \\*not bold\\*", "weight": "Bolder"},
            {"type": "FactSet", "facts": [{"title": "Line", "value": "+31 50"}]},
            {
                "type": "ColumnSet",
                "columns": [{"type": "Column", "items": [{"type": "TextBlock", "text": "a"}]}],
            },
            {"type": "Container", "items": [{"type": "TextBlock", "text": "<at>Jan</at>"}]},
        ],
        "actions": [
            {"type": "Action.OpenUrl", "title": "Open", "url": "https://teams.example/x"},
            {"type": "Action.OpenUrl", "title": "Bad", "url": "javascript:alert(1)"},
        ],
    }
    assert teams_html("x", card) == (
        '<div class="ac-card">'
        '<div class="ac-text ac-weight-bolder"><b>Missed</b> *not bold*</div>'
        '<table class="ac-facts"><tr><th>Line</th><td>+31 50</td></tr></table>'
        '<div class="ac-columns"><div class="ac-column"><div class="ac-text">a</div></div></div>'
        '<div class="ac-container"><div class="ac-text"><span class="mention">@Jan</span>'
        "</div></div>"
        '<div class="ac-actions"><a href="https://teams.example/x" target="_blank" '
        'rel="noopener noreferrer"><span class="ac-action">Open</span></a>'
        '<span class="ac-action">Bad</span></div></div>'
    )


def test_a_callers_markup_is_text_in_a_card() -> None:
    card = {
        "body": [
            {"type": "TextBlock", "text": EVIL},
            {"type": "FactSet", "facts": [{"title": EVIL, "value": EVIL}]},
        ]
    }
    out = teams_html("x", card)
    assert "<script" not in out
    assert "<img" not in out
    assert out.count("&lt;script&gt;") == 3


def test_the_board_escapes_channel_names_and_ids() -> None:
    reply = PreviewMessage("r1", "12:00:01", "<i>reply</i>")
    message = PreviewMessage('m"1', "12:00:00", "<b>body</b>", edits=1, replies=(reply,))
    out = board_html([PreviewChannel("slack", "C1", "<b>x</b>", (message,))])
    assert 'data-channel="&lt;b&gt;x&lt;/b&gt;"' in out
    assert 'data-id="m&quot;1"' in out
    assert "<b>body</b>" in out
    assert "(edited)" in out
    assert "1 reply" in out
    assert board_html([PreviewChannel("teams", "19:a", "sales")]).count("no messages yet") == 1
