"""What a clicker is told (pure), and where an answer may go."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bridge.core.cases import Action, Answered, Attempt, CaseKey, Click, Fact, Missed, fold
from bridge.ingest.click_answers import answer, case_at_click
from bridge.ingest.slack_answers import SLACK_RESPONSE_BASE, allowed_url

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
T0 = datetime(2026, 11, 24, 13, 0, tzinfo=UTC)  # 14:00 in Amsterdam
KEY = CaseKey("default", "+31501234567")
MISSED = Missed(
    story_id="m1",
    at=T0,
    caller="+31 50 123 4567",
    dialled="+31508009000",
    rung=("Bob",),
    destinations=("support",),
    escalate_at=T0 + timedelta(minutes=30),
    expire_at=T0 + timedelta(days=3),
)


def click(action: Action, user: str, minutes: float, case_id: str = "m1") -> Click:
    return Click(
        click_id=f"{user}-{action}-{minutes}",
        case_id=case_id,
        at=T0 + timedelta(minutes=minutes),
        action=action,
        user_id=f"U0{user.upper()}",
        user=user,
    )


def told(facts: list[Fact], pressed: Click) -> str | None:
    """What the clicker of ``pressed`` (stored with ``facts``) is told."""
    return answer(case_at_click(KEY, [*facts, pressed], pressed), pressed, AMSTERDAM)


def test_a_claim_on_an_open_unclaimed_case_needs_no_answer() -> None:
    assert told([MISSED], click("claim", "alice", 5)) is None


def test_a_second_claim_names_the_first_claimer_in_local_time() -> None:
    facts: list[Fact] = [MISSED, click("claim", "alice", 5)]
    assert told(facts, click("claim", "bob", 7)) == "alice is already calling back (since 14:05)."
    # Claiming again one's own claim: nothing to say.
    assert told(facts, click("claim", "alice", 8)) is None


def test_a_claim_from_another_day_shows_the_date() -> None:
    facts: list[Fact] = [MISSED, click("claim", "alice", 5)]
    later = click("claim", "bob", 60 * 24)
    assert told(facts, later) == "alice is already calling back (since 24 Nov 14:05)."


@pytest.mark.parametrize(
    ("closing", "text"),
    [
        (
            Answered(story_id="in-2", at=T0 + timedelta(minutes=40), by="Bob"),
            "the customer got through, answered by Bob at 14:40",
        ),
        (
            Attempt(story_id="out-1", at=T0 + timedelta(minutes=32), by="Alice", answered=True),
            "called back by Alice at 14:32",
        ),
        (click("done", "carol", 50), "closed by carol at 14:50"),
    ],
)
def test_any_click_on_a_closed_case_says_how_it_closed(closing: Fact, text: str) -> None:
    for action in ("claim", "release", "done"):
        assert told([MISSED, closing], click(action, "dave", 55)) == (
            f"This case is closed: {text}. Nothing changed."
        )


def test_a_click_after_the_callback_window_finds_the_case_expired() -> None:
    assert told([MISSED], click("claim", "alice", 60 * 24 * 3 + 1)) == (
        "This case is closed: not called back in time (expired at 14:00). Nothing changed."
    )


def test_an_unanswered_attempt_does_not_close_the_case() -> None:
    attempt = Attempt(story_id="out-1", at=T0 + timedelta(minutes=3), by="Alice", answered=False)
    assert told([MISSED, attempt], click("claim", "bob", 5)) is None


def test_release_and_done_of_someone_elses_claim_say_whose_it_was() -> None:
    facts: list[Fact] = [MISSED, click("claim", "alice", 5)]
    assert told(facts, click("release", "bob", 9)) == (
        "You released alice's claim (alice was calling back since 14:05): nobody is calling "
        "back now."
    )
    assert told(facts, click("done", "bob", 9)) == (
        "You closed the case alice had claimed (calling back since 14:05)."
    )
    assert told(facts, click("release", "alice", 9)) is None
    assert told(facts, click("done", "alice", 9)) is None
    assert told([MISSED], click("done", "bob", 9)) is None


def test_releasing_an_unclaimed_case_says_there_was_nothing_to_release() -> None:
    assert told([MISSED], click("release", "bob", 9)) == (
        "Nobody is calling this customer back: there was no claim to release."
    )


def test_a_click_on_a_case_that_is_not_kept_says_so() -> None:
    text = told([MISSED], click("claim", "bob", 9, case_id="purged-long-ago"))
    assert text is not None
    assert text.startswith("This callback case is no longer kept")


def test_two_claims_at_the_same_instant_refuse_exactly_the_one_the_fold_lets_lose() -> None:
    for first, second in (("alice", "bob"), ("bob", "alice"), ("zoe", "adam")):
        a, b = click("claim", first, 5), click("claim", second, 5)
        facts: list[Fact] = [MISSED, a, b]
        [case] = fold(KEY, facts, b.at)
        assert case.claim is not None
        winner, loser = (a, b) if case.claim.user_id == a.user_id else (b, a)
        assert answer(case_at_click(KEY, facts, winner), winner, AMSTERDAM) is None
        refused = answer(case_at_click(KEY, facts, loser), loser, AMSTERDAM)
        assert refused == f"{winner.user} is already calling back (since 14:05)."


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://hooks.slack.com/actions/T0/1/abc", True),
        ("https://HOOKS.slack.com/actions/T0/1/abc", True),
        ("http://hooks.slack.com/actions/T0/1/abc", False),
        ("https://hooks.slack.com.evil.example/actions/T0/1/abc", False),
        ("https://hooks.slack.com@evil.example/actions", False),
        ("https://someone@hooks.slack.com/actions", False),
        ("https://evil.example/?next=https://hooks.slack.com/", False),
        ("https://hooks.slack.com:8443/actions", False),
        ("https://hooks.slack.com:99999/actions", False),
        ("hooks.slack.com/actions", False),
        ("", False),
        (None, False),
    ],
)
def test_answers_go_only_to_slacks_response_urls(url: str | None, allowed: bool) -> None:
    assert allowed_url(url, SLACK_RESPONSE_BASE) is allowed


def test_a_base_with_a_path_allows_only_below_it() -> None:
    base = "http://127.0.0.1:8123/slack/"
    assert allowed_url("http://127.0.0.1:8123/slack/actions/1", base)
    assert not allowed_url("http://127.0.0.1:8123/other/actions/1", base)
    assert not allowed_url("http://127.0.0.1:8124/slack/actions/1", base)
