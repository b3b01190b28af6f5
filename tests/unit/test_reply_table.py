"""The reader's table of replies (kept from the first parser): typos, emoji, Spanish, negations.

Each row is one SMS, the question open when it arrived, and the whole Reply expected.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from services.survey.parsing import (
    VOCABULARY_PATH,
    Effect,
    Question,
    Reply,
    Vocabulary,
    detect_red_flags,
    load_vocabulary,
    match_keyword,
    parse_reply,
)

Q1: Question = "q1_red_flags"
Q2: Question = "q2_common_effects"
Q3A: Question = "q3a_headache_days"
Q3B: Question = "q3b_medication_days"

# DESIGN.md, Q2: the numbers patients answer with and the alert reasons they stand for.
REASONS = {1: "neck_pain", 2: "ptosis", 3: "injection_site_pain", 4: "headache_worse", 5: "muscle_weakness"}


def keyword(kind: str) -> Reply:
    return Reply(keyword=kind, understood=True)


def flags(*codes: str) -> Reply:
    """No question open: only the red flags mean anything."""
    return Reply(red_flags=codes)


def yes(*codes: str) -> Reply:
    return Reply(yes_no=True, red_flags=codes, understood=True)


def no() -> Reply:
    return Reply(yes_no=False, understood=True)


def effect(code: int, severity: str | None = None) -> Effect:
    return Effect(code=code, reason=REASONS[code], severity=severity)


def effects(*items: Effect, red_flags: tuple[str, ...] = ()) -> Reply:
    return Reply(effects=items, red_flags=red_flags, understood=True)


def days(number: int, *codes: str) -> Reply:
    return Reply(number=number, red_flags=codes, understood=True)


def unclear(*codes: str) -> Reply:
    return Reply(red_flags=codes)


KEYWORDS = [
    pytest.param("STOP", Q1, keyword("stop"), id="stop-upper"),
    pytest.param("stop", None, keyword("stop"), id="stop-lower"),
    pytest.param("  Stop.  ", Q2, keyword("stop"), id="stop-spaces-and-full-stop"),
    pytest.param("STOP!!!", Q3A, keyword("stop"), id="stop-exclamations"),
    pytest.param("Stopall", None, keyword("stop"), id="stopall"),
    pytest.param("UNSUBSCRIBE", None, keyword("stop"), id="unsubscribe"),
    pytest.param("cancel", Q1, keyword("stop"), id="cancel"),
    pytest.param("End", None, keyword("stop"), id="end"),
    pytest.param("QUIT", None, keyword("stop"), id="quit"),
    pytest.param("revoke", None, keyword("stop"), id="revoke"),
    pytest.param("opt out", None, keyword("stop"), id="opt-out-two-words"),
    pytest.param("OPTOUT", None, keyword("stop"), id="optout-one-word"),
    pytest.param("Opt-Out", None, keyword("stop"), id="opt-out-hyphen"),
    pytest.param("stop 🛑", None, keyword("stop"), id="stop-with-emoji"),
    pytest.param("ALTO", None, keyword("stop"), id="es-alto"),
    pytest.param("Parar", None, keyword("stop"), id="es-parar"),
    pytest.param("baja", None, keyword("stop"), id="es-baja"),
    pytest.param("CANCELAR", None, keyword("stop"), id="es-cancelar"),
    pytest.param("START", None, keyword("start"), id="start"),
    pytest.param("unstop", None, keyword("start"), id="unstop"),
    pytest.param("Inicio", None, keyword("start"), id="es-inicio"),
    pytest.param("comenzar", None, keyword("start"), id="es-comenzar"),
    pytest.param("HELP", None, keyword("help"), id="help"),
    pytest.param("help?", Q1, keyword("help"), id="help-question-mark"),
    pytest.param("info", None, keyword("help"), id="info"),
    pytest.param("AYUDA", None, keyword("help"), id="es-ayuda"),
    pytest.param("please stop texting me about this", None, flags(), id="stop-inside-a-sentence-is-not-a-keyword"),
    pytest.param("yes", None, flags(), id="yes-is-an-answer-not-a-keyword"),
]

RED_FLAGS_ANYTIME = [
    pytest.param("can't swallow right since Tuesday", None, flags("dysphagia"), id="cant-swallow-since-tuesday"),
    pytest.param("I have trouble swallowing", None, flags("dysphagia"), id="trouble-swallowing"),
    pytest.param("hard to swallow food", None, flags("dysphagia"), id="hard-to-swallow"),
    pytest.param("Choking on water today", None, flags("dysphagia"), id="choking"),
    pytest.param("food goes down wrong", None, flags("dysphagia"), id="food-goes-down-wrong"),
    pytest.param("it hurts to swalow", None, flags("dysphagia"), id="typo-swalow"),
    pytest.param("swallowin is weird", None, flags("dysphagia"), id="typo-swallowin"),
    pytest.param("cant swalowing good", None, flags("dysphagia"), id="typo-swalowing-cant"),
    pytest.param("I can barely swallow", None, flags("dysphagia"), id="barely-swallow"),
    pytest.param("short of breath", None, flags("dyspnea"), id="short-of-breath"),
    pytest.param("I can't breathe well", None, flags("dyspnea"), id="cant-breathe-well"),
    pytest.param("Breathing feels hard", None, flags("dyspnea"), id="breathing-feels-hard"),
    pytest.param("brething is hard", None, flags("dyspnea"), id="typo-brething"),
    pytest.param("out of breth", None, flags("dyspnea"), id="typo-breth"),
    pytest.param("my speech is slurred", None, flags("dysarthria"), id="speech-slurred"),
    pytest.param("slurring my words", None, flags("dysarthria"), id="slurring"),
    pytest.param("I'm talking funny", None, flags("dysarthria"), id="talking-funny"),
    pytest.param("hard to speak", None, flags("dysarthria"), id="hard-to-speak"),
    pytest.param("double vision", None, flags("vision"), id="double-vision"),
    pytest.param("DOUBLE VISION since yesterday", None, flags("vision"), id="double-vision-upper"),
    pytest.param("dubble vision", None, flags("vision"), id="typo-dubble-vision"),
    pytest.param("everything is blury", None, flags("vision"), id="typo-blury"),
    pytest.param("my vision is blurred", None, flags("vision"), id="vision-blurred"),
    pytest.param("seeing double", None, flags("vision"), id="seeing-double"),
    pytest.param("my vison is off", None, flags("vision"), id="typo-vison"),
    pytest.param("weak all over", None, flags("generalized_weakness"), id="weak-all-over"),
    pytest.param("my whole body feels weak", None, flags("generalized_weakness"), id="whole-body-weak"),
    pytest.param("I can't lift my arms", None, flags("generalized_weakness"), id="cant-lift-arms"),
    pytest.param("no puedo tragar", None, flags("dysphagia"), id="es-no-puedo-tragar"),
    pytest.param("me cuesta tragar", None, flags("dysphagia"), id="es-cuesta-tragar"),
    pytest.param("me atraganto con la comida", None, flags("dysphagia"), id="es-atraganto"),
    pytest.param("me ahogo al comer", None, flags("dysphagia"), id="es-ahogo"),
    pytest.param("me falta el aire", None, flags("dyspnea"), id="es-falta-el-aire"),
    pytest.param("no puedo respirar bien", None, flags("dyspnea"), id="es-no-puedo-respirar-bien"),
    pytest.param("no respiro bien", None, flags("dyspnea"), id="es-no-respiro-bien"),
    pytest.param("arrastro las palabras", None, flags("dysarthria"), id="es-arrastro-palabras"),
    pytest.param("me cuesta hablar", None, flags("dysarthria"), id="es-cuesta-hablar"),
    pytest.param("tengo visión doble", None, flags("vision"), id="es-vision-doble"),
    pytest.param("VEO DOBLE", None, flags("vision"), id="es-veo-doble"),
    pytest.param("todo lo veo borroso", None, flags("vision"), id="es-borroso"),
    pytest.param("me siento débil todo el cuerpo", None, flags("generalized_weakness"), id="es-debil-todo-el-cuerpo"),
    pytest.param("debilidad general", None, flags("generalized_weakness"), id="es-debilidad-general"),
    pytest.param(
        "can't swallow and my vision is blurry",
        None,
        flags("dysphagia", "vision"),
        id="two-flags-in-canonical-order",
    ),
    pytest.param("No, I can't swallow", None, flags("dysphagia"), id="no-comma-cant-swallow"),
    pytest.param("NO but now I can't breathe well", None, flags("dyspnea"), id="no-but-cant-breathe"),
    pytest.param("no fever and my speech is slurred", None, flags("dysarthria"), id="negation-of-other-thing"),
    pytest.param(
        "No problems swallowing, speaking is hard",
        None,
        flags("dysarthria"),
        id="negation-does-not-reach-next-clause",
    ),
    pytest.param("swallowing is fine but breathing is not", None, flags("dyspnea"), id="fine-then-but"),
    pytest.param("I'm not able to swallow", None, flags("dysphagia"), id="not-able-to-swallow"),
    pytest.param("I don't think I can swallow", None, flags("dysphagia"), id="dont-think-i-can"),
    pytest.param("vision is not good", None, flags("vision"), id="vision-not-good"),
    pytest.param("breathing is not easy", None, flags("dyspnea"), id="breathing-not-easy"),
    pytest.param("Had a little trouble talking yesterday", None, flags("dysarthria"), id="trouble-talking"),
    pytest.param("Swallowing? Yes", None, flags("dysphagia"), id="label-then-yes"),
    pytest.param("Not sure? I have double vision", None, flags("vision"), id="unsure-then-symptom"),
    pytest.param(
        "vision, swallowing, breathing: all bad",
        None,
        flags("dysphagia", "dyspnea", "vision"),
        id="list-then-all-bad",
    ),
    pytest.param("Vision: no, but swallowing is hard", None, flags("dysphagia"), id="label-no-but-symptom"),
    pytest.param("I feel weak all over and can't breathe", None, flags("dyspnea", "generalized_weakness"), id="two-flags-with-and"),
]

NEGATIONS = [
    pytest.param("no trouble swallowing", None, flags(), id="no-trouble-swallowing"),
    pytest.param("No problems breathing", None, flags(), id="no-problems-breathing"),
    pytest.param("swallowing is fine", None, flags(), id="swallowing-is-fine"),
    pytest.param("breathing ok", None, flags(), id="breathing-ok"),
    pytest.param("Breathing normal", None, flags(), id="breathing-normal"),
    pytest.param("sin problemas para tragar", None, flags(), id="es-sin-problemas-tragar"),
    pytest.param("no tengo dificultad para respirar", None, flags(), id="es-no-tengo-dificultad"),
    pytest.param("nothing with my vision", None, flags(), id="nothing-with-my-vision"),
    pytest.param("never had trouble breathing", None, flags(), id="never-had-trouble"),
    pytest.param("without any difficulty swallowing", None, flags(), id="without-difficulty"),
    pytest.param("I haven't had any trouble swallowing", None, flags(), id="havent-had-any-trouble"),
    pytest.param("no double vision", None, flags(), id="no-double-vision"),
    pytest.param("no swallowing or breathing issues", None, flags(), id="no-x-or-y-issues"),
    pytest.param(
        "no trouble swallowing, breathing or speaking",
        None,
        flags(),
        id="negated-comma-list",
    ),
    pytest.param("swallowing isn't a problem", None, flags(), id="isnt-a-problem"),
    pytest.param("breathing well", None, flags(), id="breathing-well"),
    pytest.param("I can speak fine", None, flags(), id="can-speak-fine"),
    pytest.param("respiro bien", None, flags(), id="es-respiro-bien"),
    pytest.param("ni para tragar ni para respirar", None, flags(), id="es-ni-ni"),
    pytest.param("no veo doble", None, flags(), id="es-no-veo-doble"),
    pytest.param("can I speak to the nurse?", None, flags(), id="speak-to-the-nurse"),
    pytest.param("quiero hablar con la doctora", None, flags(), id="es-hablar-con-la-doctora"),
    pytest.param("my neck is swollen", None, flags(), id="swollen-is-not-swallow"),
    pytest.param("had a headache this week", None, flags(), id="ordinary-news"),
    pytest.param("my neck is a bit weak", None, flags(), id="neck-weakness-is-not-generalized"),
    pytest.param("my eyelid is drooping a bit", None, flags(), id="ptosis-is-not-vision"),
    pytest.param("Swallowing: no problems. Breathing: no problems.", None, flags(), id="labels-no-problems"),
    pytest.param("Swallowing? No. Breathing? No. Vision? Nope", None, flags(), id="labels-answered-no"),
    pytest.param("vision, swallowing, breathing: all fine", None, flags(), id="list-then-all-fine"),
    pytest.param("swallowing no", None, flags(), id="symptom-then-bare-no"),
    pytest.param("I swallowed my pills fine", None, flags(), id="swallowed-pills-fine"),
    pytest.param("I have not had any trouble with swallowing", None, flags(), id="long-negation"),
    pytest.param("I talked to the doctor", None, flags(), id="talked-to-the-doctor"),
    pytest.param("todo bien, sin problemas", None, flags(), id="es-todo-bien"),
]

Q1_ANSWERS = [
    pytest.param("yes", Q1, yes(), id="q1-yes"),
    pytest.param("Y", Q1, yes(), id="q1-y"),
    pytest.param("Yeah", Q1, yes(), id="q1-yeah"),
    pytest.param("yep", Q1, yes(), id="q1-yep"),
    pytest.param("yup!", Q1, yes(), id="q1-yup"),
    pytest.param("ya", Q1, yes(), id="q1-ya"),
    pytest.param("si", Q1, yes(), id="q1-si"),
    pytest.param("Sí", Q1, yes(), id="q1-si-accent"),
    pytest.param("👍", Q1, yes(), id="q1-thumbs-up"),
    pytest.param("👍🏽", Q1, yes(), id="q1-thumbs-up-skin-tone"),
    pytest.param("yes I do", Q1, yes(), id="q1-yes-i-do"),
    pytest.param("YES!!", Q1, yes(), id="q1-yes-shouted"),
    pytest.param("yesss", Q1, yes(), id="q1-yes-stretched"),
    pytest.param("no", Q1, no(), id="q1-no"),
    pytest.param("N", Q1, no(), id="q1-n"),
    pytest.param("Nope", Q1, no(), id="q1-nope"),
    pytest.param("nah", Q1, no(), id="q1-nah"),
    pytest.param("no thanks", Q1, no(), id="q1-no-thanks"),
    pytest.param("👎", Q1, no(), id="q1-thumbs-down"),
    pytest.param("no, all good", Q1, no(), id="q1-no-all-good"),
    pytest.param("NO.", Q1, no(), id="q1-no-upper"),
    pytest.param("nooo", Q1, no(), id="q1-no-stretched"),
    pytest.param("No trouble swallowing or breathing", Q1, no(), id="q1-no-with-negated-symptoms"),
    pytest.param("no, I'm fine, swallowing ok", Q1, no(), id="q1-no-swallowing-ok"),
    pytest.param("No, I can't swallow", Q1, yes("dysphagia"), id="q1-no-but-red-flag-means-yes"),
    pytest.param("can't swallow right since Tuesday", Q1, yes("dysphagia"), id="q1-red-flag-without-yes"),
    pytest.param("Yes, seeing double", Q1, yes("vision"), id="q1-yes-and-flag"),
    pytest.param("sí, no puedo tragar", Q1, yes("dysphagia"), id="q1-es-si-no-puedo-tragar"),
    pytest.param("maybe?", Q1, yes(), id="q1-maybe-is-a-hedged-yes"),
    pytest.param("ok", Q1, unclear(), id="q1-ok-is-unclear"),
    pytest.param("yes no", Q1, unclear(), id="q1-both-is-unclear"),
    pytest.param("what does this mean", Q1, unclear(), id="q1-question-back"),
    pytest.param("No 👍", Q1, no(), id="q1-no-with-thumbs-up-is-no"),
    pytest.param("Nada", Q1, no(), id="q1-es-nada"),
    pytest.param("Nope, no swallowing issues, no breathing issues", Q1, no(), id="q1-nope-with-negated-list"),
]

Q2_ANSWERS = [
    pytest.param("2", Q2, effects(effect(2)), id="q2-2"),
    pytest.param("2S", Q2, effects(effect(2, "severe")), id="q2-2S"),
    pytest.param("2 s", Q2, effects(effect(2, "severe")), id="q2-2-s"),
    pytest.param("1 and 3", Q2, effects(effect(1), effect(3)), id="q2-1-and-3"),
    pytest.param("1,3m", Q2, effects(effect(1), effect(3, "mild")), id="q2-1-comma-3m"),
    pytest.param("1, 3 mild", Q2, effects(effect(1), effect(3, "mild")), id="q2-1-3-mild"),
    pytest.param("2 severe", Q2, effects(effect(2, "severe")), id="q2-2-severe"),
    pytest.param("two", Q2, effects(effect(2)), id="q2-two"),
    pytest.param("dos", Q2, effects(effect(2)), id="q2-es-dos"),
    pytest.param("0", Q2, effects(), id="q2-0"),
    pytest.param("none", Q2, effects(), id="q2-none"),
    pytest.param("Nothing", Q2, effects(), id="q2-nothing"),
    pytest.param("ninguno", Q2, effects(), id="q2-es-ninguno"),
    pytest.param("no", Q2, effects(), id="q2-no"),
    pytest.param("1 & 4", Q2, effects(effect(1), effect(4)), id="q2-ampersand"),
    pytest.param("3m 5s", Q2, effects(effect(3, "mild"), effect(5, "severe")), id="q2-3m-5s"),
    pytest.param("#2", Q2, effects(effect(2)), id="q2-hash-2"),
    pytest.param("my eyelid is drooping a bit, 2m", Q2, effects(effect(2, "mild")), id="q2-eyelid-2m"),
    pytest.param("I think 2 s and also 1", Q2, effects(effect(2, "severe"), effect(1)), id="q2-2s-and-also-1"),
    pytest.param("1 leve y 4 fuerte", Q2, effects(effect(1, "mild"), effect(4, "severe")), id="q2-es-leve-fuerte"),
    pytest.param("3 grave", Q2, effects(effect(3, "severe")), id="q2-es-grave"),
    pytest.param("4 M", Q2, effects(effect(4, "mild")), id="q2-4-M"),
    pytest.param("1 2 3", Q2, effects(effect(1), effect(2), effect(3)), id="q2-three-numbers"),
    pytest.param("1m, 1s", Q2, effects(effect(1, "severe")), id="q2-repeated-keeps-severe"),
    pytest.param("2 severe for 3 days", Q2, effects(effect(2, "severe")), id="q2-duration-is-not-an-effect"),
    pytest.param("5 (severe)", Q2, effects(effect(5, "severe")), id="q2-brackets"),
    pytest.param("2️⃣", Q2, effects(effect(2)), id="q2-keycap-emoji"),
    pytest.param("6", Q2, unclear(), id="q2-6-out-of-range"),
    pytest.param("12", Q2, unclear(), id="q2-12-out-of-range"),
    pytest.param("0 and 2", Q2, unclear(), id="q2-none-and-some-is-unclear"),
    pytest.param("my neck hurts", Q2, effects(effect(1)), id="q2-in-words"),
    pytest.param("I have 2 but it's very mild", Q2, effects(effect(2, "mild")), id="q2-severity-later-in-sentence"),
    pytest.param("uno y dos", Q2, effects(effect(1), effect(2)), id="q2-es-uno-y-dos"),
    pytest.param("1m3s", Q2, effects(effect(1, "mild"), effect(3, "severe")), id="q2-no-spaces"),
    pytest.param("2 and I can't swallow", Q2, effects(effect(2), red_flags=("dysphagia",)), id="q2-with-red-flag"),
]

Q3_ANSWERS = [
    pytest.param("10", Q3A, days(10), id="q3-10"),
    pytest.param("0", Q3A, days(0), id="q3-0"),
    pytest.param("about 10", Q3A, days(10), id="q3-about-10"),
    pytest.param("10 days", Q3A, days(10), id="q3-10-days"),
    pytest.param("10ish", Q3A, days(10), id="q3-10ish"),
    pytest.param("ten", Q3A, days(10), id="q3-ten"),
    pytest.param("Maybe 4 or 5", Q3A, days(5), id="q3-4-or-5-takes-higher"),
    pytest.param("4-5", Q3A, days(5), id="q3-range"),
    pytest.param("none", Q3A, days(0), id="q3-none"),
    pytest.param("twenty-eight", Q3A, days(28), id="q3-twenty-eight"),
    pytest.param("twenty one", Q3A, days(21), id="q3-twenty-one"),
    pytest.param("veintiocho", Q3A, days(28), id="q3-es-veintiocho"),
    pytest.param("veinte y tres", Q3A, days(23), id="q3-es-veinte-y-tres"),
    pytest.param("quince días", Q3A, days(15), id="q3-es-quince-dias"),
    pytest.param("unos 8", Q3A, days(8), id="q3-es-unos-8"),
    pytest.param("ninguno", Q3A, days(0), id="q3-es-ninguno"),
    pytest.param("28", Q3A, days(28), id="q3-28-max"),
    pytest.param("29", Q3A, unclear(), id="q3-29-too-many"),
    pytest.param("30", Q3A, unclear(), id="q3-30-too-many"),
    pytest.param("every day", Q3A, days(28), id="q3-every-day"),
    pytest.param("in the last 4 weeks I had 6", Q3A, days(6), id="q3-period-is-not-an-answer"),
    pytest.param("not sure", Q3A, unclear(), id="q3-not-sure"),
    pytest.param("15 out of 28", Q3A, days(15), id="q3-out-of-28"),
    pytest.param("15/28", Q3A, days(15), id="q3-slash-28"),
    pytest.param("every single day", Q3A, days(28), id="q3-every-single-day"),
    pytest.param("2 weeks", Q3A, unclear(), id="q3-weeks-are-not-days"),
    pytest.param("treinta", Q3A, unclear(), id="q3-es-treinta-too-many"),
    pytest.param("no idea", Q3A, unclear(), id="q3-no-idea"),
    pytest.param("3", Q3B, days(3), id="q3b-3"),
    pytest.param("two days", Q3B, days(2), id="q3b-two-days"),
    pytest.param("didn't take any, none", Q3B, days(0), id="q3b-none-sentence"),
    pytest.param("cinco", Q3B, days(5), id="q3b-es-cinco"),
    pytest.param("lots", Q3B, unclear(), id="q3b-lots-unclear"),
    pytest.param("12 but I can't breathe", Q3B, days(12, "dyspnea"), id="q3b-with-red-flag"),
]

CASES = KEYWORDS + RED_FLAGS_ANYTIME + NEGATIONS + Q1_ANSWERS + Q2_ANSWERS + Q3_ANSWERS


@pytest.mark.parametrize(("text", "question", "expected"), CASES)
def test_reply_is_read_as_the_patient_meant_it(text: str, question: Question | None, expected: Reply) -> None:
    assert parse_reply(text, question).without_findings() == expected


def test_there_are_enough_real_looking_replies() -> None:
    assert len(CASES) >= 150


@pytest.mark.parametrize("question", [None, Q1, Q2, Q3A, Q3B])
def test_red_flag_escalates_whatever_question_is_open(question: Question | None) -> None:
    assert parse_reply("my speech is slurred since this morning", question).red_flags == ("dysarthria",)


@pytest.mark.parametrize("question", [Q1, Q2, Q3A])
def test_keyword_wins_over_any_open_question(question: Question) -> None:
    assert parse_reply("Stop", question).without_findings() == keyword("stop")


def test_without_an_open_question_an_answer_is_not_understood() -> None:
    assert parse_reply("2", None).without_findings() == Reply()


def test_helpers_agree_with_parse_reply() -> None:
    assert match_keyword(" opt out ") == "stop"
    assert match_keyword("no") is None
    assert detect_red_flags("no trouble swallowing") == ()
    assert detect_red_flags("can't swallow") == ("dysphagia",)


def test_reply_is_frozen() -> None:
    reply = parse_reply("yes", Q1)
    with pytest.raises(ValidationError):
        reply.yes_no = False  # type: ignore[misc]


def test_packaged_vocabulary_validates() -> None:
    vocabulary = load_vocabulary()
    assert set(vocabulary.red_flags) == {"dysphagia", "dyspnea", "dysarthria", "vision", "generalized_weakness"}
    assert {code: entry.reason for code, entry in vocabulary.effects.items()} == REASONS


def _vocabulary_data() -> dict:
    return yaml.safe_load(VOCABULARY_PATH.read_text(encoding="utf-8"))


def test_unknown_key_in_vocabulary_is_rejected() -> None:
    data = _vocabulary_data()
    data["negation"]["cuez"] = ["no"]
    with pytest.raises(ValidationError, match="cuez"):
        Vocabulary.model_validate(data)


def test_unknown_red_flag_code_in_vocabulary_is_rejected() -> None:
    data = _vocabulary_data()
    data["red_flags"]["dysphasia"] = data["red_flags"].pop("dysphagia")
    with pytest.raises(ValidationError, match="dysphasia"):
        Vocabulary.model_validate(data)


def test_unquoted_yes_in_vocabulary_fails_loudly(tmp_path: Path) -> None:
    broken = VOCABULARY_PATH.read_text(encoding="utf-8").replace('"yes": ["yes",', "yes: [yes,")
    path = tmp_path / "vocabulary.yaml"
    path.write_text(broken, encoding="utf-8")
    with pytest.raises(ValidationError):
        load_vocabulary(path)


def test_a_long_rambling_reply_is_read_whole() -> None:
    rambling = ("swallowing, breathing, speech, vision, " * 40)[:1600]  # an SMS is at most 1600 characters
    assert parse_reply(rambling, Q1).red_flags == ("dysphagia", "dyspnea", "dysarthria", "vision")
