"""Message rendering: every kind renders in every language, safely and within budget."""

from __future__ import annotations

from typing import Any

import pytest

from services.notifier import rendering
from services.notifier.rendering import (
    KINDS,
    LANGUAGES,
    Rendered,
    RenderError,
    TemplateMissing,
    check_all,
    find_forbidden_words,
    format_phone,
    render,
)
from services.notifier.sms_encoding import sms_info

CASES = [(kind, channel, lang) for kind, spec in KINDS.items() for channel in spec.channels for lang in LANGUAGES]
PATIENT_CASES = [case for case in CASES if KINDS[case[0]].audience == "patient"]
CLINICIAN_CASES = [case for case in CASES if KINDS[case[0]].audience == "clinician"]
FIRST_MESSAGE_KINDS = [kind for kind, spec in KINDS.items() if spec.opt_out_line == "first_message"]
OPT_OUT_LINE = {
    "en": "Reply STOP to opt out, HELP for help.",
    "es": "Responda STOP para no recibir más mensajes, HELP para ayuda.",
}


def sample(kind: str, language: str, **overrides: Any) -> dict[str, Any]:
    return {**KINDS[kind].sample(language), **overrides}


def bodies(rendered: Rendered) -> list[str]:
    return [part for part in (rendered.subject, rendered.text, rendered.html) if part is not None]


# --- every kind, channel and language ---------------------------------------------------


@pytest.mark.parametrize(("kind", "channel", "language"), CASES)
def test_every_kind_renders_its_sample_in_every_language(kind: str, channel: str, language: str) -> None:
    rendered = render(kind, channel, language, sample(kind, language))
    if channel == "sms":
        assert rendered.text and rendered.text == rendered.text.strip()
        assert rendered.subject is None and rendered.html is None
    else:
        assert rendered.subject and rendered.text.strip() and rendered.html


@pytest.mark.parametrize(("kind", "channel", "language"), CASES)
def test_no_message_names_the_drug_or_the_diagnosis(kind: str, channel: str, language: str) -> None:
    for first_message in (False, True):
        rendered = render(kind, channel, language, sample(kind, language, first_message=first_message))
        assert [find_forbidden_words(body) for body in bodies(rendered)] == [[]] * len(bodies(rendered))


@pytest.mark.parametrize(("kind", "channel", "language"), PATIENT_CASES)
def test_patient_messages_name_the_clinic_and_its_phone(kind: str, channel: str, language: str) -> None:
    if not KINDS[kind].names_clinic:
        pytest.skip("this kind deliberately names no clinic")
    context = sample(kind, language)
    rendered = render(kind, channel, language, context)
    for body in (rendered.text, rendered.html or rendered.text):
        assert context["clinic_name"] in body
        assert format_phone(context["clinic_phone"]) in body


@pytest.mark.parametrize("kind", FIRST_MESSAGE_KINDS)
@pytest.mark.parametrize("language", LANGUAGES)
def test_the_opt_out_line_is_appended_only_to_a_first_message(kind: str, language: str) -> None:
    first = render(kind, "sms", language, sample(kind, language, first_message=True)).text
    later = render(kind, "sms", language, sample(kind, language, first_message=False)).text
    assert first.endswith("\n" + OPT_OUT_LINE[language])
    assert "STOP" not in later
    assert first.removesuffix("\n" + OPT_OUT_LINE[language]) == later


def test_help_always_carries_the_opt_out_line_and_the_message_frequency() -> None:
    text = render("help", "sms", "en", sample("help", "en", first_message=False)).text
    assert text.endswith(OPT_OUT_LINE["en"])
    assert "a few messages after each visit" in text
    assert "Rocklin Headache Clinic" in text and "(916) 555-0100" in text


def test_opt_out_confirmation_is_one_message_that_offers_start_and_never_stop() -> None:
    text = render("opt_out_confirmation", "sms", "en", sample("opt_out_confirmation", "en", first_message=True)).text
    assert "START" in text and "STOP" not in text


def test_a_missing_first_message_flag_is_an_error_not_a_silent_default() -> None:
    context = sample("checkin_q1", "en")
    del context["first_message"]
    with pytest.raises(RenderError, match="first_message"):
        render("checkin_q1", "sms", "en", context)


def test_the_english_safety_reply_is_exactly_the_agreed_text() -> None:
    text = render("safety_reply", "sms", "en", {"emergency_number": "911"}).text
    assert text == "If you have trouble breathing or swallowing, call 911 now. Your clinic has been alerted."


def test_the_spanish_safety_reply_gives_the_european_emergency_number() -> None:
    assert "112" in render("safety_reply", "sms", "es", sample("safety_reply", "es")).text


def test_the_unknown_sender_reply_reveals_no_clinic_and_no_patient() -> None:
    text = render("unknown_sender", "sms", "en", {}).text
    assert text == (
        "This number sends appointment messages for a clinic. If you are a patient, please call your clinic."
    )
    assert all(spec.sample("en").get("clinic_name", "-") not in text for spec in KINDS.values())


def test_q1_asks_every_red_flag_and_for_yes_or_no() -> None:
    text = render("checkin_q1", "sms", "en", sample("checkin_q1", "en")).text
    for words in ("NEW", "swallowing", "breathing", "speaking", "double or blurred vision", "weakness all over"):
        assert words in text
    assert "Reply YES or NO." in text


def test_q2_numbers_the_common_effects_and_explains_mild_and_severe() -> None:
    text = render("checkin_q2", "sms", "en", sample("checkin_q2", "en")).text
    for line in ("1 Neck pain or stiffness", "2 Drooping eyelid", "3 Pain where the injections were given",
                 "4 Headache worse than usual", "5 Neck or face weakness", "0 None"):
        assert line in text
    assert "M for mild" in text and "S for severe" in text and "2S" in text


@pytest.mark.parametrize("kind", ["checkin_q3a", "checkin_q3b"])
def test_headache_questions_ask_for_a_number_from_0_to_28(kind: str) -> None:
    assert "0 to 28" in render(kind, "sms", "en", sample(kind, "en")).text


@pytest.mark.parametrize("question", rendering.REPROMPT_QUESTIONS)
@pytest.mark.parametrize("language", LANGUAGES)
def test_reprompt_apologises_and_re_asks_each_question(question: str, language: str) -> None:
    text = render("reprompt", "sms", language, sample("reprompt", language, question=question)).text
    assert ("Sorry" if language == "en" else "Perdone") in text


def test_reprompt_for_an_unknown_question_is_a_render_error() -> None:
    with pytest.raises(RenderError):
        render("reprompt", "sms", "en", sample("reprompt", "en", question="q9_unknown"))


def test_booking_reminder_says_how_long_it_has_been() -> None:
    rendered = render("booking_reminder", "email", "en", sample("booking_reminder", "en", days_since=81))
    assert "81 days" in rendered.text and "81 days" in (rendered.html or "")
    assert rendered.subject == "Rocklin Headache Clinic: time to book your next appointment"


# --- escaping -------------------------------------------------------------------------

SCRIPT = "<script>alert(1)</script>"


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", ["booking_reminder", "alert"])
def test_html_part_escapes_values_but_text_and_sms_keep_them_verbatim(kind: str, language: str) -> None:
    context = sample(kind, language, first_name=SCRIPT)
    email = render(kind, "email", language, context)
    assert SCRIPT not in (email.html or "") and "&lt;script&gt;" in (email.html or "")
    assert SCRIPT in email.text
    assert SCRIPT in render(kind, "sms", language, context).text


def test_digest_html_escapes_every_alert_field() -> None:
    context = sample("digest", "en")
    context["alerts"] = [{**context["alerts"][0], "summary": SCRIPT}]
    rendered = render("digest", "email", "en", context)
    assert SCRIPT not in (rendered.html or "") and SCRIPT in rendered.text


# --- clinician messages ------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "channel", "language"), CLINICIAN_CASES)
def test_clinician_messages_never_link_outside_the_clinic(kind: str, channel: str, language: str) -> None:
    rendered = render(kind, channel, language, sample(kind, language))
    assert all("http" not in body and "www." not in body for body in bodies(rendered))


@pytest.mark.parametrize("severity", rendering.SEVERITIES)
@pytest.mark.parametrize("language", LANGUAGES)
def test_an_alert_sms_fits_two_segments_for_every_severity_three_in_spanish(severity: str, language: str) -> None:
    """Spanish needs UCS-2 (67 characters a part), and the ACK line costs a part there."""
    text = render("alert", "sms", language, sample("alert", language, severity=severity)).text
    assert sms_info(text).segments <= (2 if language == "en" else 3)
    assert "MRN-0042917" in text or "NHC-118204" in text


def test_an_alert_email_shows_patient_summary_reasons_and_evidence() -> None:
    rendered = render("alert", "email", "en", sample("alert", "en"))
    for fact in ("URGENT", "Maria", "MRN-0042917", "trouble swallowing", "new trouble breathing", "2025-03-14 09:12 PDT",
                 "yes hard to swallow since yesterday"):
        assert fact in rendered.text
    assert "Maria" not in (rendered.subject or ""), "the subject line carries the reference only"


def test_an_alert_accepts_evidence_as_a_mapping_as_the_event_contract_has_it() -> None:
    context = sample("alert", "en", evidence={"reply": "YES", "checkin_id": "c-1"})
    assert "- checkin_id: c-1\n- reply: YES" in render("alert", "email", "en", context).text


def test_an_unknown_severity_is_a_render_error() -> None:
    with pytest.raises(RenderError):
        render("alert", "sms", "en", sample("alert", "en", severity="meh"))


def test_digest_groups_alerts_by_severity_and_keeps_unknown_ones() -> None:
    context = sample("digest", "en")
    context["alerts"] = [*context["alerts"], {**context["alerts"][0], "severity": "weird", "patient_ref": "X-1"}]
    text = render("digest", "email", "en", context).text
    assert text.index("High (1)") < text.index("Routine (1)") < text.index("Review (1)") < text.index("Other (1)")
    assert "X-1" in text


def test_an_empty_digest_says_so() -> None:
    rendered = render("digest", "email", "en", sample("digest", "en", alerts=[]))
    assert "No alerts." in rendered.text and rendered.subject == "Rocklin Headache Clinic: 0 alerts on 2025-03-14"


# --- languages and missing templates -----------------------------------------------------


def test_a_language_without_templates_falls_back_to_english() -> None:
    assert render("help", "sms", "fr", sample("help", "en")) == render("help", "sms", "en", sample("help", "en"))


def test_a_regional_language_tag_uses_its_base_language() -> None:
    assert render("help", "sms", "es-MX", sample("help", "es")) == render("help", "sms", "es", sample("help", "es"))


def test_an_unknown_kind_is_template_missing() -> None:
    with pytest.raises(TemplateMissing):
        render("no_such_kind", "sms", "en", {})


def test_a_channel_the_kind_does_not_have_is_template_missing() -> None:
    with pytest.raises(TemplateMissing):
        render("checkin_q1", "email", "en", sample("checkin_q1", "en"))


def test_a_path_in_the_language_cannot_escape_the_template_directory() -> None:
    assert render("help", "sms", "../en", sample("help", "en")).text.startswith("Rocklin")


# --- the template environment ---------------------------------------------------------


def test_a_missing_variable_is_a_render_error() -> None:
    context = sample("checkin_q1", "en")
    del context["clinic_name"]
    with pytest.raises(RenderError, match="clinic_name"):
        render("checkin_q1", "sms", "en", context)


@pytest.mark.parametrize(
    "source",
    ["{{ ''.__class__ }}", "{{ ''.__class__.__mro__[1].__subclasses__() }}", "{{ cycler.__init__.__globals__ }}",
     "{{ items.append(1) }}"],
)
def test_the_sandbox_blocks_unsafe_attribute_access_and_mutation(source: str) -> None:
    with pytest.raises(RenderError):
        rendering._render_string(source, {"items": []})


def test_a_template_syntax_error_is_a_render_error() -> None:
    with pytest.raises(RenderError):
        rendering._render_string("{% if %}", {})


def test_string_templates_are_not_autoescaped() -> None:
    assert rendering._render_string("{{ x }}", {"x": "<b>"}) == "<b>"


def test_phone_numbers_are_shown_as_people_in_that_country_write_them() -> None:
    assert format_phone("+19165550100") == "(916) 555-0100"
    assert format_phone("+34955000100") == "955 00 01 00"
    assert format_phone("not a number") == "not a number"


# --- check_all ----------------------------------------------------------------------------


def test_the_shipped_templates_pass_every_check() -> None:
    assert check_all() == []


def test_check_all_reports_an_sms_over_the_segment_limit() -> None:
    problems = check_all(max_segments=0)
    assert any(p.startswith("en/checkin_q1 (sms): SMS is 2 segments") for p in problems)


def test_check_all_reports_forbidden_words_and_render_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = KINDS["help"]
    bad = spec.model_copy(update={"samples": {"en": {**spec.sample("en"), "clinic_name": "Botox Migraine Centre"},
                                              "es": {"first_name": "Ana"}}})
    monkeypatch.setitem(KINDS, "help", bad)
    problems = check_all()
    assert "en/help (sms): names forbidden word 'botox'" in problems
    assert "en/help (sms): names forbidden word 'migraine'" in problems
    assert any(p.startswith("es/help (sms): ") and "clinic_name" in p for p in problems)


@pytest.mark.parametrize(
    ("text", "found"),
    [("Your BOTOX visit", ["botox"]), ("migraines", ["migraine"]), ("su migraña", ["migraña"]),
     ("MIGRANA", ["migraña"]), ("toxina botulínica", ["botulínica", "toxin"]), ("detox", []), ("headache", [])],
)
def test_forbidden_words_match_at_word_start_ignoring_case_and_accents(text: str, found: list[str]) -> None:
    assert sorted(find_forbidden_words(text)) == sorted(found)
