"""The rules' callback-case settings (issue 16): `callbacks:` and a route's `callback:`.

Good files give the policies written (defaults from docs/rules.md); each bad one gives its
exact message, line and column (counted by hand)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bridge.rules import RulesError, load_text
from bridge.rules.model import CallbackPolicy

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
    missed: support
"""
DURATION = (
    "a duration like 90s, 15m, 1.5h, 14d or 2w (parts combine: 1h30m; a bare number is seconds)"
)
NO_CLOCK = (
    "only applies to the cases this route's `missed` alerts open, and this route has no "
    "`missed` destination (set it on the route that alerts, or under `callbacks:` for every "
    "route; here only `scope` counts)"
)


def problems(text: str) -> list[str]:
    with pytest.raises(RulesError) as caught:
        load_text(text, "bad.yaml")
    return [str(p) for p in caught.value.problems]


# -- good files ----------------------------------------------------------------------------


def test_without_a_callbacks_block_every_route_has_the_documented_defaults() -> None:
    ruleset = load_text(BASE + "unmatched: support\n", "r.yaml")
    default = CallbackPolicy(
        scope="default",
        escalate_after=timedelta(minutes=30),
        callback_window=timedelta(days=3),
        escalate_to=(),
        hours=None,
    )
    assert ruleset.callbacks.policy == default
    assert ruleset.callbacks.region == "NL"  # Europe/Amsterdam, by zone.tab
    assert ruleset.routes[0].actions.callback == default
    assert ruleset.unmatched is not None
    assert ruleset.unmatched.callback == default


def test_the_block_sets_every_routes_policy_and_a_route_overrides_some_keys() -> None:
    text = (
        BASE
        + """\
    callback: {scope: acme, escalate_after: 10m}
  - name: night
    when: {outside: office}
    missed: support
    callback: {hours: off, escalate_to: "<@U0NIGHT01>"}
  - name: quiet
    when: {direction: outbound}
    live: support
  - name: faxes
    when: {destination: "+31508009999"}
    missed: support
    callback: off
callbacks:
  region: BE
  scope: msp
  escalate_after: 1h30m
  callback_window: 2d
  escalate_to: ["<!subteam^S0DESK001>", "<@U0LEAD001>"]
  hours: office
"""
    )
    ruleset = load_text(text, "r.yaml")
    office = ruleset.hours["office"]
    block = CallbackPolicy(
        scope="msp",
        escalate_after=timedelta(minutes=90),
        callback_window=timedelta(days=2),
        escalate_to=("<!subteam^S0DESK001>", "<@U0LEAD001>"),
        hours=office,
    )
    assert ruleset.callbacks.region == "BE"
    assert ruleset.callbacks.policy == block
    all_, night, quiet, faxes = (r.actions.callback for r in ruleset.routes)
    assert all_ == CallbackPolicy(
        scope="acme",
        escalate_after=timedelta(minutes=10),
        callback_window=timedelta(days=2),
        escalate_to=("<!subteam^S0DESK001>", "<@U0LEAD001>"),
        hours=office,
    )
    assert night == CallbackPolicy(
        scope="msp",
        escalate_after=timedelta(minutes=90),
        callback_window=timedelta(days=2),
        escalate_to=("<@U0NIGHT01>",),
        hours=None,
    )
    assert quiet == block
    assert faxes is None


@pytest.mark.parametrize("off", ["off", "never", "Off", '"off"', "false", "no"])
def test_escalate_after_off_never_escalates(off: str) -> None:
    ruleset = load_text(BASE + f"callbacks: {{escalate_after: {off}}}\n", "r.yaml")
    assert ruleset.callbacks.policy.escalate_after is None
    assert ruleset.routes[0].actions.callback == CallbackPolicy(escalate_after=None)


def test_a_route_may_only_choose_the_scope_of_the_calls_it_matches() -> None:
    """A route that posts nothing but says `callback:` and `continue: true` chooses the scope
    (the MSP recipe); a drop route may too, and may take its calls out of cases."""
    text = BASE.replace(
        "  - name: all\n",
        """\
  - name: acme numbers
    when: {destination: "+3120111*"}
    callback: {scope: acme}
    continue: true
  - name: ignore the lab
    when: {caller: "+31508009099"}
    drop: true
    callback: off
  - name: ignore the fax
    when: {caller: "+31508009098"}
    drop: true
    callback: {scope: fax}
  - name: all
""",
    )
    ruleset = load_text(text, "r.yaml")
    scope_route, lab, fax, _ = ruleset.routes
    assert scope_route.actions.callback == CallbackPolicy(scope="acme")
    assert (scope_route.continue_, scope_route.actions.live) == (True, ())
    assert lab.actions.callback is None
    assert fax.actions.callback == CallbackPolicy(scope="fax")


def test_unmatched_takes_a_callback_like_a_route() -> None:
    ruleset = load_text(
        BASE + "unmatched: {missed: support, callback: {scope: other, escalate_after: 5m}}\n",
        "r.yaml",
    )
    assert ruleset.unmatched is not None
    assert ruleset.unmatched.callback == CallbackPolicy(
        scope="other", escalate_after=timedelta(minutes=5)
    )
    off = load_text(BASE + "unmatched: {live: support, callback: off}\n", "r.yaml")
    assert off.unmatched is not None
    assert off.unmatched.callback is None


@pytest.mark.parametrize(
    ("written", "region"),
    [("NO", "NO"), ("be", "BE"), ('"gb"', "GB"), ("US", "US")],
    ids=["Norway is not false", "lower case", "quoted", "upper case"],
)
def test_region_is_read_as_written(written: str, region: str) -> None:
    ruleset = load_text(BASE + f"callbacks: {{region: {written}}}\n", "r.yaml")
    assert ruleset.callbacks.region == region


# -- bad files -----------------------------------------------------------------------------

ERRORS = [
    (
        "not a mapping",
        BASE + "callbacks: 30m\n",
        ["bad.yaml:11:12: callbacks: expected a mapping (key: value lines), got text"],
    ),
    (
        "unknown key in the block",
        BASE + "callbacks: {escalate: 10m}\n",
        [
            'bad.yaml:11:13: callbacks.escalate: unknown key (did you mean "escalate_to"? '
            "allowed here: region, scope, escalate_after, callback_window, escalate_to, hours)"
        ],
    ),
    (
        "unknown region",
        BASE + "callbacks: {region: XX}\n",
        [
            'bad.yaml:11:21: callbacks.region: "XX" is not a region phone numbers can be read '
            "in (expected an ISO 3166 country code like NL, BE, DE, GB or US)"
        ],
    ),
    (
        "UK is GB",
        BASE + "callbacks: {region: UK}\n",
        [
            'bad.yaml:11:21: callbacks.region: "UK" is not a region phone numbers can be read '
            "in (the United Kingdom's is GB)"
        ],
    ),
    (
        "region not text",
        BASE + "callbacks: {region: [NL]}\n",
        [
            "bad.yaml:11:21: callbacks.region: a list is not a region phone numbers can be "
            "read in (expected an ISO 3166 country code like NL, BE, DE, GB or US)"
        ],
    ),
    (
        "bad scope",
        BASE + "callbacks: {scope: Acme Corp}\n",
        [
            'bad.yaml:11:20: callbacks.scope: "Acme Corp" is not a scope name (letters, '
            "digits, - _ and ., at most 64 characters, e.g. acme)"
        ],
    ),
    (
        "escalate_after not a duration",
        BASE + "callbacks: {escalate_after: soon}\n",
        [
            'bad.yaml:11:29: callbacks.escalate_after: "soon" is not a duration (expected '
            f"{DURATION}, or off to never escalate)"
        ],
    ),
    (
        "escalate_after true",
        BASE + "callbacks: {escalate_after: true}\n",
        [
            'bad.yaml:11:29: callbacks.escalate_after: "true" is not a duration (expected '
            f"{DURATION}, or off to never escalate)"
        ],
    ),
    (
        "escalate_after zero",
        BASE + "callbacks: {escalate_after: 0m}\n",
        [
            "bad.yaml:11:29: callbacks.escalate_after: must be longer than 0s (write off to "
            "never escalate)"
        ],
    ),
    (
        "callback_window off",
        BASE + "callbacks: {callback_window: off}\n",
        [
            "bad.yaml:11:30: callbacks.callback_window: a case always ends: give the time "
            "after which it closes as not called back (e.g. 3d)"
        ],
    ),
    (
        "callback_window zero",
        BASE + "callbacks: {callback_window: 0}\n",
        ["bad.yaml:11:30: callbacks.callback_window: must be longer than 0s (e.g. 3d)"],
    ),
    (
        "escalation not before the window, in the block",
        BASE + "callbacks: {escalate_after: 3d}\n",
        [
            "bad.yaml:11:29: callbacks.escalate_after: escalate_after (3d) must be shorter "
            "than callback_window (3d): at its window a case closes as not called back, so it "
            "would never escalate (shorten escalate_after, lengthen callback_window, or write "
            "escalate_after: off)"
        ],
    ),
    (
        "a route's window shorter than the file's escalation",
        BASE + "    callback: {callback_window: 20m}\n",
        [
            "bad.yaml:11:33: routes[0].callback.callback_window: escalate_after (30m) must be "
            "shorter than callback_window (20m): at its window a case closes as not called "
            "back, so it would never escalate (shorten escalate_after, lengthen "
            "callback_window, or write escalate_after: off)"
        ],
    ),
    (
        "unknown hours",
        BASE + "callbacks: {hours: ofice}\n",
        [
            'bad.yaml:11:20: callbacks.hours: unknown hours "ofice" (did you mean "office"?) '
            "(defined under hours: office; or `off`: the clock always runs)"
        ],
    ),
    (
        "hours that never open",
        BASE.replace("hours:\n", "hours:\n  shut: {}\n") + "    callback: {hours: shut}\n",
        [
            'bad.yaml:12:23: routes[0].callback.hours: hours "shut" is never open, so the '
            "clock would never run (give it open ranges, or write `hours: off`)"
        ],
    ),
    (
        "a window of more than a year of open time",
        BASE.replace("hours:\n", 'hours:\n  sat: {sat: "10:00-11:00"}\n')
        + "callbacks: {hours: sat}\n",
        [
            'bad.yaml:12:20: callbacks.hours: callback_window 3d counts only while hours "sat" '
            "is open (1h a week): more than a year (shorten the window, or use hours that are "
            "open longer)"
        ],
    ),
    (
        "empty escalate_to",
        BASE + "callbacks: {escalate_to: []}\n",
        [
            "bad.yaml:11:26: callbacks.escalate_to: the list is empty (remove the key or add "
            "a value)"
        ],
    ),
    (
        "callback: on",
        BASE + "    callback: on\n",
        [
            "bad.yaml:11:15: routes[0].callback: callback cases are on by default (with the "
            "policy under `callbacks:`): write `callback: off`, or a mapping of the keys to "
            "change for this route"
        ],
    ),
    (
        "callback: a number",
        BASE + "    callback: 5\n",
        [
            "bad.yaml:11:15: routes[0].callback: expected `off` or a mapping of scope, "
            "escalate_after, callback_window, escalate_to, hours, got a number"
        ],
    ),
    (
        "region in a route",
        BASE + "    callback: {region: BE}\n",
        [
            "bad.yaml:11:16: routes[0].callback.region: unknown key (allowed here: scope, "
            "escalate_after, callback_window, escalate_to, hours)"
        ],
    ),
    (
        "callbacks (plural) in a route",
        BASE + "    callbacks: off\n",
        [
            'bad.yaml:11:5: routes[0].callbacks: unknown key (did you mean "callback"? '
            "allowed here: name, when, live, missed, summary, mention, min_ring, "
            "missed_reason, callback, continue, drop)"
        ],
    ),
    (
        "clock keys on a route without missed",
        BASE.replace("    missed: support\n", "")
        + "    callback: {scope: a, escalate_after: 5m, hours: office}\n",
        [
            f"bad.yaml:10:42: routes[0].callback.escalate_after: `escalate_after` {NO_CLOCK}",
            f"bad.yaml:10:53: routes[0].callback.hours: `hours` {NO_CLOCK}",
        ],
    ),
    (
        "clock keys on a drop route",
        BASE + "  - {name: lab, drop: true, callback: {callback_window: 1d}}\n",
        [f"bad.yaml:11:57: routes[1].callback.callback_window: `callback_window` {NO_CLOCK}"],
    ),
    (
        "clock keys on unmatched without missed",
        BASE + "unmatched: {live: support, callback: {escalate_to: '<!here>'}}\n",
        [f"bad.yaml:11:52: unmatched.callback.escalate_to: `escalate_to` {NO_CLOCK}"],
    ),
    (
        "a scope route must continue",
        BASE + "  - {name: acme, callback: {scope: acme}}\n",
        [
            "bad.yaml:11:5: routes[1]: this route does nothing: give it live, missed or summary "
            "destinations, `drop: true` to ignore the calls it matches, or `callback:` with "
            "`continue: true` to choose their callback scope"
        ],
    ),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS])
def test_error_message(text: str, expected: list[str]) -> None:
    assert problems(text) == expected


def test_every_problem_of_the_block_at_once() -> None:
    text = (
        BASE
        + """\
callbacks:
  region: XX
  scope: "a b"
  escalate_after: soon
  hours: nights
"""
    )
    assert [p.split(": ")[0] for p in problems(text)] == [
        "bad.yaml:12:11",
        "bad.yaml:13:10",
        "bad.yaml:14:19",
        "bad.yaml:15:10",
    ]
