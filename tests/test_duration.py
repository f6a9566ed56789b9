"""One duration grammar for the settings and the rules file (bridge/core/duration.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bridge.core.duration import format_duration, parse_duration
from bridge.rules import RulesError
from bridge.service.settings import SettingsError, load
from tests.rules.helpers import rules

GOOD = [
    ("90", timedelta(seconds=90)),
    ("2.5", timedelta(seconds=2.5)),
    ("90s", timedelta(seconds=90)),
    ("15m", timedelta(minutes=15)),
    ("1.5h", timedelta(minutes=90)),
    ("4h", timedelta(hours=4)),
    ("14d", timedelta(days=14)),
    ("2w", timedelta(days=14)),
    ("1h30m", timedelta(minutes=90)),
    ("1h 30m", timedelta(minutes=90)),
    ("1m30s", timedelta(seconds=90)),
    ("4H", timedelta(hours=4)),
]
BAD = ["", "h", "4 hours", "-1h", "1x", "1h30", "1,5h", "two weeks", "1.h", "PT4H"]


@pytest.mark.parametrize(("text", "expected"), GOOD)
def test_the_grammar(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", BAD)
def test_what_is_not_a_duration_says_what_is(text: str) -> None:
    with pytest.raises(ValueError, match=r"expected a duration like 90s, 15m, 1\.5h, 14d or 2w"):
        parse_duration(text)


def min_ring(text: str) -> timedelta | None:
    route = f"routes:\n  - {{name: m, missed: support, min_ring: {text}}}\n"
    return rules(route).routes[0].actions.min_ring


@pytest.mark.parametrize(("text", "expected"), GOOD)
def test_settings_and_rules_read_every_duration_alike(text: str, expected: timedelta) -> None:
    assert load({"CALLBRIDGE_RETENTION": text}).retention == expected
    assert min_ring(f'"{text}"') == expected


@pytest.mark.parametrize("text", [t for t in BAD if t])
def test_settings_and_rules_refuse_the_same_durations(text: str) -> None:
    with pytest.raises(SettingsError, match="CALLBRIDGE_RETENTION: expected a duration"):
        load({"CALLBRIDGE_RETENTION": text})
    with pytest.raises(RulesError, match=r"routes\[0\]\.min_ring: .* is not a duration"):
        min_ring(f'"{text}"')


@pytest.mark.parametrize(
    "text", ["36501d", "5215w", "1000000000d", "99999999999999999999999d", "9" * 400]
)
def test_a_duration_longer_than_a_century_is_refused_everywhere_with_words(text: str) -> None:
    message = f"'{text}' is too long: at most 36500d"
    with pytest.raises(ValueError, match=message):
        parse_duration(text)
    with pytest.raises(SettingsError, match=f"CALLBRIDGE_RETENTION: {message}"):
        load({"CALLBRIDGE_RETENTION": text})
    with pytest.raises(
        RulesError, match=r'routes\[0\]\.min_ring: ".*" is too long \(at most 36500d\)'
    ):
        min_ring(f'"{text}"')
    escalate = f"callbacks: {{escalate_after: {text}}}\nroutes:\n  - {{name: m, missed: support}}\n"
    with pytest.raises(RulesError, match=r"callbacks\.escalate_after: .* is too long"):
        rules(escalate)


def test_a_century_is_still_a_duration() -> None:
    assert parse_duration("36500d") == timedelta(days=36500)
    assert load({"CALLBRIDGE_RETENTION": "5214w"}).retention == timedelta(weeks=5214)


@pytest.mark.parametrize("variable", ["CALLBRIDGE_RETENTION", "CALLBRIDGE_STALE_AFTER"])
def test_keeping_calls_for_no_time_is_refused(variable: str) -> None:
    with pytest.raises(SettingsError, match=f"{variable}: expected a duration above 0, got '0s'"):
        load({variable: "0s"})


def test_the_rules_also_take_yaml_numbers_as_seconds() -> None:
    assert min_ring("20") == timedelta(seconds=20)
    assert min_ring("1.5") == timedelta(seconds=1.5)
    with pytest.raises(RulesError, match="is not a duration"):
        min_ring("-5")
    with pytest.raises(RulesError, match="is not a duration"):
        min_ring("[20s]")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(days=14), "14d"),
        (timedelta(hours=4), "4h"),
        (timedelta(seconds=15), "15s"),
        (timedelta(seconds=90), "1m30s"),
        (timedelta(0), "0s"),
        (timedelta(seconds=1.5), "1.5s"),
    ],
)
def test_format_spells_a_duration_the_parser_reads_back(value: timedelta, text: str) -> None:
    assert format_duration(value) == text
    assert parse_duration(text) == value
