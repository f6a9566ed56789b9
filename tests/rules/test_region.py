"""The region numbers are read in: derived from the rules' time zone through zone.tab, or a
clear problem asking for `callbacks: region` when cases need one and it cannot be derived."""

from __future__ import annotations

import pytest

from bridge.core.numbers import e164
from bridge.rules import RulesError, load_text
from bridge.rules.region import alias_hint, region_of_zone


@pytest.mark.parametrize(
    ("zone", "region"),
    [
        ("Europe/Amsterdam", "NL"),  # listed for NL, though tzdata links it to Brussels
        ("Europe/Brussels", "BE"),
        ("Europe/London", "GB"),
        ("America/New_York", "US"),
        ("America/Toronto", "CA"),
        ("Asia/Kolkata", "IN"),
        ("Australia/Sydney", "AU"),
        ("UTC", None),  # no country
        ("Etc/GMT-2", None),
        ("US/Eastern", None),  # an alias: not guessed
        ("CET", None),  # an alias of Europe/Brussels: guessing BE would be wrong
        ("Antarctica/Troll", None),  # a country (AQ) without phone numbers
    ],
)
def test_region_of_a_zone(zone: str, region: str | None) -> None:
    assert region_of_zone(zone) == region


def test_alias_hint_names_the_target_and_its_country() -> None:
    assert alias_hint("US/Eastern") == ("America/New_York", "US")
    assert alias_hint("Asia/Calcutta") == ("Asia/Kolkata", "IN")
    assert alias_hint("UTC") is None
    assert alias_hint("Europe/Brussels") is None  # not an alias


RULES = """\
version: 1
timezone: ZONE
destinations:
  support: {slack: {channel: C0123456789}}
routes:
  - name: all
    live: support
    missed: support
"""
ASK = (
    "callback cases read numbers dialled without a country code (0612345678) in a region, "
    "and it cannot be derived: "
)
TAIL = " under `callbacks:` (or set `callback: off` on the routes with `missed`)"


def problems(text: str) -> list[str]:
    with pytest.raises(RulesError) as caught:
        load_text(text, "r.yaml")
    return [str(p) for p in caught.value.problems]


def test_the_derived_region_reads_national_numbers() -> None:
    ruleset = load_text(RULES.replace("ZONE", "Europe/London"), "r.yaml")
    assert ruleset.callbacks.region == "GB"
    assert e164("020 7946 0000", ruleset.callbacks.region) == "+442079460000"


def test_a_zone_of_no_country_asks_for_region_at_the_timezone() -> None:
    assert problems(RULES.replace("ZONE", "UTC")) == [
        f'r.yaml:2:11: timezone: {ASK}timezone "UTC" is in no country: add `region:` with an '
        f"ISO 3166 country code like NL, BE, DE, GB or US{TAIL}"
    ]


def test_with_a_callbacks_block_it_asks_there() -> None:
    text = RULES.replace("ZONE", "Etc/UTC") + "callbacks:\n  escalate_after: 10m\n"
    assert problems(text) == [
        f'r.yaml:10:3: callbacks: {ASK}timezone "Etc/UTC" is in no country: add `region:` '
        f"with an ISO 3166 country code like NL, BE, DE, GB or US{TAIL}"
    ]


def test_an_alias_is_not_guessed_but_suggested() -> None:
    assert problems(RULES.replace("ZONE", "US/Eastern")) == [
        f'r.yaml:2:11: timezone: {ASK}timezone "US/Eastern" is an alias of America/New_York: '
        f"if your numbers are dialled as in US, add `region: US`{TAIL}"
    ]


def test_an_explicit_region_needs_no_country_in_the_zone() -> None:
    ruleset = load_text(RULES.replace("ZONE", "UTC") + "callbacks: {region: DE}\n", "r.yaml")
    assert ruleset.callbacks.region == "DE"
    assert e164("030 1234567", "DE") == "+49301234567"


def test_an_explicit_region_wins_over_the_zones() -> None:
    ruleset = load_text(
        RULES.replace("ZONE", "Europe/Amsterdam") + "callbacks: {region: BE}\n", "r"
    )
    assert ruleset.callbacks.region == "BE"


@pytest.mark.parametrize(
    "routes",
    [
        "  - {name: all, live: support}\n",  # no missed alerts: no case ever opens
        "  - {name: all, missed: support, callback: off}\n",  # cases switched off
    ],
    ids=["no missed alerts", "callback off"],
)
def test_rules_that_open_no_case_need_no_region(routes: str) -> None:
    text = RULES.replace("ZONE", "UTC").split("routes:\n")[0] + "routes:\n" + routes
    ruleset = load_text(text, "r.yaml")
    # The unknown region: only numbers written with a country code can be read.
    assert ruleset.callbacks.region == "ZZ"
    assert e164("+31612345678", ruleset.callbacks.region) == "+31612345678"
    assert e164("0612345678", ruleset.callbacks.region) is None


def test_a_bad_time_zone_is_one_problem_not_two() -> None:
    assert problems(RULES.replace("ZONE", "Mars/Olympus")) == [
        'r.yaml:2:11: timezone: unknown time zone "Mars/Olympus" (use an IANA name like '
        "Europe/Amsterdam)"
    ]
