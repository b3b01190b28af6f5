"""How long an SMS is, in the units carriers bill: GSM 03.38 septets or UCS-2 code units.

A text made only of characters from the GSM 03.38 default alphabet (plus its extension
table, whose characters take an escape septet and so count 2) is sent as GSM-7: 160
septets in one message, 153 per part once it has to be split (the user data header
takes the rest). Any other character switches the whole message to UCS-2: 70 UTF-16
code units in one message, 67 per part; characters outside the Basic Multilingual Plane
(most emoji) are a surrogate pair and count 2.

A part never ends in the middle of an escape sequence or a surrogate pair, as phones
and carriers split them, so a long text may need one part more than ``ceil(length / 153)``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Encoding = Literal["GSM-7", "UCS-2"]

# GSM 03.38 default alphabet, in table order (0x1B, the escape to the extension table, omitted).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: each costs an escape septet plus its own.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

SINGLE_PART_LIMIT: dict[Encoding, int] = {"GSM-7": 160, "UCS-2": 70}
MULTI_PART_LIMIT: dict[Encoding, int] = {"GSM-7": 153, "UCS-2": 67}


class SmsInfo(BaseModel):
    """The encoding a text needs, its length in that encoding's units, and its part count."""

    model_config = ConfigDict(frozen=True)

    encoding: Encoding
    length: int
    segments: int


def sms_info(text: str) -> SmsInfo:
    """Encoding, length and segment count of ``text`` as a carrier would send it.

    An empty text has length 0 and 0 segments: there is nothing to send.
    """
    encoding = encoding_for(text)
    units = [_unit_cost(char, encoding) for char in text]
    return SmsInfo(encoding=encoding, length=sum(units), segments=_segments(units, encoding))


def encoding_for(text: str) -> Encoding:
    """GSM-7 when every character is in the GSM 03.38 basic or extension table, else UCS-2."""
    return "GSM-7" if all(_is_gsm7(char) for char in text) else "UCS-2"


def _is_gsm7(char: str) -> bool:
    return char in GSM7_BASIC or char in GSM7_EXTENSION


def _unit_cost(char: str, encoding: Encoding) -> int:
    if encoding == "GSM-7":
        return 2 if char in GSM7_EXTENSION else 1
    return 2 if ord(char) > 0xFFFF else 1


def _segments(units: list[int], encoding: Encoding) -> int:
    total = sum(units)
    if total <= SINGLE_PART_LIMIT[encoding]:
        return 1 if total else 0
    return _pack(units, MULTI_PART_LIMIT[encoding])


def _pack(units: list[int], capacity: int) -> int:
    """Parts needed when no character (escape pair, surrogate pair) may straddle two parts."""
    parts, used = 1, 0
    for cost in units:
        if used + cost > capacity:
            parts, used = parts + 1, 0
        used += cost
    return parts
