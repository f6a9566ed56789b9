"""One bad rules file per kind of error: the exact message, line and column (counted by hand)."""

from __future__ import annotations

import pytest

from bridge.rules import RulesError, load_text

BASE = """\
version: 1
timezone: Europe/Amsterdam
destinations:
  support: {slack: {channel: C0123456789}}
hours:
  office: {mon-fri: "08:30-17:30"}
routes:
  - name: all
    live: support
"""


def problems(text: str) -> list[str]:
    with pytest.raises(RulesError) as caught:
        load_text(text, "bad.yaml")
    return [str(p) for p in caught.value.problems]


CASES = [
    (
        "unknown top-level key",
        BASE + "unmatchd: support\n",
        [
            'bad.yaml:10:1: unmatchd: unknown key (did you mean "unmatched"? '
            "allowed here: version, "
            "timezone, destinations, hours, callbacks, digest, routes, unmatched, tests)"
        ],
    ),
    (
        "unknown route key",
        BASE.replace("    live: support", "    lvie: support"),
        [
            'bad.yaml:9:5: routes[0].lvie: unknown key (did you mean "live"? allowed here: name, '
            "when, live, missed, summary, mention, min_ring, missed_reason, callback, continue, "
            "drop)"
        ],
    ),
    (
        "unknown when key",
        BASE + "    when: {dialled: '+31508009000'}\n",
        [
            "bad.yaml:10:12: routes[0].when.dialled: unknown key (did you mean "
            '"caller"? allowed here: '
            "direction, caller, "
            "destination, caller_name, target, internal, during, outside)"
        ],
    ),
    (
        "wrong type",
        BASE + "    continue: maybe\n",
        ["bad.yaml:10:15: routes[0].continue: expected true or false, got text"],
    ),
    (
        "wrong type for a section",
        BASE.replace("routes:\n  - name: all\n    live: support\n", "routes: {name: all}\n"),
        ["bad.yaml:7:9: routes: expected a list of routes (each starting with `- name:`)"],
    ),
    (
        "undefined destination",
        BASE.replace("live: support", "live: suport"),
        [
            'bad.yaml:9:11: routes[0].live: unknown destination "suport" (did you mean "support"?) '
            "(defined under destinations: support)"
        ],
    ),
    (
        "undefined hours",
        BASE + "    when: {during: ofice}\n",
        [
            'bad.yaml:10:20: routes[0].when.during: unknown hours "ofice" (did you mean "office"?) '
            "(defined under hours: office)"
        ],
    ),
    (
        "malformed number",
        BASE + "    when: {destination: '+31-50-abc'}\n",
        [
            'bad.yaml:10:25: routes[0].when.destination: "+31-50-abc" is not a '
            "phone number pattern "
            "(use digits with an optional leading +, * for any digits and ? for one digit, "
            'e.g. "+31508009000" or "+3150800901*")'
        ],
    ),
    (
        "malformed glob",
        BASE + "    when: {caller: ['+31*', '3+1*']}\n",
        [
            'bad.yaml:10:29: routes[0].when.caller[1]: "3+1*" is not a phone number pattern '
            "(use digits with an optional leading +, * for any digits and ? for one digit, "
            'e.g. "+31508009000" or "+3150800901*")'
        ],
    ),
    (
        "malformed e-mail target",
        BASE + "    when: {target: 'jan@@example.com'}\n",
        [
            'bad.yaml:10:20: routes[0].when.target: "jan@@example.com" is not an e-mail address '
            'pattern (e.g. "jan@example.com" or "*@support.example.com")'
        ],
    ),
    (
        "malformed regex",
        BASE + "    when: {caller_name: 'acme('}\n",
        [
            'bad.yaml:10:25: routes[0].when.caller_name: "acme(" is not a valid '
            "regular expression: "
            "missing ), unterminated subpattern at position 4 (escape special characters like "
            "| ( ) with a backslash)"
        ],
    ),
    (
        "empty time range",
        BASE.replace('"08:30-17:30"', '"08:00-08:00"'),
        [
            'bad.yaml:6:21: hours.office.mon-fri: "08:00-08:00" is empty: it ends when it '
            "starts (leave the day out to close it)"
        ],
    ),
    (
        "inverted time range",
        BASE.replace('"08:30-17:30"', '"17:30-08:30"'),
        [
            'bad.yaml:6:21: hours.office.mon-fri: "17:30-08:30" ends before it starts (write '
            'start-end within one day; split hours past midnight, e.g. mon: "22:00-24:00" and '
            'tue: "00:00-06:00")'
        ],
    ),
    (
        "overlapping time ranges",
        BASE.replace('{mon-fri: "08:30-17:30"}', '{mon-fri: "08:30-17:30", fri: "17:00-19:00"}'),
        [
            'bad.yaml:6:41: hours.office.fri: "17:00-19:00" overlaps "08:30-17:30" from mon-fri on '
            "fri (ranges of one day must not overlap; merge them)"
        ],
    ),
    (
        "malformed time range",
        BASE.replace('"08:30-17:30"', '"8.30-17"'),
        [
            'bad.yaml:6:21: hours.office.mon-fri: "8.30-17" is not a time range '
            '(expected "HH:MM-HH:MM", e.g. "08:30-17:30")'
        ],
    ),
    (
        "unknown day",
        BASE.replace("{mon-fri:", "{mon-fry:"),
        [
            'bad.yaml:6:12: hours.office.mon-fry: unknown key (did you mean "mon"? allowed here: a '
            "day mon..sun, a day range like mon-fri, closed, timezone)"
        ],
    ),
    (
        "backwards day range",
        BASE.replace("{mon-fri:", "{fri-mon:"),
        [
            "bad.yaml:6:12: hours.office.fri-mon: day range fri-mon runs backwards (ranges go from "
            "mon to sun, e.g. mon-fri or sat-sun; list other days separately)"
        ],
    ),
    (
        "bad date",
        BASE.replace('"08:30-17:30"}', '"08:30-17:30", closed: [2026-02-30]}'),
        [
            'bad.yaml:6:45: hours.office.closed[0]: "2026-02-30" is not a date '
            "(expected YYYY-MM-DD "
            "like 2026-12-25, or a range like 2026-12-24..2026-12-31)"
        ],
    ),
    (
        "unknown time zone",
        BASE.replace("Europe/Amsterdam", "Europe/Amsterdm"),
        [
            'bad.yaml:2:11: timezone: unknown time zone "Europe/Amsterdm" '
            '(did you mean "Europe/Amsterdam"?)'
        ],
    ),
    (
        "unknown time zone is one problem, not one more per route naming an hours schedule",
        BASE.replace("Europe/Amsterdam", "Europe/Amsterdm")
        + "  - name: day\n    when: {during: office}\n    live: support\n"
        + "  - name: night\n    when: {outside: office}\n    live: support\n",
        [
            'bad.yaml:2:11: timezone: unknown time zone "Europe/Amsterdm" '
            '(did you mean "Europe/Amsterdam"?)'
        ],
    ),
    (
        "missing time zone: the schedules are still read and checked",
        BASE.replace("timezone: Europe/Amsterdam\n", "").replace("08:30-17:30", "8:30-25:00")
        + "  - name: day\n    when: {during: office}\n    live: support\n",
        [
            "bad.yaml:1:1: missing required key `timezone` (e.g. `timezone: Europe/Amsterdam`; "
            "hours are evaluated in it)",
            'bad.yaml:5:21: hours.office.mon-fri: "8:30-25:00" has an impossible time '
            "(hours 00-23, or 24:00 as end)",
        ],
    ),
    (
        "duplicate key",
        BASE + "    live: support\n",
        [
            "bad.yaml:10:5: routes[0].live: duplicate key 'live' (already given at line 9, "
            "column 5; keep only one)"
        ],
    ),
    (
        "route without name",
        BASE.replace("  - name: all\n    live: support", "  - live: support"),
        [
            "bad.yaml:8:5: routes[0]: missing required key `name` (every route needs a name; it "
            "shows in `route` output and logs)"
        ],
    ),
    (
        "duplicate route name",
        BASE + "  - {name: all, live: support}\n",
        [
            'bad.yaml:10:12: routes[1].name: "all" is already the name of routes[0] '
            "(route names must be unique)"
        ],
    ),
    (
        "missing version",
        BASE.replace("version: 1\n", ""),
        ["bad.yaml:1:1: missing required key `version` (add `version: 1` at the top)"],
    ),
    (
        "wrong version",
        BASE.replace("version: 1", "version: 2"),
        ['bad.yaml:1:10: version: unsupported version "2" (this bridge reads version: 1)'],
    ),
    (
        "route that does nothing",
        BASE + "  - {name: idle, when: {direction: inbound}}\n",
        [
            "bad.yaml:10:5: routes[1]: this route does nothing: give it live, missed or summary "
            "destinations, `drop: true` to ignore the calls it matches, or `callback:` with "
            "`continue: true` to choose their callback scope"
        ],
    ),
    (
        "drop with deliveries",
        BASE + "    drop: true\n",
        [
            "bad.yaml:8:5: routes[0]: a route with `drop: true` posts nothing and stops; remove "
            "live/missed/summary/continue, or remove drop"
        ],
    ),
    (
        "missed_reason inside when",
        BASE + "    when: {missed_reason: busy}\n",
        [
            "bad.yaml:10:12: routes[0].when.missed_reason: move `missed_reason` "
            "out of `when`, next "
            "to `missed`: it chooses which missed calls alert, not which calls match"
        ],
    ),
    (
        "min_ring without missed",
        BASE + "    min_ring: 10s\n",
        [
            "bad.yaml:10:15: routes[0].min_ring: `min_ring` only applies to `missed` alerts, and "
            "this has no `missed` destination (add one, or remove the key)"
        ],
    ),
    (
        "bad slack channel",
        BASE.replace("C0123456789", "support-team"),
        [
            'bad.yaml:4:30: destinations.support.slack.channel: "support-team" is '
            "not a Slack channel ID "
            "(use the ID like C0123456789: channel details, at the bottom; names can change)"
        ],
    ),
    (
        "teams channel by name",
        BASE.replace("{slack: {channel: C0123456789}}", '{teams: {conversation: "General"}}'),
        [
            'bad.yaml:4:35: destinations.support.teams.conversation: "General" is not a Teams '
            'conversation ID: a channel\'s looks like "19:abc123@thread.tacv2" (the URL-decoded '
            'part after /channel/ in the channel\'s "Get link to channel"); a name is refused '
            "because names change"
        ],
    ),
    (
        "slack mention on a teams destination",
        BASE.replace(
            "{slack: {channel: C0123456789}}",
            '{teams: {conversation: "19:a@thread.tacv2", mention: ["<!here>", "jan@example.com"]}}',
        ),
        [
            'bad.yaml:4:66: destinations.support.teams.mention[0]: "<!here>" is a Slack '
            "mention: a Teams destination mentions people by their e-mail address (sign-in "
            "name), e.g. jan@example.com"
        ],
    ),
    (
        "slack and teams",
        BASE.replace(
            "{slack: {channel: C0123456789}}",
            "{slack: {channel: C0123456789}, teams: {conversation: x}}",
        ),
        [
            "bad.yaml:4:12: destinations.support: give exactly one of `slack` or `teams`",
            # ...and what is wrong inside each is said in the same pass
            'bad.yaml:4:66: destinations.support.teams.conversation: "x" is not a Teams '
            'conversation ID: a channel\'s looks like "19:abc123@thread.tacv2" (the URL-decoded '
            'part after /channel/ in the channel\'s "Get link to channel"); a name is refused '
            "because names change",
        ],
    ),
    (
        "YAML syntax error",
        BASE + "  - name: [unclosed\n",
        [
            "bad.yaml:11:1: YAML syntax error: expected ',' or ']', but got '<stream end>' while "
            "parsing a flow sequence (check indentation, colons and quotes)"
        ],
    ),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_error_message(text: str, expected: list[str]) -> None:
    assert problems(text) == expected


def test_all_errors_in_one_pass_sorted_by_position() -> None:
    text = """\
version: 1
timezone: Mars/Olympus
destinations:
  support: {slack: {channel: C0123456789}}
routes:
  - name: a
    live: nowhere
    colour: red
  - when: {direction: sideways}
    live: support
"""
    found = problems(text)
    assert [p.split(": ")[0] for p in found] == [
        "bad.yaml:2:11",
        "bad.yaml:7:11",
        "bad.yaml:8:5",
        "bad.yaml:9:5",
        "bad.yaml:9:23",
    ]
    assert found[3] == (
        "bad.yaml:9:5: routes[1]: missing required key `name` (every route "
        "needs a name; it shows in `route` output and logs)"
    )
    assert found[4] == (
        'bad.yaml:9:23: routes[1].when.direction: "sideways" is not a direction '
        "(inbound or outbound)"
    )
