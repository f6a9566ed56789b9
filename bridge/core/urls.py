"""Passwords in URLs, kept out of messages and logs (pure).

A proxy, a store or any service URL may carry ``USER:PASSWORD@`` (and a PostgreSQL DSN a
``password=`` parameter). Every message or log line that quotes such a URL shows it
through :func:`without_password`; :func:`url_passwords` gives the values themselves to the
log redaction safety net.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import unquote

MASK: Final = "***"
_PARAMETER: Final = re.compile(r"(?i)(password=)([^&\s]*)")


def _userinfo_password(url: str) -> tuple[int, int] | None:
    """Where the password of ``scheme://USER:PASSWORD@host...`` is (start, end), if any.

    The authority is read up to the first ``/`` only (not ``?`` or ``#``, which a password
    written without percent-encoding may hold): better to hide too much than too little.
    Never raises, whatever the text (unlike :func:`urllib.parse.urlsplit`)."""
    scheme_end = url.find("://")
    if scheme_end < 0:
        return None
    start = scheme_end + 3
    slash = url.find("/", start)
    authority = url[start : slash if slash >= 0 else len(url)]
    userinfo, at, _host = authority.rpartition("@")
    if not at:
        return None
    _user, colon, password = userinfo.partition(":")
    if not colon or not password:
        return None
    password_start = start + len(userinfo) - len(password)
    return password_start, start + len(userinfo)


def without_password(url: str) -> str:
    """``http://alice:s3cret@proxy:3128`` -> ``http://alice:***@proxy:3128``; a
    ``password=`` parameter likewise. Anything else is returned as it is."""
    span = _userinfo_password(url)
    if span is not None:
        url = url[: span[0]] + MASK + url[span[1] :]
    return _PARAMETER.sub(rf"\g<1>{MASK}", url)


def url_passwords(url: str) -> list[str]:
    """The passwords :func:`without_password` hides, as written and percent-decoded (for
    the log redaction safety net: a client library may quote either)."""
    found = []
    span = _userinfo_password(url)
    if span is not None:
        found.append(url[span[0] : span[1]])
    found.extend(match.group(2) for match in _PARAMETER.finditer(url) if match.group(2))
    return list(dict.fromkeys([*found, *(unquote(value) for value in found)]))
