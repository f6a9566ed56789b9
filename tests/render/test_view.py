"""The platform-neutral call view: expectations written by hand from the provider flows.

T0 is 2024-03-05 09:41:07 UTC = 10:41:07 in Amsterdam (CET).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.core.events import Event, decode
from bridge.core.plan import ReplyContent, reply_context
from bridge.render.phone import format_number
from bridge.render.text import render as text_render
from bridge.render.view import CallView, PersonView, plain, view
from tests.render import (
    AMS,
    CUSTOMER,
    JOHAN,
    LUCAS,
    PIETER,
    SANNE,
    T0,
    answered_call,
    call,
    ev,
    internal,
    ringing_call,
    warm_transfer_call,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "voys"


def v(*events: Event, now: datetime | None = None, **kw: dict[str, str]) -> CallView:
    return view(call(*events, now=now), AMS, **kw)


# --- phone numbers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("+31508009000", "+31 50 800 9000"),  # Groningen landline
        ("+31612345678", "+31 6 12345678"),  # Dutch mobile
        ("+442079460958", "+44 20 7946 0958"),  # London
        ("201", "201"),  # internal extension
        ("0612345678", "0612345678"),  # outbound, dialled without +
        ("+31xxxxxxxxxx", "+31xxxxxxxxxx"),  # the provider's placeholder
        ("anonymous", "anonymous"),
        ("", ""),
        ("+1", "+1"),  # too short to be a number
        ("+3150800900012345678", "+3150800900012345678"),  # too long
    ],
)
def test_numbers_are_formatted_only_when_e164(raw: str, shown: str) -> None:
    assert format_number(raw) == shown


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_formatting_never_raises_and_keeps_non_plus_input(raw: str) -> None:
    shown = format_number(raw)
    assert isinstance(shown, str)
    if not raw.strip().startswith("+"):
        assert shown == raw


# --- status per phase ----------------------------------------------------------------------

LATER = T0 + timedelta(hours=5)  # past the default 4 h stale limit


@pytest.mark.parametrize(
    ("events", "now", "status", "emoji", "word"),
    [
        ([ev("created", 0)], None, "new", "📞", "New call"),
        (ringing_call(), None, "ringing", "🔔", "Ringing"),
        (answered_call(), None, "answered", "🟢", "Answered"),
        (warm_transfer_call(), None, "transferred", "🔀", "Transferred"),
        ([*answered_call(), ev("ended", 185, reason="completed")], None, "ended", "✅", "Ended"),
        ([*ringing_call(), ev("ended", 30, reason="no-answer")], None, "missed", "📵", "Missed"),
        (ringing_call(), LATER, "stale", "❔", "Closed (no end received)"),
        (answered_call(), LATER, "stale", "❔", "Closed (no end received)"),
    ],
    ids=["new", "ringing", "answered", "transferred", "ended", "missed", "stale", "stale-talk"],
)
def test_status_per_phase(
    events: list[Event], now: datetime | None, status: str, emoji: str, word: str
) -> None:
    cv = v(*events, now=now)
    assert (cv.status, cv.emoji, cv.status_text) == (status, emoji, word)


def test_ringing_view() -> None:
    cv = v(*ringing_call())
    assert cv.caller == PersonView(label="M. de Jong", number="+31 50 123 4567", name="M. de Jong")
    assert cv.caller.with_number == "M. de Jong (+31 50 123 4567)"
    assert cv.line == "+31 50 800 9000"
    assert cv.direction == "inbound"
    assert [p.label for p in cv.rung] == ["Johan | Voys", "Sanne de Vries"]
    assert [p.number for p in cv.rung] == ["+31 50 800 9101", "+31 50 800 9102"]
    assert plain(cv.who) == "Ringing Johan | Voys, Sanne de Vries"
    assert cv.answered_by is None
    assert cv.connected is None
    assert (cv.ended, cv.missed, cv.end_text) == (False, False, None)
    assert (cv.ring_time, cv.talk_time) == (None, None)  # still ringing
    assert cv.started == "10:41"
    assert [(s.at, s.kind, s.text) for s in cv.steps] == [
        ("10:41:07", "created", "Call came in on +31 50 800 9000"),
        ("10:41:07", "ringing", "Ringing Johan | Voys, Sanne de Vries"),
    ]


def test_answered_then_ended() -> None:
    cv = v(*answered_call(), ev("ended", 185, reason="completed"))
    assert cv.answered_by is not None
    assert cv.answered_by.label == "Johan | Voys"
    assert cv.picked_up is False
    assert plain(cv.who) == "Answered by Johan | Voys"
    assert (cv.ring_time, cv.talk_time) == ("9s", "2m56s")
    assert (cv.end_reason, cv.end_text) == ("completed", "completed")
    assert [(s.at, s.text) for s in cv.steps[2:]] == [
        ("10:41:16", "Answered by Johan | Voys"),
        ("10:44:12", "Call ended, talked 2m56s"),
    ]


def test_pickup_by_someone_not_rung() -> None:
    cv = v(
        *ringing_call(), ev("in-progress", 11, target=LUCAS), ev("ended", 240, reason="completed")
    )
    assert cv.picked_up is True
    assert plain(cv.who) == "Answered by Lucas Jansen (picked up)"
    assert cv.steps[2].text == "Picked up by Lucas Jansen"
    assert (cv.ring_time, cv.talk_time) == ("11s", "3m49s")


def test_auto_answer_has_no_ring_time_and_is_no_pickup() -> None:
    cv = v(ev("in-progress", 0, target=PIETER), ev("ended", 64, reason="completed"))
    assert cv.picked_up is False
    assert plain(cv.who) == "Answered by Pieter Bakker"
    assert (cv.ring_time, cv.talk_time) == (None, "1m04s")
    assert [s.text for s in cv.steps] == ["Answered by Pieter Bakker", "Call ended, talked 1m04s"]


def test_forwarding_grows_the_rung_list() -> None:
    first = [ev("created", 0), ev("ringing", 0, targets=[JOHAN])]
    assert [p.label for p in v(*first).rung] == ["Johan | Voys"]
    grown = [*first, ev("ringing", 20, targets=[JOHAN, SANNE])]
    cv = v(*grown)
    assert [p.label for p in cv.rung] == ["Johan | Voys", "Sanne de Vries"]
    assert plain(cv.who) == "Ringing Johan | Voys, Sanne de Vries"
    assert [(s.at, s.text) for s in cv.steps] == [
        ("10:41:07", "Call came in on +31 50 800 9000"),
        ("10:41:07", "Ringing Johan | Voys"),
        ("10:41:27", "Also ringing Sanne de Vries"),  # only the new phone
    ]


def test_warm_transfer_with_consult_steps() -> None:
    cv = v(*warm_transfer_call(), ev("ended", 300, reason="completed"))
    assert cv.status == "ended"
    assert len(cv.transfers) == 1
    t = cv.transfers[0]
    assert (t.at, t.kind, t.kind_text) == ("10:41:59", "warm", "warm/attended")
    assert plain(t.phrase) == "Johan | Voys → Sanne de Vries (warm/attended)"
    assert t.by is not None
    assert t.by.number == "201"
    assert plain(cv.who) == "Answered by Johan | Voys, talked to Sanne de Vries"
    assert [(s.at, s.text, s.consult) for s in cv.steps] == [
        ("10:41:07", "Call came in on +31 50 800 9000", False),
        ("10:41:07", "Ringing Johan | Voys", False),
        ("10:41:16", "Answered by Johan | Voys", False),
        ("10:41:47", "Consultation: ringing Sanne de Vries", True),
        ("10:41:59", "Consultation: Sanne de Vries answered", True),
        ("10:41:59", "Johan | Voys transferred the call to Sanne de Vries (warm/attended)", False),
        ("10:46:07", "Call ended, talked 4m51s", False),  # from the first answer at 10:41:16
    ]


def test_transfer_in_progress_says_who_is_on_the_line_now() -> None:
    cv = v(*warm_transfer_call())
    assert plain(cv.who) == "Answered by Johan | Voys, now talking to Sanne de Vries"


@pytest.mark.parametrize(
    ("status", "kind", "words"),
    [("cold-transfer", "cold", "cold/blind"), ("transfer", "blind", "blind")],
)
def test_blind_transfers(status: str, kind: str, words: str) -> None:
    cv = v(
        *answered_call(),
        ev(
            status,
            35,
            number=PIETER["number"],
            targets=[PIETER],
            merged_id="c9",
            redirector=internal(JOHAN),
        ),
    )
    assert cv.status == "transferred"
    assert (cv.transfers[0].kind, cv.transfers[0].kind_text) == (kind, words)
    assert plain(cv.transfers[0].phrase) == f"Johan | Voys → Pieter Bakker ({words})"
    assert cv.steps[-1].text == f"Johan | Voys transferred the call to Pieter Bakker ({words})"


@pytest.mark.parametrize(
    ("reason", "words", "step"),
    [
        ("no-answer", "not answered", "Missed: not answered, rang 30s"),
        ("busy", "line busy", "Missed: line busy, rang 30s"),
        ("cancelled", "caller hung up", "Missed: caller hung up, rang 30s"),
        ("abandon", "caller abandoned the call", "Missed: caller abandoned the call, rang 30s"),
        ("failed", "call failed", "Missed: call failed, rang 30s"),
        ("completed", "completed", "Missed: completed, rang 30s"),  # reason alone is not enough
        ("something-new", "something-new", "Missed: something-new, rang 30s"),
    ],
)
def test_missed_reasons_in_words(reason: str, words: str, step: str) -> None:
    cv = v(*ringing_call(), ev("ended", 30, reason=reason))
    assert cv.missed
    assert cv.status == "missed"
    assert (cv.end_reason, cv.end_text, cv.ring_time) == (reason, words, "30s")
    assert plain(cv.who) == "Rang Johan | Voys, Sanne de Vries"
    assert cv.steps[-1].text == step


@pytest.mark.parametrize(
    ("reason", "step"),
    [
        ("no-answer", "No answer, rang 25s"),
        ("busy", "No answer: line busy, rang 25s"),
        ("cancelled", "No answer: caller hung up, rang 25s"),
    ],
)
def test_a_call_out_nobody_picks_up_is_no_answer_not_a_missed_call(reason: str, step: str) -> None:
    out = {"direction": "outbound", "caller": SANNE, "number": "0612345678"}
    rings = {"targets": [{"number": "0612345678"}]}
    cv = v(
        ev("created", 0, **out),
        ev("ringing", 0, **out, **rings),
        ev("ended", 25, reason=reason, **out),
    )
    assert (cv.status, cv.emoji, cv.status_text) == ("unanswered", "🔕", "No answer")
    assert cv.steps[-1].text == step


def test_unavailable_only_ended() -> None:
    cv = v(ev("ended", 0, reason="busy"))
    assert (cv.status, cv.end_text, cv.ring_time) == ("missed", "line busy", None)
    assert plain(cv.who) == "Nobody's phone rang"
    assert [s.text for s in cv.steps] == ["Missed: line busy"]


def test_answered_call_that_failed_keeps_the_reason() -> None:
    cv = v(*answered_call(), ev("ended", 69, reason="failed"))
    assert cv.steps[-1].text == "Call ended (call failed), talked 1m00s"


def test_stale_close() -> None:
    cv = v(*ringing_call(), now=LATER)
    assert (cv.ended, cv.missed, cv.end_reason, cv.end_text) == (
        True,
        True,
        "stale",
        "no end received",
    )
    assert cv.steps[-1].text == "Closed: no end received"
    assert cv.steps[-1].at == "10:41:07"  # closed at the last event seen
    # How long it really rang is unknown: no ring time is better than a wrong "0s".
    assert cv.ring_time is None
    assert plain(cv.who) == "Rang Johan | Voys, Sanne de Vries"


def test_stale_answered_call_keeps_ring_time_but_not_talk_time() -> None:
    cv = v(*answered_call(), now=LATER)
    assert (cv.status, cv.missed) == ("stale", False)
    assert (cv.ring_time, cv.talk_time) == ("9s", None)


def test_durations_over_a_minute_and_an_hour() -> None:
    cv = v(
        ev("ringing", 0, targets=[JOHAN]),
        ev("in-progress", 65, target=JOHAN),
        ev("ended", 65 + 3723, reason="completed"),
    )
    assert (cv.ring_time, cv.talk_time) == ("1m05s", "1h02m03s")


@pytest.mark.parametrize(
    ("start", "started", "step_at"),
    [
        (datetime(2024, 1, 15, 12, 0, 0, tzinfo=UTC), "13:00", "13:00:00"),  # CET, UTC+1
        (datetime(2024, 7, 15, 12, 0, 0, tzinfo=UTC), "14:00", "14:00:00"),  # CEST, UTC+2
        # spring forward on 2024-03-31: 01:59:59 CET is followed by 03:00:00 CEST
        (datetime(2024, 3, 31, 0, 59, 59, tzinfo=UTC), "01:59", "01:59:59"),
        (datetime(2024, 3, 31, 1, 0, 0, tzinfo=UTC), "03:00", "03:00:00"),
        # fall back on 2024-10-27: 02:30 happens twice
        (datetime(2024, 10, 27, 0, 30, 0, tzinfo=UTC), "02:30", "02:30:00"),
        (datetime(2024, 10, 27, 1, 30, 0, tzinfo=UTC), "02:30", "02:30:00"),
    ],
)
def test_local_times_follow_dst(start: datetime, started: str, step_at: str) -> None:
    cv = v(ev("ringing", 0, targets=[JOHAN], start=start))
    assert cv.started == started
    assert cv.steps[0].at == step_at


def test_ring_time_across_the_dst_switch_is_real_time() -> None:
    # 01:59:30 CET rings, answered 03:00:30 CEST: one minute, not one hour and a minute.
    start = datetime(2024, 3, 31, 0, 59, 30, tzinfo=UTC)
    cv = v(
        ev("ringing", 0, targets=[JOHAN], start=start),
        ev("in-progress", 60, target=JOHAN, start=start),
    )
    assert cv.ring_time == "1m00s"
    assert [s.at for s in cv.steps] == ["01:59:30", "03:00:30"]


def test_date_shown_when_the_call_crosses_midnight_or_is_not_from_today() -> None:
    start = datetime(2024, 3, 5, 22, 59, 30, tzinfo=UTC)  # 23:59:30 local
    short = [ev("ringing", 0, targets=[JOHAN], start=start)]
    assert v(*short).started == "23:59"
    assert v(*short, ev("in-progress", 20, target=JOHAN, start=start)).started == "23:59"
    crossing = [*short, ev("in-progress", 40, target=JOHAN, start=start)]  # 00:00:10 local
    assert v(*crossing).started == "2024-03-05 23:59"
    next_day = datetime(2024, 3, 6, 8, 0, tzinfo=UTC)
    assert view(call(*short), AMS, now=next_day).started == "2024-03-05 23:59"
    same_day = datetime(2024, 3, 5, 22, 59, 50, tzinfo=UTC)
    assert view(call(*short), AMS, now=same_day).started == "23:59"


def test_a_step_after_midnight_carries_its_date() -> None:
    """A thread line that says only ``00:00:10`` would read as before ``23:59:30``."""
    start = datetime(2024, 3, 5, 22, 59, 30, tzinfo=UTC)  # 23:59:30 local
    crossing = v(
        ev("ringing", 0, targets=[JOHAN], start=start),
        ev("in-progress", 40, target=JOHAN, start=start),  # 00:00:10 local, the 6th
    )
    assert [s.at for s in crossing.steps] == ["23:59:30", "2024-03-06 00:00:10"]

    answered = call(
        ev("ringing", 0, targets=[JOHAN], start=start),
        ev("in-progress", 40, target=JOHAN, start=start),
    )
    step = answered.steps[-1]
    context = reply_context(answered, step)
    line = text_render(ReplyContent(step=step, tz="Europe/Amsterdam", context=context), {}, None)
    assert line.text.startswith("2024-03-06 00:00:10 answered by ")  # the dry-run log too


def test_names_with_a_pipe_are_kept() -> None:
    caller = {**CUSTOMER, "name": "Jansen | Installatietechniek"}
    cv = v(ev("created", 0, caller=caller))
    assert cv.caller.label == "Jansen | Installatietechniek"
    assert cv.caller.with_number == "Jansen | Installatietechniek (+31 50 123 4567)"


def test_provider_placeholders_are_shown_as_given() -> None:
    sample = decode((FIXTURES / "ringing-zapier-sample.json").read_bytes())
    cv = view(call(sample), AMS)
    assert cv.caller.with_number == "John Doe (+31xxxxxxxxxx)"
    assert cv.line == "+31xxxxxxxxxx"
    assert [(p.label, p.number) for p in cv.rung] == [
        ("Alice", "+31xxxxxxxxxx"),
        ("Bob", "+31xxxxxxxxxx"),
    ]
    assert cv.started == "02:00"  # 2017-01-01T01:00Z in CET


def test_internal_call_shows_extensions() -> None:
    cv = v(
        ev(
            "ringing",
            0,
            direction="outbound",
            caller=internal(SANNE),
            number="205",
            targets=[LUCAS],
        ),
        ev(
            "in-progress",
            3,
            direction="outbound",
            caller=internal(SANNE),
            number="205",
            target=LUCAS,
        ),
    )
    assert cv.direction == "outbound"
    assert cv.caller.with_number == "Sanne de Vries (202)"
    assert cv.line == "205"


def test_outbound_number_not_e164_is_shown_as_dialled() -> None:
    callee = {"number": "0612345678", "name": None, "account_number": None, "user_numbers": []}
    cv = v(
        ev("ringing", 0, direction="outbound", caller=JOHAN, number="0612345678", targets=[callee])
    )
    assert cv.line == "0612345678"
    assert [p.label for p in cv.rung] == ["0612345678"]  # no name: the number is the label
    assert cv.caller.with_number == "Johan | Voys (+31 50 800 9101)"


@pytest.mark.parametrize(
    ("number", "label", "with_number"),
    [("", "unknown", "unknown"), ("anonymous", "anonymous", "anonymous")],
)
def test_anonymous_callers(number: str, label: str, with_number: str) -> None:
    caller = {"number": number, "name": None, "account_number": None, "user_numbers": []}
    cv = v(ev("created", 0, caller=caller))
    assert (cv.caller.label, cv.caller.with_number, cv.caller.number) == (
        label,
        with_number,
        number,
    )


def test_mentions_replace_people_by_email_in_any_case() -> None:
    mentions = {"JOHAN@example.com": "<@UJOHAN>", "nobody@example.com": "<@UNOBODY>"}
    cv = v(*warm_transfer_call(), mentions=mentions)
    johan, sanne = cv.rung
    assert (johan.mention, johan.email, johan.label) == (
        "<@UJOHAN>",
        "johan@example.com",
        "Johan | Voys",
    )
    assert (sanne.mention, sanne.email) == (None, None)  # has an e-mail, but no mention for it
    assert cv.answered_by is not None
    assert cv.answered_by.mention == "<@UJOHAN>"
    # The redirector is numbered by extension but still carries Johan's e-mail.
    assert cv.transfers[0].by is not None
    assert cv.transfers[0].by.mention == "<@UJOHAN>"
    transfer_step = cv.steps[5]
    assert transfer_step.phrase[0] == cv.transfers[0].by
    # plain text never contains mentions
    assert "<@" not in plain(cv.who)
    assert all("<@" not in s.text for s in cv.steps)


def test_without_mentions_nobody_is_mentioned() -> None:
    cv = v(*answered_call())
    people = [*cv.rung, cv.answered_by, cv.caller]
    assert all(p is not None and p.mention is None for p in people)
