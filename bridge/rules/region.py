"""The country of a time zone, for reading phone numbers dialled without a country code.

The rules' ``callbacks: region`` defaults to the country of the file's ``timezone``, taken
from the IANA database's ``zone.tab`` (one line per zone a country uses: ``NL  +5222+00454
Europe/Amsterdam``). Only zones listed there count: an alias (``US/Eastern``, ``CET``) or a
zone of no country (``UTC``) derives nothing, because a guess through an alias can be wrong
(``CET`` is an alias of ``Europe/Brussels``); :func:`alias_hint` names what the alias points
at, so an error can suggest the region for the operator to confirm.

The table is read once from the ``tzdata`` package (a dependency; the same data ``zoneinfo``
falls back to), else from the system's zone directory. This is package data, read like
``zoneinfo`` reads its zone files: no other I/O.
"""

from __future__ import annotations

import zoneinfo
from functools import cache
from importlib import resources
from pathlib import Path

import phonenumbers


def _read(name: str) -> str:
    try:
        return (resources.files("tzdata") / "zoneinfo" / name).read_text(encoding="utf-8")
    except (ModuleNotFoundError, OSError):
        pass
    for folder in zoneinfo.TZPATH:
        try:
            return (Path(folder) / name).read_text(encoding="utf-8")
        except OSError:
            continue
    return ""


@cache
def _zone_countries() -> dict[str, str]:
    """zone name -> ISO 3166 code, from zone.tab."""
    out: dict[str, str] = {}
    for line in _read("zone.tab").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) >= 3:
            out[fields[2].strip()] = fields[0].strip()
    return out


@cache
def _links() -> dict[str, str]:
    """alias -> zone, from tzdata.zi (``L TARGET ALIAS`` lines)."""
    out: dict[str, str] = {}
    for line in _read("tzdata.zi").splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[0] == "L":
            out[fields[2]] = fields[1]
    return out


def is_region(code: str) -> bool:
    """Whether ``code`` is a region phone numbers can be read in (ISO 3166 alpha-2)."""
    return code in phonenumbers.SUPPORTED_REGIONS


def region_of_zone(zone: str) -> str | None:
    """The country of a zone listed in zone.tab, when numbers can be read there."""
    code = _zone_countries().get(zone)
    return code if code is not None and is_region(code) else None


def alias_hint(zone: str) -> tuple[str, str] | None:
    """(target zone, its country) when ``zone`` is an alias of a country's zone."""
    seen = {zone}
    target = _links().get(zone)
    while target is not None and target not in seen:
        code = region_of_zone(target)
        if code is not None:
            return target, code
        seen.add(target)
        target = _links().get(target)
    return None
