"""The rules file's ``digest:`` block: what it means, and every mistake with its line and
column (counted by hand: the block is on line 13, its flow mapping at column 9)."""

from __future__ import annotations

from datetime import time

import pytest

from bridge.rules import RulesError, load_text

from .helpers import HEADER, rules

ROUTES = "routes:\n  - {name: support, missed: [support, sales]}\n"  # lines 11-12


def digest_of(block: str):  # type: ignore[no-untyped-def]
    return rules(ROUTES + block).digest


def problems(block: str) -> list[str]:
    with pytest.raises(RulesError) as caught:
        load_text(HEADER + ROUTES + block, "test.yaml")
    return [str(p) for p in caught.value.problems]


def test_without_a_digest_block_there_is_none() -> None:
    assert digest_of("") is None


def test_a_digest_every_day_at_a_local_time() -> None:
    digest = digest_of('digest: {at: "08:30", to: support}\n')
    assert (digest.at, digest.to, digest.days) == (
        time(8, 30),
        ("support",),
        frozenset(range(1, 8)),
    )


def test_days_are_days_ranges_or_lists_of_them_and_times_may_be_unquoted() -> None:
    digest = digest_of("digest: {at: 7:05, to: [support, sales, support], days: [mon-wed, sun]}\n")
    assert digest.at == time(7, 5)
    assert digest.to == ("support", "sales")  # each destination once
    assert digest.days == frozenset({1, 2, 3, 7})


def test_every_mistake_is_named_with_its_place() -> None:
    assert problems(
        'digest: {at: "24:00", to: [suport], days: [mon-fri, weekend], every: x}\n'
    ) == [
        'test.yaml:13:14: digest.at: "24:00" is not a time of day (expected "HH:MM")',
        'test.yaml:13:28: digest.to[0]: unknown destination "suport" (did you mean "support"?) '
        "(defined under destinations: oncall, sales, support)",
        'test.yaml:13:53: digest.days[1]: "weekend" is not a day (a day mon..sun, a range like '
        "mon-fri, or a list of them)",
        "test.yaml:13:63: digest.every: unknown key (allowed here: at, to, days)",
    ]


def test_at_and_to_are_required() -> None:
    assert problems("digest: {days: mon-fri}\n") == [
        "test.yaml:13:9: digest: missing required key `at` (the local time it goes out, "
        'e.g. at: "08:30")',
        "test.yaml:13:9: digest: missing required key `to` (the destinations that get it, "
        "e.g. to: [support])",
    ]


def test_a_digest_for_a_destination_without_missed_call_alerts_is_refused() -> None:
    """Its digest tells the callback cases of its alerts: it would always be empty."""
    assert problems("digest: {at: 8:30, to: [support, oncall]}\n") == [
        'test.yaml:13:34: digest.to[1]: "oncall" gets no missed-call alerts (no route sends '
        "`missed` to it): its digest, which tells the callback cases of its alerts, would "
        "always be empty"
    ]
