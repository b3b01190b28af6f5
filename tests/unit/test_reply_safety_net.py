"""The safety net fails toward safety (DESIGN.md, "Understanding replies"): a red-flag body
function or site named with a trouble word is that red flag even when no lexicon phrase
foresaw the wording; a governed negation, someone else's symptom or a question stays
non-urgent. The phrasings here are in none of the lexicon's phrases."""

from __future__ import annotations

import pytest

from services.survey.parsing import detect_red_flags, explain, parse_reply


@pytest.mark.parametrize(("text", "code"), [
    ("my throat feels weird when i eat", "dysphagia"),
    ("tengo la garganta rara al comer", "dysphagia"),
    ("my chest feels heavy", "dyspnea"),
    ("talking is a struggle today", "dysarthria"),
    ("my tongue feels off", "dysarthria"),
    ("hablar me cuesta horrores", "dysarthria"),
    ("my voice sounds strange", "dysarthria"),
    ("my eyes are acting funny", "vision"),
    ("la vista la tengo rara", "vision"),
    ("my legs feel useless", "generalized_weakness"),
    ("mis piernas estan flojas", "generalized_weakness"),
])
def test_a_site_with_a_trouble_word_is_the_red_flag_of_that_site(text: str, code: str) -> None:
    assert detect_red_flags(text) == (code,)


@pytest.mark.parametrize("text", [
    "no trouble with my throat",
    "my throat is fine, no trouble",
    "sin problemas en la garganta",
    "tragar no me cuesta",
    "no me cuesta hablar",
    "nothing wrong with my eyes or voice",
    "nothing with my eyes, voice or breathing",
    "sin dificultad para tragar, respirar o hablar",
    "my eyes are fine, nothing weird",
])
def test_a_governed_negation_keeps_the_safety_net_quiet(text: str) -> None:
    assert detect_red_flags(text) == ()


@pytest.mark.parametrize("text", [
    "my husband's legs feel heavy",
    "mi hijo tiene la vista rara",
    "is it normal for eyes to feel weird?",
    "¿es normal tener la voz rara?",
    "¿la inyeccion puede causar dificultad para tragar?",
])
def test_someone_elses_symptom_or_a_question_is_not_the_patients_report(text: str) -> None:
    assert detect_red_flags(text) == ()


def test_the_safety_net_never_displaces_a_lexicon_reading_of_two_symptoms() -> None:
    assert detect_red_flags("yes trouble swallowing and breathing") == ("dysphagia", "dyspnea")
    assert detect_red_flags("me cuesta tragar y hablar") == ("dysphagia", "dysarthria")


def test_the_safety_net_says_why_it_escalated() -> None:
    [finding] = [f for f in explain("my throat feels weird when i eat") if f.code == "dysphagia"]
    assert finding.decision == "reported"
    assert "safety net" in finding.rule
    assert finding.span == "throat feels weird"


def test_a_face_weakness_stays_a_common_effect_in_words() -> None:
    reply = parse_reply("my forehead feels heavy and weak", "q2_common_effects")
    assert reply.red_flags == ()
    assert [e.code for e in reply.effects or ()] == [5]


def test_a_first_person_verb_makes_the_symptom_the_patients_own_whoever_noticed_it() -> None:
    assert detect_red_flags("mi esposo dice que hablo raro") == ("dysarthria",)


def test_a_severity_said_once_for_both_effects_applies_to_each() -> None:
    reply = parse_reply("1 and 3, both mild", "q2_common_effects")
    assert [(e.code, e.severity) for e in reply.effects or ()] == [(1, "mild"), (3, "mild")]


def test_a_heavy_eye_is_a_drooping_eyelid_not_a_vision_red_flag() -> None:
    reply = parse_reply("my eye feels heavy", "q2_common_effects")
    assert reply.red_flags == ()
    assert [e.code for e in reply.effects or ()] == [2]


@pytest.mark.parametrize(("text", "code"), [
    ("never been this weak", "generalized_weakness"),
    ("i've never had trouble breathing like this", "dyspnea"),
    ("nunca me habia sentido tan debil", "generalized_weakness"),
    ("nothing goes down", "dysphagia"),
    ("nada me pasa por la garganta", "dysphagia"),
])
def test_a_never_that_compares_or_a_nothing_that_describes_reports_the_symptom(text: str, code: str) -> None:
    assert detect_red_flags(text) == (code,)


@pytest.mark.parametrize("text", [
    "never had trouble swallowing",
    "nunca tuve problemas para tragar",
    "I never had trouble breathing, not like my sister",
])
def test_a_plain_never_still_denies(text: str) -> None:
    assert detect_red_flags(text) == ()


@pytest.mark.parametrize(("text", "said"), [
    ("no sé", None),
    ("idk", None),
    ("no sé, puede", True),
    ("i guess", True),
    ("eso creo", True),
    ("probably not", False),
    ("maybe not", False),
    ("no se, creo que no", False),
])
def test_an_i_dont_know_is_no_answer_and_a_hedge_leans_the_way_it_is_said(text: str, said: bool | None) -> None:
    assert parse_reply(text, "q1_red_flags").yes_no is said


def test_no_se_me_pasa_la_comida_is_dysphagia_not_a_no() -> None:
    reply = parse_reply("no se me pasa la comida", "q1_red_flags")
    assert reply.red_flags == ("dysphagia",)
