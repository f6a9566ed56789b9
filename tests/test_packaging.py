"""pyproject.toml's dependencies and extras, and the shipped constraints file, agree."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
EXTRAS = PROJECT["optional-dependencies"]


def pins() -> dict[str, str]:
    lines = (REPO / "requirements" / "constraints.txt").read_text(encoding="utf-8").splitlines()
    found = {}
    for line in lines:
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            found[canonicalize_name(name)] = version.strip()
    return found


def requirements(*groups: str) -> list[Requirement]:
    lines = list(PROJECT["dependencies"])
    for group in groups:
        lines += EXTRAS[group]
    return [Requirement(line) for line in lines]


def test_a_slack_only_sqlite_install_depends_on_no_extra() -> None:
    names = {canonicalize_name(r.name) for r in requirements()}
    for heavy in ("msal", "asyncpg", "tqdm", "requests", "cryptography", "pyjwt", "phonenumbers"):
        assert heavy not in names, heavy
    assert "phonenumberslite" in names


def test_the_extras() -> None:
    assert [canonicalize_name(Requirement(r).name) for r in EXTRAS["teams"]] == ["msal", "pyjwt"]
    assert [canonicalize_name(Requirement(r).name) for r in EXTRAS["postgres"]] == ["asyncpg"]
    # The README's test command installs `.[test]`: it must bring both extras.
    assert "callbridge[teams,postgres]" in EXTRAS["test"]
    assert not [r for r in EXTRAS["test"] if Requirement(r).name == "aioresponses"]


def test_the_constraints_pin_every_dependency_within_its_range() -> None:
    pinned = pins()
    for requirement in requirements("teams", "postgres"):
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{name} is not pinned in requirements/constraints.txt"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"{name}=={pinned[name]} is outside {requirement.specifier}"
        )
    assert "callbridge" not in pinned
