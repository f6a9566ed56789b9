"""Customer numbers compared in E.164 (pure).

The provider sends inbound callers in E.164 (``+31612345678``) but outbound destinations as
dialled: nationally (``0612345678``), with an international prefix (``0031612345678``), or
an internal extension (``201``). Callback cases compare numbers only in E.164, read with the
rules' default region; what cannot be read as a possible public number (extensions,
``anonymous``, withheld, the provider's placeholders) has no E.164 form and opens no case.
"""

from __future__ import annotations

from functools import lru_cache

import phonenumbers

# Longer than any phone number however it is written: not a number, and never a cache key
# (8192 keys of a client's 30 KB strings would hold 240 MB).
LONGEST_NUMBER = 64


def e164(raw: str, region: str) -> str | None:
    """``raw`` as E.164, reading national numbers in ``region`` (ISO code), or None."""
    return None if len(raw) > LONGEST_NUMBER else _e164(raw, region)


@lru_cache(maxsize=8192)
def _e164(raw: str, region: str) -> str | None:
    text = raw.strip()
    if not any(c.isdigit() for c in text):
        return None
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed) or len(str(parsed.national_number)) < 6:
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
