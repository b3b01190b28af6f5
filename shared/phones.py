"""Reading a phone number into E.164, the one form the contract and the phone index use."""

from __future__ import annotations

import phonenumbers


def e164_or_none(raw: str, region: str | None = None) -> str | None:
    """``raw`` as E.164 (a national number read in ``region``), or ``None`` when it is not a
    possible phone number."""
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
