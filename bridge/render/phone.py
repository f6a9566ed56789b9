"""Phone numbers as people read them (pure).

Only numbers in E.164 form (``+`` and the country code) are reformatted, with the
``phonenumbers`` library, into the international format: ``+31508009000`` becomes
``+31 50 800 9000``. Everything else is shown exactly as the provider sent it: internal
extensions (``201``), outbound numbers dialled without ``+`` (``0612345678``: reformatting
them would need a guess at the region and would show the user something they did not dial),
the provider's placeholders (``+31xxxxxxxxxx``), ``anonymous`` and the empty string.
Formatting never raises.
"""

from __future__ import annotations

from functools import lru_cache

import phonenumbers

# Longer than any phone number however it is written: shown as sent, and never a cache key
# (4096 keys of a client's 30 KB strings would hold 120 MB).
LONGEST_NUMBER = 64


def format_number(raw: str) -> str:
    """``raw`` in international format when it is an E.164 number, else ``raw`` unchanged."""
    return raw if len(raw) > LONGEST_NUMBER else _format_number(raw)


@lru_cache(maxsize=4096)
def _format_number(raw: str) -> str:
    candidate = raw.strip()
    if not candidate.startswith("+"):
        return raw
    try:
        parsed = phonenumbers.parse(candidate, None)
    except phonenumbers.NumberParseException:
        return raw
    if not phonenumbers.is_possible_number(parsed):
        return raw
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
