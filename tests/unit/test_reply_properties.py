"""Metamorphic properties of the reader (hypothesis): what a patient adds around a red flag
(a slip, case, punctuation, emoji, a greeting, a thanks) never lowers its severity; a
governed negation removes a symptom; English and Spanish say the same thing."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.replies.scoring import load, outcome
from services.survey.parsing import Question, detect_red_flags, parse_reply

# red-flag replies of the development corpus, as written (without a slip of their own)
URGENT = [row for row in load("dev") if row["kind"] == "side_effects" and row["severity"] == "urgent"
          and row["red_flags"] and row["note"] != "typo"]
GREETINGS = ["hi ", "Hello! ", "good morning, ", "hola, ", "Buenos días. ", "Dr Lee, ", ""]
THANKS = [" thanks", " thank you!!", " gracias", " 🙏", " :)", " xx", ""]
EMOJI = ["😟", "😢", "🙏", "👍🏽", "❤️", "🤕", "😷"]
PUNCTUATION = ["!", "!!!", "...", "?!", ".", " -", ","]
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def slip(draw: st.DrawFn, text: str) -> str:
    """One slip a thumb makes in a word of six letters or more, after its first two letters:
    two letters swapped, one dropped or one doubled."""
    words = text.split(" ")
    long_words = [i for i, w in enumerate(words) if len(w) >= 6 and w.isalpha()]
    if not long_words:
        return text
    i = draw(st.sampled_from(long_words))
    word = words[i]
    at = draw(st.integers(min_value=2, max_value=len(word) - 2))
    kind = draw(st.sampled_from(["swap", "drop", "double"]))
    if kind == "swap":
        word = word[:at] + word[at + 1] + word[at] + word[at + 2:]
    elif kind == "drop":
        word = word[:at] + word[at + 1:]
    else:
        word = word[:at] + word[at] + word[at:]
    return " ".join([*words[:i], word, *words[i + 1:]])


@st.composite
def decorated(draw: st.DrawFn, text: str) -> str:
    text = draw(st.sampled_from([text, text.upper(), text.lower(), text.capitalize()]))
    if draw(st.booleans()):
        text = draw(slip(text))
    text = draw(st.sampled_from(GREETINGS)) + text
    text += draw(st.sampled_from(PUNCTUATION + [""])) + draw(st.sampled_from(THANKS))
    if draw(st.booleans()):
        text += " " + draw(st.sampled_from(EMOJI))
    return text


@st.composite
def urgent_reply_decorated(draw: st.DrawFn) -> tuple[dict, str]:
    row = draw(st.sampled_from(URGENT))
    return row, draw(decorated(row["text"]))


@PROPERTY
@given(urgent_reply_decorated())
def test_slips_case_punctuation_emoji_greetings_and_thanks_never_lower_a_red_flag(case: tuple[dict, str]) -> None:
    row, text = case
    assert outcome(parse_reply(text, row["question"]), row["question"]) == "urgent", text


SYMPTOMS_EN = ["choking", "trouble swallowing", "shortness of breath", "trouble breathing", "blurry vision",
               "double vision", "slurred speech", "hoarseness", "weakness all over", "a change in my voice"]
SYMPTOMS_ES = ["dificultad para tragar", "falta de aire", "visión borrosa", "visión doble", "ronquera",
               "debilidad en todo el cuerpo", "problemas para hablar"]
NEGATIONS_EN = ["no {}", "never had {}", "I don't have {}", "haven't had any {}", "without {}", "no {} at all",
                "never had any {}, {} or {}", "no {} or {}", "I have not had {} or {}"]
NEGATIONS_ES = ["no tengo {}", "sin {}", "nunca tuve {}", "no he tenido {} ni {}", "ni {} ni {}", "no he tenido {}, {} ni {}"]


@st.composite
def negated(draw: st.DrawFn) -> tuple[str, list[str]]:
    spanish = draw(st.booleans())
    symptoms, frames = (SYMPTOMS_ES, NEGATIONS_ES) if spanish else (SYMPTOMS_EN, NEGATIONS_EN)
    frame = draw(st.sampled_from(frames))
    picked = draw(st.lists(st.sampled_from(symptoms), min_size=frame.count("{}"), max_size=frame.count("{}"), unique=True))
    return frame.format(*picked), picked


@PROPERTY
@given(negated())
def test_a_symptom_reads_as_reported_alone_and_as_nothing_inside_a_governed_negation(case: tuple[str, list[str]]) -> None:
    text, symptoms = case
    assert all(detect_red_flags(symptom) for symptom in symptoms), symptoms
    assert detect_red_flags(text) == (), text
    assert parse_reply(text, "q1_red_flags").yes_no is False, text


SAME_ANSWER: list[tuple[Question, str, str]] = [
    ("q1_red_flags", "yes, I can't swallow", "sí, no puedo tragar"),
    ("q1_red_flags", "short of breath", "me falta el aire"),
    ("q1_red_flags", "double vision", "visión doble"),
    ("q1_red_flags", "blurry vision", "veo borroso"),
    ("q1_red_flags", "my speech is slurred", "arrastro las palabras"),
    ("q1_red_flags", "I lost my voice", "perdí la voz"),
    ("q1_red_flags", "weak all over", "débil en todo el cuerpo"),
    ("q1_red_flags", "no", "no"),
    ("q1_red_flags", "probably", "puede ser"),
    ("q1_red_flags", "no, but my neck hurts", "no, pero me duele el cuello"),
    ("q1_red_flags", "no, all good", "no, todo bien"),
    ("q2_common_effects", "2 severe", "2 fuerte"),
    ("q2_common_effects", "1 mild and 3", "1 leve y 3"),
    ("q2_common_effects", "none", "ninguno"),
    ("q2_common_effects", "the first and third", "el primero y el tercero"),
    ("q2_common_effects", "stiff neck", "cuello rígido"),
    ("q2_common_effects", "droopy eyelid", "párpado caído"),
    ("q2_common_effects", "my headache is worse", "el dolor de cabeza está peor"),
    ("q3a_headache_days", "every day", "todos los días"),
    ("q3a_headache_days", "twelve", "doce"),
    ("q3a_headache_days", "about twenty", "unos veinte"),
    ("q3a_headache_days", "twice a week", "dos veces por semana"),
    ("q3a_headache_days", "I don't remember", "no me acuerdo"),
    ("q3b_medication_days", "none", "ninguno"),
]


@PROPERTY
@given(st.sampled_from(SAME_ANSWER), st.sampled_from(["", "ok ", "hmm "]), st.sampled_from(["", "!", " 🙏"]))
def test_english_and_spanish_variants_of_an_answer_give_the_same_reading(case: tuple[Question, str, str], before: str, after: str) -> None:
    question, english, spanish = case
    read_en = parse_reply(before + english + after, question).without_findings()
    read_es = parse_reply(before + spanish + after, question).without_findings()
    assert read_en == read_es


QUESTIONS: list[Question | None] = [None, "q1_red_flags", "q2_common_effects", "q3a_headache_days", "q3b_medication_days"]


@PROPERTY
@given(st.text(max_size=400), st.sampled_from(QUESTIONS))
def test_any_unicode_text_is_read_without_raising_and_gives_a_valid_reply(text: str, question: Question | None) -> None:
    reply = parse_reply(text, question)
    assert reply.number is None or 0 <= reply.number <= 28
    assert set(reply.red_flags) <= {"dysphagia", "dyspnea", "dysarthria", "vision", "generalized_weakness"}
