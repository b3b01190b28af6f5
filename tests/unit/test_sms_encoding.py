"""SMS length and segment counting as carriers bill it (GSM 03.38 / UCS-2)."""

from __future__ import annotations

import pytest

from services.notifier.sms_encoding import sms_info


def test_160_gsm_characters_fit_in_one_segment() -> None:
    assert sms_info("a" * 160).model_dump() == {"encoding": "GSM-7", "length": 160, "segments": 1}


def test_161_gsm_characters_need_two_segments_of_153() -> None:
    assert sms_info("a" * 161).segments == 2
    assert sms_info("a" * 306).segments == 2
    assert sms_info("a" * 307).segments == 3


def test_euro_sign_is_an_extension_character_counting_two_septets() -> None:
    info = sms_info("€")
    assert (info.encoding, info.length) == ("GSM-7", 2)
    assert sms_info("€" * 80).segments == 1
    assert sms_info("€" * 80 + "a").segments == 2


@pytest.mark.parametrize("char", list("^{}\\[~]|"))
def test_every_extension_character_counts_two_septets(char: str) -> None:
    assert sms_info(char).model_dump() == {"encoding": "GSM-7", "length": 2, "segments": 1}


@pytest.mark.parametrize("char", ["ñ", "Ñ", "é", "É", "ü", "¿", "¡", "à", "è", "ù", "ì", "ò", "Ç", "ß", "Δ"])
def test_characters_of_the_gsm_basic_set_stay_gsm7(char: str) -> None:
    assert sms_info(f"Hola {char}").encoding == "GSM-7"


@pytest.mark.parametrize("char", ["á", "í", "ó", "ú", "Á", "ç", "’", "“", "—", "…"])
def test_characters_outside_the_gsm_set_force_ucs2(char: str) -> None:
    assert sms_info(f"Hola {char}").encoding == "UCS-2"


def test_one_accented_a_turns_the_whole_message_into_ucs2() -> None:
    info = sms_info("a" * 100 + "á")
    assert (info.encoding, info.length, info.segments) == ("UCS-2", 101, 2)


def test_emoji_forces_ucs2_and_counts_two_code_units() -> None:
    assert sms_info("😀").model_dump() == {"encoding": "UCS-2", "length": 2, "segments": 1}


def test_ucs2_fits_70_units_in_one_segment_then_67_per_segment() -> None:
    assert sms_info("á" * 70).segments == 1
    assert sms_info("á" * 71).segments == 2
    assert sms_info("á" * 134).segments == 2
    assert sms_info("á" * 135).segments == 3


def test_an_escape_pair_never_straddles_two_segments() -> None:
    # 152 septets then "€" (2 septets): the euro moves whole to the second part.
    assert sms_info("a" * 152 + "€" + "a" * 152).segments == 3
    assert sms_info("a" * 151 + "€" + "a" * 153).segments == 2


def test_a_surrogate_pair_never_straddles_two_segments() -> None:
    assert sms_info("á" * 66 + "😀" + "á" * 66).segments == 3


def test_empty_text_has_no_segments() -> None:
    assert sms_info("").model_dump() == {"encoding": "GSM-7", "length": 0, "segments": 0}
