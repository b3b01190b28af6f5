"""Reading a phone number into E.164, the one form the contract and the phone index use."""

from __future__ import annotations

import phonenumbers


def e164(raw: str, region: str | None = None) -> str:
    """``raw`` as E.164 (a national number read in ``region``); ``ValueError`` says why not."""
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not an E.164 phone number: {exc}") from None
    if not phonenumbers.is_possible_number(parsed):
        raise ValueError("not a possible phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def region_of(phone: str) -> str | None:
    """The country of an E.164 number (``US``), or ``None`` when it cannot be read."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(phone, None))
    except phonenumbers.NumberParseException:
        return None


def e164_or_none(raw: str, region: str | None = None) -> str | None:
    """``raw`` as E.164 (a national number read in ``region``), or ``None`` when it is not a
    possible phone number."""
    try:
        return e164(raw, region)
    except ValueError:
        return None
