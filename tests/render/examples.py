"""Print the README's "Callback cases" examples: every state of a case's alert and its thread,
rendered by the real Slack renderer (bridge.render.slack) from cases folded by
bridge.core.cases.fold (tests/render/cases.py), then shown as Slack displays that markup.

    python -m tests.render.examples              # print them
    python -m tests.render.examples README.md    # replace them in README.md, between markers

"As Slack displays it" is mechanical: mentions become the names below, Slack's live date
becomes "14:02 (8 minutes ago)" at the moment the example looks at the case, *bold* and
`code` lose their marks, entities are unescaped, fields are listed, buttons are [ bracketed ].
Nothing here is written by hand except those names.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bridge.core.cases import Case
from bridge.render.message import OutgoingMessage
from bridge.render.slack import render
from tests.render import cases as K

NAMES = {"<@UJOHAN>": "@Johan", "<@UALICE>": "@Alice", "<!here>": "@here"}
NAMES |= {"<!subteam^S0123>": "@support-leads"}
USERS = {"johan@example.com": "UJOHAN"}
LINK = "https://example.slack.com/archives/C0123456789/p1796216550000100"
LIVE_DATE = re.compile(r"<!date\^(\d+)\^\{time\} \(\{ago\}\)\|[^>]*>")
LINKED = re.compile(r"<https?://[^|>]*\|([^>]*)>")

STATES: list[tuple[str, str, Callable[..., Case], float]] = [
    ("open", "Open: nobody is on it yet", K.open_case, 8),
    ("stacked", "Stacked: the customer tried three times", K.stacked, 20),
    ("claimed", "Claimed: Alice pressed *I'll call back*", K.claimed, 38),
    ("tried", "Tried: two callbacks nobody answered", K.tried_twice, 28),
    ("escalated", "Escalated: still open and unclaimed after 30 minutes", K.escalated, 43),
    ("got_through", "Closed: the customer got through", K.got_through, 60),
    ("called_back", "Closed: called back", K.called_back, 60),
    ("done", "Closed by hand: Alice pressed *Done*", K.done, 60),
    ("expired", "Closed: not called back within the callback window", K.expired, 4 * 1440),
]


def ago(then: datetime, now: datetime) -> str:
    minutes = int((now - then) / timedelta(minutes=1))
    if minutes < 60:
        return f"{minutes} minutes ago"
    hours = minutes // 60
    return f"{hours} hours ago" if hours < 48 else f"{hours // 24} days ago"


def shown(mrkdwn: str, now: datetime) -> str:
    """``mrkdwn`` as Slack displays it (see the module docstring)."""

    def live(match: re.Match[str]) -> str:
        then = datetime.fromtimestamp(int(match.group(1)), UTC)
        local = then.astimezone(ZoneInfo(K.TZ)).strftime("%H:%M")
        return f"{local} ({ago(then, now)})"

    text = LIVE_DATE.sub(live, mrkdwn)
    text = LINKED.sub(r"\1", text)
    for markup, name in NAMES.items():
        text = text.replace(markup, name)
    text = re.sub(r"\*([^*\n]+)\*", r"\1", text).replace("`", "")
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def lines(message: OutgoingMessage, now: datetime) -> Iterator[str]:
    for block in message.blocks:
        kind = block["type"]
        if kind == "header":
            yield block["text"]["text"]
        elif kind == "section":
            yield shown(block["text"]["text"], now)
            fields = [shown(f["text"], now).replace("\n", ": ") for f in block.get("fields", [])]
            if fields:
                yield " · ".join(fields)
        elif kind == "context":
            yield from (shown(e["text"], now) for e in block["elements"])
        elif kind == "actions":
            yield "  ".join(f"[ {b['text']['text']} ]" for b in block["elements"])


def example(case: Case, now: datetime) -> list[str]:
    alert = render(K.alert(case, ("<!here>",)), USERS, LINK, buttons=True)
    out = list(lines(alert, now))
    for i in range(len(case.steps)):
        reply = render(K.step_content(case, i), USERS, None)
        also = "  (also sent to the channel)" if reply.broadcast else ""
        out.append(f"  ↳ {shown(reply.blocks[0]['text']['text'], now)}{also}")
    return out


def markdown() -> str:
    parts: list[str] = []
    for _, title, build, minutes in STATES:
        now = K.at(minutes)
        local = now.astimezone(ZoneInfo(K.TZ)).strftime("%a %H:%M")
        parts.append(
            f"**{title}** (seen {local}):\n\n```\n"
            + "\n".join(example(build(minutes), now))
            + "\n```"
        )
    return "\n\n".join(parts) + "\n"


START, END = "<!-- case-examples:start -->", "<!-- case-examples:end -->"


def main(argv: list[str]) -> int:
    if not argv:
        print(markdown(), end="")
        return 0
    path = Path(argv[0])
    text = path.read_text(encoding="utf-8")
    before, found, rest = text.partition(START)
    _, found_end, after = rest.partition(END)
    if not (found and found_end):
        print(f"{path}: no {START} … {END} markers to put the examples between", file=sys.stderr)
        return 1
    path.write_text(f"{before}{START}\n{markdown()}{END}{after}", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
