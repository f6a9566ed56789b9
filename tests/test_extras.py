"""Optional dependencies: Teams (msal) and PostgreSQL (asyncpg) are extras.

A setting that needs a missing extra is refused at start with the extra's name; a Slack-only
SQLite install (the README's demo: `pip install -e .`, no extras) runs serve, simulate, check
and route with msal, asyncpg, requests, cryptography, PyJWT and tqdm unimportable.
"""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
from pathlib import Path

import pytest

from bridge.cli import main
from bridge.service.settings import SettingsError, load
from tests.support.harness import write_rules
from tests.support.process import serve

TEAMS = {
    "TEAMS_APP_ID": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
    "TEAMS_APP_PASSWORD": "Xy7~SuperSecretClientSecretValue",
    "TEAMS_TENANT_ID": "11111111-2222-3333-4444-555555555555",
}
PG = "postgresql://callbridge@127.0.0.1/callbridge"
# What the extras (and the old hard dependencies) bring; none may be needed without them.
OPTIONAL = ("msal", "asyncpg", "requests", "cryptography", "jwt", "tqdm")


def missing(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """Make ``modules`` unimportable, as if their extra were not installed."""
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)


def test_a_postgresql_store_without_the_postgres_extra_names_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    missing(monkeypatch, "asyncpg")
    with pytest.raises(SettingsError) as caught:
        load({"CALLBRIDGE_STORE": PG})
    assert caught.value.problems == (
        "CALLBRIDGE_STORE: a PostgreSQL store needs the `postgres` extra (asyncpg), which is "
        "not installed: pip install 'callbridge[postgres]'",
    )


def test_teams_without_the_teams_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    missing(monkeypatch, "msal")
    with pytest.raises(SettingsError) as caught:
        load(TEAMS)
    assert caught.value.problems == (
        "TEAMS_APP_ID: Teams needs the `teams` extra (msal, PyJWT), which is not installed: "
        "pip install 'callbridge[teams]' (or unset the TEAMS_ settings: Teams is then dry-run)",
    )


def test_both_missing_are_reported_at_once_and_serve_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    missing(monkeypatch, "msal", "asyncpg")
    for name, value in {**TEAMS, "CALLBRIDGE_STORE": PG}.items():
        monkeypatch.setenv(name, value)
    assert main(["serve", "--teams-app-id", TEAMS["TEAMS_APP_ID"]]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "callbridge: CALLBRIDGE_STORE: a PostgreSQL store needs the `postgres` extra "
        "(asyncpg), which is not installed: pip install 'callbridge[postgres]'",
        "callbridge: --teams-app-id: Teams needs the `teams` extra (msal, PyJWT), which is not "
        "installed: pip install 'callbridge[teams]' (or unset the TEAMS_ settings: Teams is "
        "then dry-run)",
        "callbridge: fix the settings above, then start again",
    ]


def test_without_the_extras_sqlite_and_dry_run_teams_need_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    missing(monkeypatch, *OPTIONAL)
    settings = load({"CALLBRIDGE_STORE": "sqlite:///tmp/x.db"})
    assert not settings.teams_enabled


BLOCKER = """\
import sys

BLOCKED = {blocked!r}


class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by the test)")
        return None


sys.meta_path.insert(0, Blocker())
"""

RULES = """\
version: 1
timezone: Europe/Amsterdam
destinations:
  support: {slack: {channel: C0123456789}}
  sales: {teams: {conversation: "19:sales@thread.tacv2"}}
routes:
  - name: everything
    live: [support, sales]
"""


@pytest.mark.slow
async def test_the_demo_runs_without_any_extra(tmp_path: Path) -> None:
    """serve (SQLite, Slack and Teams dry-run) + simulate, every optional module blocked."""
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(BLOCKER.format(blocked=OPTIONAL))
    env = {"PYTHONPATH": str(blocker)}
    rules = write_rules(tmp_path, RULES)
    async with serve(tmp_path, tmp_path / "bridge.db", rules=rules, extra_env=env) as server:
        sim = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bridge",
            "simulate",
            "--url",
            server.url,
            "--scenario",
            "answered",
            "--fast",
            "--quiet",
            env={**os.environ, **env},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(sim.communicate(), 60)
        assert sim.returncode == 0, out.decode()
        for platform in ("slack", "teams"):
            await server.wait_for_line(
                lambda line, p=platform: (
                    line.get("event") == "dryrun.post" and line.get("platform") == p
                )
            )
    # The blocker was in force: the child could not have imported them.
    check = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import importlib, sys\n"
        f"for m in {OPTIONAL!r}:\n"
        "    try:\n        importlib.import_module(m)\n    except ModuleNotFoundError:\n"
        "        continue\n    sys.exit(f'{m} imported')\n",
        env={**os.environ, **env},
    )
    assert await check.wait() == 0


@pytest.mark.slow
async def test_check_and_route_run_without_any_extra(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(BLOCKER.format(blocked=OPTIONAL))
    rules = write_rules(tmp_path, RULES)
    events = tmp_path / "events.json"
    events.write_text(
        textwrap.dedent(
            """\
            {"call_id": "c1", "timestamp": "2026-12-01T09:00:00Z", "status": "ringing",
             "version": "v2", "direction": "inbound", "caller": {"number": "+31501234567"},
             "destination": {"number": "+31508009000", "targets": []}}
            """
        )
    )
    for argv in (["check", str(rules)], ["route", "--rules", str(rules), str(events)]):
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bridge",
            *argv,
            env={**os.environ, "PYTHONPATH": str(blocker)},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, (argv, out.decode())
