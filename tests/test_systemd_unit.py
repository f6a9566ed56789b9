"""systemd/callbridge.service, its template callbridge@.service (several instances on one
host) and callbridge.env.example: verified, scored, and in step with the settings the service
actually reads.

`systemd-analyze` (Debian package `systemd`) is required: without it these tests fail, they
do not skip. It needs no running systemd: `verify` checks the file, `security --offline=yes`
scores it.
"""

from __future__ import annotations

import argparse
import errno
import os
import re
import shutil
import subprocess
import sys
import textwrap
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from bridge.service import settings, settings_values

SYSTEMD = Path(__file__).resolve().parent.parent / "systemd"
UNIT = SYSTEMD / "callbridge.service"
TEMPLATE = SYSTEMD / "callbridge@.service"
ENV_EXAMPLE = SYSTEMD / "callbridge.env.example"
INSTALLED_EXEC = "/opt/callbridge/venv/bin/callbridge"
SECRETS = {
    "CALLBRIDGE_WEBHOOK_TOKEN": "webhook-token",
    "SLACK_BOT_TOKEN": "slack-bot-token",
    "SLACK_SIGNING_SECRET": "slack-signing-secret",
    "TEAMS_APP_PASSWORD": "teams-app-password",
    "CALLBRIDGE_PROXY": "proxy",
}


def parse_unit(text: str) -> dict[str, list[tuple[str, str]]]:
    """Section -> [(key, value)] in order; keys repeat (LoadCredential=, SystemCallFilter=)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        assert current is not None, f"line {number}: {raw!r} is outside a section"
        assert "=" in line, f"line {number}: {raw!r} is not KEY=VALUE"
        assert not line.endswith("\\"), f"line {number}: continuation lines are not expected"
        key, _, value = line.partition("=")
        current.append((key.strip(), value.strip()))
    return sections


def values(section: list[tuple[str, str]], key: str) -> list[str]:
    return [v for k, v in section if k == key]


def one(section: list[tuple[str, str]], key: str) -> str:
    found = values(section, key)
    assert len(found) == 1, f"expected exactly one {key}=, found {found}"
    return found[0]


@pytest.fixture(scope="module")
def unit() -> dict[str, list[tuple[str, str]]]:
    return parse_unit(UNIT.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.fail(
            "systemd-analyze is not installed, so the unit file cannot be verified: "
            "install the Debian package `systemd` (apt-get install systemd)"
        )
    return path


def runnable_unit(directory: Path, text: str | None = None) -> Path:
    """The unit with ExecStart pointing at this venv's `callbridge` (verify needs it to exist)."""
    executable = Path(sys.executable).parent / "callbridge"
    assert os.access(executable, os.X_OK), (
        f"{executable} is missing: install the project into the venv (pip install -e '.[test]')"
    )
    source = UNIT.read_text(encoding="utf-8") if text is None else text
    assert INSTALLED_EXEC in source
    path = directory / "callbridge.service"
    path.write_text(source.replace(INSTALLED_EXEC, str(executable)), encoding="utf-8")
    return path


def run_analyze(analyze: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SYSTEMD_COLORS": "0", "SYSTEMD_LOG_COLOR": "0", "LC_ALL": "C.UTF-8"}
    return subprocess.run(
        [analyze, "--no-pager", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def complaints(result: subprocess.CompletedProcess[str]) -> list[str]:
    """Lines about our unit (messages about the host's own units are not ours to judge)."""
    lines = (result.stdout + result.stderr).splitlines()
    return [line for line in lines if "callbridge" in line]


# --- systemd-analyze ---------------------------------------------------------------------


def test_unit_passes_systemd_analyze_verify(analyze: str, tmp_path: Path) -> None:
    path = runnable_unit(tmp_path)
    result = run_analyze(analyze, "verify", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert complaints(result) == [], result.stdout + result.stderr


def test_verify_harness_notices_a_bad_unit(analyze: str, tmp_path: Path) -> None:
    # The control for the test above: an unknown key exits 0 but is reported, and an
    # ExecStart that does not exist fails.
    text = UNIT.read_text(encoding="utf-8").replace("UMask=0077", "UMask=0077\nUMsak=0077")
    result = run_analyze(analyze, "verify", str(runnable_unit(tmp_path, text)), cwd=tmp_path)
    assert any("Unknown key" in line and "UMsak" in line for line in complaints(result))

    missing = tmp_path / "missing"
    missing.mkdir()
    (missing / "callbridge.service").write_text(UNIT.read_text(encoding="utf-8"))
    result = run_analyze(analyze, "verify", "callbridge.service", cwd=missing)
    assert result.returncode != 0
    assert any(INSTALLED_EXEC in line for line in complaints(result))


def test_unit_security_exposure_is_at_most_2_0(analyze: str, tmp_path: Path) -> None:
    path = runnable_unit(tmp_path)
    # --threshold is in tenths: exposure 2.0 is 20; above it the command fails.
    result = run_analyze(
        analyze, "security", "--offline=yes", "--threshold=20", str(path), cwd=tmp_path
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    match = re.search(r"Overall exposure level for callbridge\.service: (\d+\.\d+) (\w+)", output)
    assert match, f"no overall exposure line in:\n{output}"
    assert float(match.group(1)) <= 2.0, match.group(0)
    assert match.group(2) in ("OK", "SAFE"), match.group(0)


def test_security_harness_notices_a_weak_unit(analyze: str, tmp_path: Path) -> None:
    weak = tmp_path / "weak"
    weak.mkdir()
    text = f"[Service]\nType=notify\nExecStart={INSTALLED_EXEC} serve\n"
    path = runnable_unit(weak, text)
    result = run_analyze(
        analyze, "security", "--offline=yes", "--threshold=20", str(path), cwd=weak
    )
    assert result.returncode != 0
    match = re.search(r"Overall exposure level for callbridge\.service: (\d+\.\d+)", result.stdout)
    assert match, result.stdout
    assert float(match.group(1)) > 2.0, match.group(0)


# --- what the issue requires of the unit ---------------------------------------------------


def test_unit_runs_the_service_as_a_notify_service_with_watchdog_and_restart(
    unit: dict[str, list[tuple[str, str]]],
) -> None:
    service = unit["Service"]
    assert one(service, "Type") == "notify"
    assert one(service, "NotifyAccess") == "main"
    assert one(service, "ExecStart") == f"{INSTALLED_EXEC} serve"
    assert one(service, "ExecReload") == "/bin/kill -HUP $MAINPID"  # SIGHUP reloads the rules
    assert int(one(service, "WatchdogSec")) > 0
    assert one(service, "Restart") == "on-failure"
    assert (
        one(service, "RestartPreventExitStatus") == "2"
    )  # bad settings: see bridge/cli/__init__.py
    assert one(unit["Install"], "WantedBy") == "multi-user.target"


def test_stop_timeout_leaves_room_for_the_graceful_drain(
    unit: dict[str, list[tuple[str, str]]],
) -> None:
    # SIGTERM waits up to CALLBRIDGE_SHUTDOWN_TIMEOUT for requests, then as long again for
    # the dispatcher; systemd must not SIGKILL before both are done.
    stop = timedelta(seconds=int(one(unit["Service"], "TimeoutStopSec")))
    assert stop > 2 * settings.Settings().shutdown_timeout


def test_unit_reads_settings_file_and_keeps_state_in_its_state_directory(
    unit: dict[str, list[tuple[str, str]]],
) -> None:
    service = unit["Service"]
    assert one(service, "EnvironmentFile") == "-/etc/callbridge/callbridge.env"  # optional
    assert one(service, "Environment") == "CALLBRIDGE_RULES=/etc/callbridge/rules.yaml"
    assert one(service, "StateDirectory") == "callbridge"
    assert one(service, "DynamicUser") == "yes"
    assert one(service, "UMask") == "0077"
    # The default store is then /var/lib/callbridge/bridge.db.
    assert settings_values.default_store({"STATE_DIRECTORY": "/var/lib/callbridge"}) == (
        "sqlite:///var/lib/callbridge/bridge.db"
    )


def test_logs_go_to_the_journal_with_their_priority(
    unit: dict[str, list[tuple[str, str]]],
) -> None:
    # callbridge writes `<3>{...}` when stdout is the journal; journald reads the prefix as
    # the priority only with SyslogLevelPrefix=yes (tests/test_logs.py: the prefixes).
    service = unit["Service"]
    assert one(service, "StandardOutput") == "journal"
    assert one(service, "StandardError") == "inherit"
    assert one(service, "SyslogLevelPrefix") == "yes"
    assert not values(service, "SyslogLevel")  # the default (info) only for unprefixed lines
    assert "CALLBRIDGE_LOG_FORMAT" not in " ".join(values(service, "Environment"))


def test_every_secret_is_an_optional_credential_named_as_the_service_expects(
    unit: dict[str, list[tuple[str, str]]],
) -> None:
    service = unit["Service"]
    loaded = dict(v.split(":", 1) for v in values(service, "LoadCredential"))
    fallbacks = dict(v.split(":", 1) for v in values(service, "SetCredential"))
    names = sorted(SECRETS.values())
    assert sorted(loaded) == names
    for name in names:
        assert loaded[name] == f"/etc/callbridge/credentials/{name}"
        # Same ID in SetCredential=: a missing file is not fatal (systemd.exec(5)); the
        # fallback is a bare newline, which the service must read as "not configured".
        assert fallbacks[name] == r"\n"
    for variable, name in SECRETS.items():
        assert settings.credential_name(variable) == name


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("CapabilityBoundingSet", ""),
        ("AmbientCapabilities", ""),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("PrivateUsers", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        ("ProtectClock", "yes"),
        ("ProtectHostname", "yes"),
        ("RestrictNamespaces", "yes"),
        ("RestrictRealtime", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("SystemCallArchitectures", "native"),
        ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
    ],
)
def test_unit_is_sandboxed(unit: dict[str, list[tuple[str, str]]], key: str, expected: str) -> None:
    assert one(unit["Service"], key) == expected


def test_system_calls_are_filtered_but_the_network_is_reachable(
    unit: dict[str, list[tuple[str, str]]],
) -> None:
    service = unit["Service"]
    assert values(service, "SystemCallFilter") == ["@system-service", "~@privileged @resources"]
    # Slack and Teams live on the internet: no network sandbox that would cut them off.
    for key in ("PrivateNetwork", "IPAddressDeny", "IPAddressAllow"):
        assert values(service, key) == [], key


# --- the template unit: several instances on one host ----------------------------------------


def runnable_template(directory: Path, text: str | None = None) -> Path:
    """The template with ExecStart pointing at this venv; returns the path of an instance
    (``callbridge@8081.service``), which systemd-analyze resolves to the template beside it."""
    source = TEMPLATE.read_text(encoding="utf-8") if text is None else text
    runnable_unit(directory, source).rename(directory / "callbridge@.service")
    return directory / "callbridge@8081.service"


@pytest.fixture(scope="module")
def template() -> dict[str, list[tuple[str, str]]]:
    return parse_unit(TEMPLATE.read_text(encoding="utf-8"))


def test_template_instance_passes_systemd_analyze_verify(analyze: str, tmp_path: Path) -> None:
    path = runnable_template(tmp_path)
    result = run_analyze(analyze, "verify", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert complaints(result) == [], result.stdout + result.stderr


def test_template_verify_harness_notices_a_bad_template(analyze: str, tmp_path: Path) -> None:
    # The control: verifying the instance really reads the template file.
    text = TEMPLATE.read_text(encoding="utf-8").replace("UMask=0077", "UMask=0077\nUMsak=0077")
    path = runnable_template(tmp_path, text)
    result = run_analyze(analyze, "verify", str(path), cwd=tmp_path)
    assert any("Unknown key" in line and "UMsak" in line for line in complaints(result))


def test_template_security_exposure_is_at_most_2_0(analyze: str, tmp_path: Path) -> None:
    path = runnable_template(tmp_path)
    result = run_analyze(
        analyze, "security", "--offline=yes", "--threshold=20", str(path), cwd=tmp_path
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    match = re.search(
        r"Overall exposure level for callbridge@8081\.service: (\d+\.\d+) (\w+)", output
    )
    assert match, f"no overall exposure line in:\n{output}"
    assert float(match.group(1)) <= 2.0, match.group(0)
    assert match.group(2) in ("OK", "SAFE"), match.group(0)


def test_template_is_the_single_unit_but_for_port_and_state(
    unit: dict[str, list[tuple[str, str]]], template: dict[str, list[tuple[str, str]]]
) -> None:
    # Same sandbox, credentials, restart and watchdog policy, line for line; the only
    # differences are the instance's port and env file, and no local state directory.
    single, many = unit["Service"], template["Service"]
    assert [e for e in many if e not in single] == [
        ("Environment", "CALLBRIDGE_LISTEN=127.0.0.1:%i"),
        ("EnvironmentFile", "-/etc/callbridge/callbridge@%i.env"),
    ]
    assert [e for e in single if e not in many] == [
        ("StateDirectory", "callbridge"),
        ("StateDirectoryMode", "0700"),
    ]
    assert template["Install"] == unit["Install"]
    for key in ("StartLimitIntervalSec", "StartLimitBurst", "Wants"):
        assert values(template["Unit"], key) == values(unit["Unit"], key), key


def test_template_instances_share_settings_and_each_listens_on_its_own_port(
    template: dict[str, list[tuple[str, str]]],
) -> None:
    service = template["Service"]
    # Shared file first, the instance's own file last: later files override earlier ones,
    # and both override Environment= (systemd.exec(5)).
    assert values(service, "EnvironmentFile") == [
        "-/etc/callbridge/callbridge.env",
        "-/etc/callbridge/callbridge@%i.env",
    ]
    listen = dict(v.split("=", 1) for v in values(service, "Environment"))["CALLBRIDGE_LISTEN"]
    # What `callbridge@8081` runs with (%i expanded): a loopback listener on port 8081.
    loaded = settings.load({"CALLBRIDGE_LISTEN": listen.replace("%i", "8081")})
    assert (loaded.listen.host, loaded.listen.port) == ("127.0.0.1", 8081)
    assert loaded.listen.is_loopback
    assert "%i" in one(template["Unit"], "Description")


# --- the env file example ------------------------------------------------------------------


def serve_variables() -> set[str]:
    """Every variable `callbridge serve` reads, from its flags' help ("overrides VARIABLE")."""
    parser = argparse.ArgumentParser()
    settings.add_arguments(parser)
    helps = [action.help or "" for action in parser._actions]
    found = {m.group(1) for text in helps if (m := re.search(r"overrides (\w+)", text))}
    assert len(found) >= 10, found  # DESIGN §3 lists ten; the parsing above must work
    return found


def example_assignments() -> dict[str, str]:
    """The commented-out ``#NAME=value`` lines of the example."""
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    found: dict[str, str] = {}
    for line in lines:
        if m := re.fullmatch(r"#([A-Z][A-Z0-9_]*)=(.*)", line):
            found[m.group(1)] = m.group(2)
    return found


def test_env_example_documents_every_setting_and_sets_none() -> None:
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    uncommented = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    assert uncommented == []
    documented = set(example_assignments())
    design = {
        "CALLBRIDGE_LISTEN", "CALLBRIDGE_RULES", "CALLBRIDGE_STORE", "CALLBRIDGE_WEBHOOK_TOKEN",
        "SLACK_BOT_TOKEN", "SLACK_API_URL", "TEAMS_APP_ID", "TEAMS_APP_PASSWORD",
        "TEAMS_TENANT_ID", "TEAMS_SERVICE_URL",
    }  # fmt: skip
    assert design <= documented
    assert serve_variables() == documented


def test_env_example_sends_secrets_to_credential_files() -> None:
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    assignments = example_assignments()
    for variable, name in SECRETS.items():
        assert assignments[variable] == ""  # no placeholder that could pass for a value
        assert f"/etc/callbridge/credentials/{name}" in text, name


def test_env_example_shows_the_real_defaults() -> None:
    # Uncommenting every line must change nothing: each shown value is the default the
    # service uses under the unit (StateDirectory and Environment= as in the unit file).
    under_unit = {
        "STATE_DIRECTORY": "/var/lib/callbridge",
        "CALLBRIDGE_RULES": "/etc/callbridge/rules.yaml",
    }
    uncommented = settings.load({**under_unit, **example_assignments()})
    defaults = settings.load(under_unit)
    assert uncommented == defaults
    assert defaults == replace(
        settings.Settings(),
        rules=Path("/etc/callbridge/rules.yaml"),
        store="sqlite:///var/lib/callbridge/bridge.db",
    )


# --- the service's side of the credential contract -----------------------------------------


def test_credentials_from_the_unit_reach_the_settings(tmp_path: Path) -> None:
    for name, value in [("webhook-token", "w" * 32), ("slack-bot-token", "xoxb-1-2-abc")]:
        (tmp_path / name).write_text(value + "\n")
    loaded = settings.load({"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert loaded.webhook_token == settings.Secret("w" * 32)
    assert loaded.slack_bot_token == settings.Secret("xoxb-1-2-abc")


def test_the_empty_fallback_credential_means_not_configured(tmp_path: Path) -> None:
    # What SetCredential=NAME:\n leaves when /etc/callbridge/credentials/NAME is missing.
    for name in SECRETS.values():
        (tmp_path / name).write_text("\n")
    loaded = settings.load({"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert loaded.webhook_token is None
    assert loaded.slack_bot_token is None
    assert loaded.slack_signing_secret is None
    assert loaded.teams_app_password is None
    assert not loaded.teams_enabled


# --- MemoryDenyWriteExecute=yes does not break the runtime ----------------------------------

PR_SET_MDWE = 65  # linux/prctl.h, Linux >= 6.3: the kernel's MemoryDenyWriteExecute
PR_MDWE_REFUSE_EXEC_GAIN = 1

LAUNCH_UNDER_MDWE = textwrap.dedent(
    f"""
    import ctypes, os, sys
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl({PR_SET_MDWE}, {PR_MDWE_REFUSE_EXEC_GAIN}, 0, 0, 0) != 0:
        sys.exit(100 + ctypes.get_errno())
    os.execv(sys.executable, [sys.executable, "-c", sys.argv[1], *sys.argv[2:]])
    """
)

# An aiohttp round trip on the loop `serve` runs on (uvloop: compiled, libuv), the end of
# the workloads below.
ROUNDTRIP_ON_SERVES_LOOP = textwrap.dedent(
    """
    import asyncio
    import aiohttp
    from aiohttp import web
    from bridge.service import runtime

    async def roundtrip() -> None:
        async def hello(request):
            return web.json_response(await request.json())
        app = web.Application()
        app.router.add_post("/", hello)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        async with aiohttp.ClientSession() as session:
            async with session.post(f"http://127.0.0.1:{port}/", json={"ok": True}) as r:
                assert await r.json() == {"ok": True}
        await runner.cleanup()

    with asyncio.Runner(loop_factory=runtime.factory("auto")) as runner:
        assert runtime.describe(runner.get_loop()) == "uvloop"
        runner.run(roundtrip())
    print("workload ok")
    """
)

WORKLOAD = (
    textwrap.dedent(
        """
    import asyncio, mmap, pathlib, sqlite3, ssl, sys
    try:
        mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    except PermissionError:
        pass
    else:
        sys.exit("writable+executable memory was allowed: the restriction is not in force")

    import aiohttp, msgspec, phonenumbers, prometheus_client, structlog, yaml
    import msal, slack_sdk
    from aiohttp import web
    from cryptography.hazmat.primitives.asymmetric import ec
    import bridge.service.app, bridge.cli, bridge.core.events

    fixture = pathlib.Path(sys.argv[1])
    event = bridge.core.events.decode(fixture.read_bytes())
    assert bridge.core.events.decode_stored(bridge.core.events.encode_event(event)) == event
    assert yaml.load("a: [1, 2]", Loader=yaml.CSafeLoader) == {"a": [1, 2]}
    assert phonenumbers.is_valid_number(phonenumbers.parse("+31508009000"))
    ec.generate_private_key(ec.SECP256R1()).sign(b"x", ec.ECDSA(
        __import__("cryptography.hazmat.primitives.hashes", fromlist=["SHA256"]).SHA256()))
    ssl.create_default_context()
    db = sqlite3.connect(pathlib.Path(sys.argv[2]) / "mdwe.db")
    assert db.execute("pragma journal_mode=wal").fetchone() == ("wal",)
    prometheus_client.generate_latest()

    """
    )
    + ROUNDTRIP_ON_SERVES_LOOP
)


def run_restricted(launcher: str, workload: str, *args: str) -> None:
    """Run ``workload`` in a fresh Python that ``launcher`` restricted first, and require it
    to finish ("workload ok"); skip when this kernel cannot apply the restriction (the
    launcher exits 100 + errno)."""
    result = subprocess.run(
        [sys.executable, "-c", launcher, workload, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode == 100 + errno.EINVAL:
        pytest.skip("this kernel cannot apply the restriction, so it cannot be emulated")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("workload ok")


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_MDWE is a Linux prctl")
def test_the_runtime_works_without_writable_executable_memory(tmp_path: Path) -> None:
    fixture = tmp_path / "event.json"
    fixture.write_text(
        '{"version": "v2", "call_id": "c1", "timestamp": "2026-01-01T10:00:00Z",'
        ' "status": "ended", "reason": "completed", "direction": "inbound",'
        ' "caller": {"number": "+31612345678", "name": "Klant"},'
        ' "destination": {"number": "+31508009000"}}'
    )
    run_restricted(LAUNCH_UNDER_MDWE, WORKLOAD, str(fixture), str(tmp_path))


# The unit's SystemCallFilter may refuse io_uring (not in every systemd's @system-service),
# and uvloop's libuv uses it when its loop starts. SystemCallErrorNumber=EPERM makes the
# refusal an error, not SIGSYS: emulate that with a seccomp filter and run serve's loop.
IO_URING_SYSCALLS = (425, 426, 427)  # io_uring_setup/enter/register (one numbering everywhere)

LAUNCH_WITHOUT_IO_URING = textwrap.dedent(
    f"""
    import ctypes, os, sys

    class Filter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte),
                    ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Filter))]

    LOAD_NR, JEQ, RET = 0x20, 0x15, 0x06
    ALLOW, EPERM = 0x7FFF0000, 0x00050000 | 1
    a, b, c = {IO_URING_SYSCALLS}
    code = [(LOAD_NR, 0, 0, 0), (JEQ, 3, 0, a), (JEQ, 2, 0, b), (JEQ, 1, 0, c),
            (RET, 0, 0, ALLOW), (RET, 0, 0, EPERM)]
    filters = (Filter * len(code))(*(Filter(*f) for f in code))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        sys.exit(100 + ctypes.get_errno())
    if libc.prctl(22, 2, ctypes.byref(Program(len(code), filters)), 0, 0) != 0:  # SECCOMP
        sys.exit(100 + ctypes.get_errno())
    os.execv(sys.executable, [sys.executable, "-c", sys.argv[1], *sys.argv[2:]])
    """
)

LOOP_WORKLOAD = (
    textwrap.dedent(
        f"""
    import ctypes, errno, sys
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall({IO_URING_SYSCALLS[0]}, 8, None) != -1 or ctypes.get_errno() != errno.EPERM:
        sys.exit("io_uring_setup was not refused: the filter is not in force")
    """
    )
    + ROUNDTRIP_ON_SERVES_LOOP
)


@pytest.mark.skipif(sys.platform != "linux", reason="seccomp is Linux")
def test_uvloop_runs_when_the_unit_refuses_io_uring() -> None:
    for unit in (UNIT, TEMPLATE):  # a refused call errs, it does not kill the service
        assert "SystemCallErrorNumber=EPERM" in unit.read_text(encoding="utf-8")
    run_restricted(LAUNCH_WITHOUT_IO_URING, LOOP_WORKLOAD)
