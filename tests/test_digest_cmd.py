"""``callbridge digest``: the digest each destination would get, printed from the store.

One open case in the store: M. de Jong (+31 6 12345678) missed on Wednesday 2 December 2026
at 14:02 in Amsterdam (13:02 UTC), alerted in support. ``--at 2026-12-03T08:30`` ends the
period at Thursday's digest time; it began at Wednesday's (08:30)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bridge.cli import main
from bridge.core.cases import CaseKey, Missed
from bridge.store import CaseRow, CaseWrite, Emitted
from bridge.store.sqlite import SqliteStore
from tests.store import ringing
from tests.support.harness import write_rules

MISSED_AT = datetime(2026, 12, 2, 13, 2, tzinfo=UTC)
RULES = """\
version: 1
timezone: Europe/Amsterdam
destinations:
  support: {slack: {channel: C0123456789}}
routes:
  - name: all
    missed: support
digest: {at: "08:30", to: support}
"""


async def one_open_case(path: Path) -> None:
    store = SqliteStore(path)
    await store.open()
    key = CaseKey("default", "+31612345678")
    fact = Missed(
        story_id="c1",
        at=MISSED_AT,
        caller="M. de Jong",
        dialled="+31508009000",
        rung=(),
        destinations=("support",),
    )
    added = await store.add_event(ringing("c1"), MISSED_AT)
    state = Emitted(added.seq, "ended", ended_at=MISSED_AT, last_event_at=MISSED_AT)
    row = CaseRow("c1", key, MISSED_AT, None, None, None)
    await store.dispatched("c1", state, None, CaseWrite([(key, fact)], cases=(row,)))
    await store.close()


def test_the_digest_as_it_stood_at_a_moment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "bridge.db"
    asyncio.run(one_open_case(db))
    capsys.readouterr()  # (the setup's log lines)
    rules = write_rules(tmp_path, RULES)
    argv = ["digest", "--rules", str(rules), "--store", f"sqlite://{db}"]
    assert main([*argv, "--at", "2026-12-03T08:30"]) == 0
    assert capsys.readouterr().out == (
        "# support\n"
        "📊 Callbacks · Thu 3 Dec\n"
        "1 missed customer since Wed 08:30\n"
        "⏳ 1 still waiting\n"
        "Still waiting:\n"
        "  M. de Jong (+31 6 12345678) since Wed 14:02 (18 h 28 min)\n"
    )
    assert main([*argv, "--at", "2026-12-02T14:00"]) == 0  # before the miss
    assert capsys.readouterr().out.splitlines()[1:3] == [
        "📊 Callbacks · Wed 2 Dec",
        "✅ No missed customers since Wed 08:30.",
    ]


def test_rules_without_a_digest_and_a_bad_moment_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = f"sqlite://{tmp_path / 'bridge.db'}"
    plain = write_rules(tmp_path, RULES.replace('digest: {at: "08:30", to: support}\n', ""))
    assert main(["digest", "--rules", str(plain), "--store", db]) == 1
    assert capsys.readouterr().err == f"callbridge digest: {plain} has no `digest:` block\n"
    rules = write_rules(tmp_path, RULES)
    assert main(["digest", "--rules", str(rules), "--store", db, "--at", "tomorrow"]) == 2
    assert capsys.readouterr().err == (
        "callbridge digest: --at 'tomorrow' is not YYYY-MM-DDTHH:MM\n"
    )
    for far in ("0001-01-01T00:00", "9999-12-31T23:59"):
        assert main(["digest", "--rules", str(rules), "--store", db, "--at", far]) == 2
        assert capsys.readouterr().err == (
            f"callbridge digest: --at '{far}' is not between the years 2000 and 9000\n"
        )
    broken = write_rules(tmp_path, RULES.replace("to: support", "to: nowhere"), name="b.yaml")
    assert main(["digest", "--rules", str(broken), "--store", db]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"callbridge digest: {broken}:")  # the file named once
    assert err.count(str(broken)) == 1
    assert main(["digest", "--rules", str(rules), "--store", db]) == 1  # no such file
    assert capsys.readouterr().err == (
        f"callbridge digest: no store at {tmp_path / 'bridge.db'} (check --store)\n"
    )
    assert not (tmp_path / "bridge.db").exists()


def test_a_moment_no_digest_would_end_is_printed_with_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "bridge.db"
    asyncio.run(one_open_case(db))
    weekdays = RULES.replace("to: support}", "to: support, days: mon-fri}")
    rules = write_rules(tmp_path, weekdays)
    argv = ["digest", "--rules", str(rules), "--store", f"sqlite://{db}"]
    capsys.readouterr()
    assert main([*argv, "--at", "2026-11-29T08:30"]) == 0  # a Sunday, past
    printed = capsys.readouterr()
    assert printed.err == (
        "callbridge digest: note: no digest goes out on a Sunday (the rules' `days`)\n"
    )
    assert printed.out.splitlines()[1] == "📊 Callbacks · Sun 29 Nov"
    assert main([*argv, "--at", "8999-12-04T08:30"]) == 0  # a Wednesday, to come
    assert capsys.readouterr().err == (
        "callbridge digest: note: --at is still to come: the cases as they would stand then\n"
    )
