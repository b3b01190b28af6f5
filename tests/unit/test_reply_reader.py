"""The reader understands what patients actually write (issue #9): lay words, Spanish,
hedges, negated lists, someone else's symptoms, questions, Q2 in words, numbers in words,
non-answers; and it explains every decision."""

from __future__ import annotations

import pytest

from services.survey.parsing import MAX_CHARS, Effect, Question, Reply, detect_red_flags, explain, parse_reply

Q1: Question = "q1_red_flags"
Q2: Question = "q2_common_effects"
Q3A: Question = "q3a_headache_days"
Q3B: Question = "q3b_medication_days"
REASONS = {1: "neck_pain", 2: "ptosis", 3: "injection_site_pain", 4: "headache_worse", 5: "muscle_weakness"}


def effect(code: int, severity: str | None = None) -> Effect:
    return Effect(code=code, reason=REASONS[code], severity=severity)


@pytest.mark.parametrize(("text", "code"), [
    ("it feels like a lump when I gulp", "dysphagia"),
    ("pills won't go down", "dysphagia"),
    ("food gets caught halfway down", "dysphagia"),
    ("se me traba al tragar", "dysphagia"),
    ("la comida no me baja", "dysphagia"),
    ("I can't catch my breath", "dyspnea"),
    ("gasping for air", "dyspnea"),
    ("no me entra el aire", "dyspnea"),
    ("my words come out wrong", "dysarthria"),
    ("my voice changed", "dysarthria"),
    ("tengo la voz ronca", "dysarthria"),
    ("my eyes won't work together", "vision"),
    ("everything looks fuzzy", "vision"),
    ("se me nubla la vista", "vision"),
    ("my arms and legs feel heavy", "generalized_weakness"),
    ("no tengo fuerza en brazos y piernas", "generalized_weakness"),
    ("se me doblan las piernas", "generalized_weakness"),
])
def test_a_red_flag_in_lay_words_is_reported_in_english_and_spanish(text: str, code: str) -> None:
    assert detect_red_flags(text) == (code,)


@pytest.mark.parametrize("text", ["it's hard to swalow", "I'm chokign on water", "my vission is blury", "brething is hard",
                                  "me cuesta respriar", "veo borrsoo"])
def test_a_slip_in_a_symptom_word_is_still_read(text: str) -> None:
    assert detect_red_flags(text) != ()


@pytest.mark.parametrize("text", ["probably", "puede ser", "I think so", "maybe", "tal vez", "kind of", "creo que sí"])
def test_a_hedged_yes_to_q1_is_a_yes(text: str) -> None:
    reply = parse_reply(text, Q1)
    assert reply.yes_no is True and reply.understood


@pytest.mark.parametrize("text", ["blurry, yes", "yes, I can't swallow", "sí, me cuesta tragar", "puede ser, veo doble"])
def test_a_yes_before_or_after_the_symptom_is_urgent_with_its_code(text: str) -> None:
    reply = parse_reply(text, Q1)
    assert reply.yes_no is True and reply.red_flags


@pytest.mark.parametrize("text", [
    "never had any choking, shortness of breath or blurry eyes",
    "no swallowing, breathing or speaking problems",
    "I don't have trouble swallowing or double vision",
    "no he tenido dificultad para tragar, falta de aire ni visión borrosa",
    "sin ronquera ni debilidad",
])
def test_a_negation_covers_the_whole_list_it_governs(text: str) -> None:
    reply = parse_reply(text, Q1)
    assert reply.red_flags == () and reply.yes_no is False


@pytest.mark.parametrize(("text", "code"), [
    ("no trouble swallowing but I'm seeing double", "vision"),
    ("no fever and my speech is slurred", "dysarthria"),
    ("nunca tuve problemas, pero ahora no puedo tragar", "dysphagia"),
])
def test_a_negation_stops_at_but_pero_though_and_a_new_statement(text: str, code: str) -> None:
    assert detect_red_flags(text) == (code,)


@pytest.mark.parametrize("text", [
    "no, but my husband has trouble swallowing",
    "no pero mi esposo tiene la vista borrosa",
    "no. my mom is short of breath",
])
def test_a_symptom_of_someone_else_is_not_the_patients_report(text: str) -> None:
    reply = parse_reply(text, Q1)
    assert reply.red_flags == () and reply.yes_no is False
    assert any(f.decision == "someone_else" for f in reply.findings)


@pytest.mark.parametrize("text", ["is blurry vision a side effect?", "¿puede causar dificultad para respirar?",
                                  "what if I get double vision?"])
def test_a_question_about_a_symptom_is_not_a_report(text: str) -> None:
    assert parse_reply(text, Q1).red_flags == ()


def test_a_question_in_which_the_patient_says_they_have_it_is_a_report() -> None:
    assert detect_red_flags("is it normal that I can't swallow?") == ("dysphagia",)


@pytest.mark.parametrize("text", ["hola, habla Rosa, todo bien", "no, me ahogo en trabajo jaja pero bien",
                                  "can I speak to the nurse?", "no, trabajo turno doble", "I can't stand the pain",
                                  "my baby is crying", "I used my nasal spray twice", "can't read your message",
                                  "I had to swallow my pride", "what a breathtaking view", "I can see the doctor on Friday",
                                  "no me pasa nada", "quiero hablar con la enfermera", "can't say"])
def test_a_common_word_that_also_names_a_symptom_raises_nothing(text: str) -> None:
    assert detect_red_flags(text) == ()


@pytest.mark.parametrize(("text", "expected"), [
    ("stiff neck", (effect(1),)),
    ("a sore injection site", (effect(3),)),
    ("droopy eyelid", (effect(2),)),
    ("my face feels weak", (effect(5),)),
    ("headache is worse than usual", (effect(4),)),
    ("me duele un poco el cuello", (effect(1, "mild"),)),
    ("terrible neck pain", (effect(1, "severe"),)),
    ("the first and third", (effect(1), effect(3))),
    ("el primero y el tercero", (effect(1), effect(3))),
    ("the second one", (effect(2),)),
    ("the last one", (effect(5),)),
])
def test_q2_is_understood_in_words_and_by_position(text: str, expected: tuple[Effect, ...]) -> None:
    reply = parse_reply(text, Q2)
    assert reply.understood and reply.effects == expected and reply.red_flags == ()


@pytest.mark.parametrize(("text", "expected"), [
    ("no, though my neck is stiff", (effect(1),)),
    ("no but my eyelid droops", (effect(2),)),
    ("no, pero me duele el cuello", (effect(1),)),
])
def test_a_no_to_q1_with_effects_answers_q1_and_q2_at_once(text: str, expected: tuple[Effect, ...]) -> None:
    reply = parse_reply(text, Q1)
    assert reply.without_findings() == Reply(yes_no=False, effects=expected, understood=True)


@pytest.mark.parametrize(("text", "days"), [
    ("close to a dozen", 12), ("every day", 28), ("todos los días", 28), ("every other day", 14),
    ("3 times a week", 12), ("dos veces por semana", 8), ("between 8 and 10", 10), ("5-6", 6),
    ("half the month", 14), ("a couple", 2), ("veintidós", 22), ("not a single one", 0), ("ni uno", 0),
    ("not sure, maybe 10", 10),
])
def test_headache_days_in_words_approximations_and_ranges(text: str, days: int) -> None:
    reply = parse_reply(text, Q3A)
    assert reply.understood and reply.number == days


@pytest.mark.parametrize("text", ["can't recall", "I don't remember", "no me acuerdo", "no sé", "idk", "lost count",
                                  "almost every day", "casi todos los días", "lots"])
def test_a_non_answer_to_a_number_question_is_asked_again_never_zero(text: str) -> None:
    for question in (Q3A, Q3B):
        reply = parse_reply(text, question)
        assert reply.number is None and not reply.understood


def test_every_red_flag_comes_with_the_words_and_the_rule_that_read_it() -> None:
    [finding] = [f for f in explain("se me traba al tragar") if f.decision == "reported"]
    assert finding.code == "dysphagia" and "tragar" in finding.span and "lexicon" in finding.rule
    assert "-> dysphagia" in finding.describe()


def test_a_negated_symptom_is_explained_with_its_cue() -> None:
    findings = explain("never had any choking")
    assert [(f.code, f.decision) for f in findings] == [("dysphagia", "negated")]
    assert "never" in findings[0].rule


@pytest.mark.parametrize("question", [None, Q1, Q2, Q3A, Q3B])
@pytest.mark.parametrize("text", ["❾", "①②", "٣", "𝟗", "\u0000", "\ufdfa" * 50, "a\u0301" * 100, "🏳️‍🌈" * 20, "\U0010ffff", "¿?¡!"])
def test_the_reader_never_raises_on_any_unicode(text: str, question: Question | None) -> None:
    parse_reply(text, question)


def test_a_megabyte_of_worst_case_characters_is_read_without_error() -> None:
    for text in ("swallowing, " * 90_000, "\ufdfa" * 1_000_000, "9" * 1_000_000, "no trouble with " * 70_000):
        parse_reply(text, Q1)


def test_only_the_first_sms_length_of_a_message_is_read() -> None:
    padding = "fine " * (MAX_CHARS // 5)
    assert detect_red_flags(padding[: MAX_CHARS - 20] + " I can't swallow") == ("dysphagia",)
    assert detect_red_flags(padding + " I can't swallow") == ()


@pytest.mark.parametrize(("text", "days", "medication"), [
    ("about 10, and I took pills on 4", 10, 4),
    ("unos 12 días y tomé pastillas 5", 12, 5),
])
def test_a_headache_answer_that_also_gives_the_medication_days_fills_both(text: str, days: int, medication: int) -> None:
    reply = parse_reply(text, Q3A)
    assert (reply.number, reply.medication_days, reply.understood) == (days, medication, True)


def test_a_range_is_not_mistaken_for_two_answers() -> None:
    reply = parse_reply("between 8 and 10", Q3A)
    assert (reply.number, reply.medication_days) == (10, None)
