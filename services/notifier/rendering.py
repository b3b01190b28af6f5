"""Pure message rendering for the notifier: (kind, channel, language, context) -> Rendered.

Templates live beside this module as ``templates/<language>/<kind>.<part>.j2`` where the
part is ``sms`` for an SMS and ``subject``, ``txt`` and ``html`` for an email. They run in
an immutable jinja2 sandbox with ``StrictUndefined``: a missing variable is an error, never
an empty string in a patient's message. Values are HTML-escaped in ``.html.j2`` files only.

Nothing here sends anything or reads anything but the template files; ``check_all`` is
the pre-flight check that every shipped template renders, fits its SMS budget and never
names the drug or the diagnosis.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Mapping
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, Literal

import phonenumbers
import yaml
from jinja2 import FileSystemLoader, StrictUndefined, Template, TemplateError, TemplateNotFound, select_autoescape
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import BaseModel, ConfigDict

from services.notifier.sms_encoding import sms_info
from shared.reasons import reason_label

Channel = Literal["sms", "email"]
Part = Literal["sms", "subject", "txt", "html"]
Audience = Literal["patient", "clinician"]
OptOutLine = Literal["first_message", "always", "never"]

TEMPLATES_DIR = Path(__file__).with_name("templates")
FORBIDDEN_WORDS_FILE = TEMPLATES_DIR / "forbidden_words.yaml"
LANGUAGES: tuple[str, ...] = ("en", "es")
FALLBACK_LANGUAGE = "en"
PARTS: dict[Channel, tuple[Part, ...]] = {"sms": ("sms",), "email": ("subject", "txt", "html")}
OPT_OUT_PARTIAL = "_opt_out.sms.j2"
LINK_PATTERN = re.compile(r"https?://|www\.", re.IGNORECASE)


class Rendered(BaseModel):
    """One message ready for a sender: ``subject`` and ``html`` are set for email only."""

    model_config = ConfigDict(frozen=True)

    subject: str | None
    text: str
    html: str | None


class TemplateMissing(LookupError):
    """There is no template for this (kind, channel, language), even after the fallback."""


class RenderError(ValueError):
    """A template failed: undefined variable, syntax error or sandbox violation."""


class KindSpec(BaseModel):
    """What a message kind is: who gets it, on which channels, and a realistic sample context.

    ``samples`` is keyed by language; ``check_all`` renders every language with its own
    sample (or the English one). ``opt_out_line`` says when an SMS ends with the carrier
    line "Reply STOP to opt out, HELP for help." (``first_message``: when the context's
    ``first_message`` is true). ``names_clinic``: the text must show the clinic's name and
    phone. ``max_sms_segments`` caps ``check_all``'s limit for this kind;
    ``extra_sms_segments`` (by language) raises it where the content cannot fit, as a
    three-option Spanish question in UCS-2 (67 characters a part) cannot. ``vary`` lists
    the other values of sample keys that change the text (every ``question`` of a re-prompt),
    each of which ``check_all`` renders too.
    """

    model_config = ConfigDict(frozen=True)

    audience: Audience
    channels: tuple[Channel, ...]
    samples: Mapping[str, Mapping[str, Any]]
    opt_out_line: OptOutLine = "never"
    names_clinic: bool = True
    max_sms_segments: int | None = None
    extra_sms_segments: Mapping[str, int] = {}
    vary: Mapping[str, tuple[Any, ...]] = {}

    def sample(self, language: str) -> dict[str, Any]:
        return dict(self.samples.get(language, self.samples[FALLBACK_LANGUAGE]))


# --- rendering -------------------------------------------------------------------------


def render(kind: str, channel: Channel, language: str, context: Mapping[str, Any]) -> Rendered:
    """Render one message.

    ``language`` falls back to its base language (``es-MX`` -> ``es``) and then to English
    when the kind has no template in it; a kind that is unknown, or has no template for this
    channel even in English, raises ``TemplateMissing``. Errors inside a template raise
    ``RenderError``.
    """
    spec = _spec(kind, channel)
    resolved = _resolve_language(kind, channel, language)
    if channel == "sms":
        return Rendered(subject=None, text=_render_sms(kind, spec, resolved, context), html=None)
    return _render_email(kind, resolved, context)


def _spec(kind: str, channel: Channel) -> KindSpec:
    spec = KINDS.get(kind)
    if spec is None or channel not in spec.channels:
        raise TemplateMissing(f"no {channel} template for message kind {kind!r}")
    return spec


def _resolve_language(kind: str, channel: Channel, language: str) -> str:
    for candidate in _language_candidates(language):
        if _has_templates(kind, channel, candidate):
            return candidate
    raise TemplateMissing(f"no {channel} template for {kind!r} in {language!r} or {FALLBACK_LANGUAGE!r}")


def _language_candidates(language: str) -> Iterator[str]:
    base = re.split(r"[-_]", language, maxsplit=1)[0].lower()
    yield from (c for c in (language, base, FALLBACK_LANGUAGE) if c in _available_languages())


@cache
def _available_languages() -> frozenset[str]:
    return frozenset(p.name for p in TEMPLATES_DIR.iterdir() if p.is_dir() and not p.name.startswith("_"))


@cache  # the templates ship with the code and are never reloaded (``auto_reload=False``)
def _has_templates(kind: str, channel: Channel, language: str) -> bool:
    return all((TEMPLATES_DIR / _template_name(kind, part, language)).is_file() for part in PARTS[channel])


def _template_name(kind: str, part: Part, language: str) -> str:
    return f"{language}/{kind}.{part}.j2"


def _render_sms(kind: str, spec: KindSpec, language: str, context: Mapping[str, Any]) -> str:
    body = _render_file(_template_name(kind, "sms", language), context)
    if _wants_opt_out_line(spec, context):
        body = f"{body.strip()}\n{_render_file(f'{language}/{OPT_OUT_PARTIAL}', context)}"
    return _tidy_sms(body)


def _wants_opt_out_line(spec: KindSpec, context: Mapping[str, Any]) -> bool:
    if spec.opt_out_line != "first_message":
        return spec.opt_out_line == "always"
    if "first_message" not in context:
        raise RenderError("'first_message' is undefined")
    return bool(context["first_message"])


def _tidy_sms(text: str) -> str:
    """Trim the message and every line: stray spaces cost septets and look broken."""
    return "\n".join(line.strip() for line in text.strip().splitlines())


def _render_email(kind: str, language: str, context: Mapping[str, Any]) -> Rendered:
    subject = _render_file(_template_name(kind, "subject", language), context)
    text = _render_file(_template_name(kind, "txt", language), context)
    html = _render_file(_template_name(kind, "html", language), context)
    return Rendered(subject=" ".join(subject.split()), text=text.strip() + "\n", html=html.strip() + "\n")


def _render_file(name: str, context: Mapping[str, Any]) -> str:
    try:
        template = _environment().get_template(name)
    except TemplateNotFound as exc:
        raise TemplateMissing(f"template {exc.name!r} not found") from exc
    except TemplateError as exc:
        raise RenderError(f"{name}: {exc}") from exc
    return _render_template(template, context)


def _render_string(source: str, context: Mapping[str, Any]) -> str:
    """Render a template string through the same sandbox (for tests and ad-hoc checks)."""
    try:
        template = _environment().from_string(source)
    except TemplateError as exc:
        raise RenderError(str(exc)) from exc
    return _render_template(template, context)


def _render_template(template: Template, context: Mapping[str, Any]) -> str:
    try:
        return template.render(dict(context))
    except TemplateNotFound as exc:
        raise TemplateMissing(f"template {exc.name!r} not found") from exc
    except (TemplateError, TypeError) as exc:
        raise RenderError(f"{template.name or '<string>'}: {exc}") from exc


@cache
def _environment() -> ImmutableSandboxedEnvironment:
    """The one template environment: sandboxed, strict, autoescaping ``.html.j2`` only."""
    env = ImmutableSandboxedEnvironment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False, default=False),
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters["phone"] = format_phone
    env.filters["reason_label"] = reason_label  # reasons|map("reason_label", "es"): codes as clinicians say them
    env.filters["duration"] = duration
    return env


def duration(minutes: int) -> str:
    """A span of whole minutes as staff say it in either language: 17 min, 2 h 5 min, 3 d 4 h."""
    minutes = max(0, int(minutes))
    days, hours, mins = minutes // 1440, minutes % 1440 // 60, minutes % 60
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {mins} min" if mins else f"{hours} h"
    return f"{mins} min"


@lru_cache(maxsize=4096)  # a clinic's few numbers, in every message: parsing is most of a render
def format_phone(number: str) -> str:
    """An E.164 number as people in its country write it; anything else unchanged."""
    try:
        parsed = phonenumbers.parse(str(number), None)
    except phonenumbers.NumberParseException:
        return str(number)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)


# --- the forbidden words ---------------------------------------------------------------


@cache
def forbidden_words() -> tuple[str, ...]:
    """Words no rendered message may contain: the drug and the diagnosis, in every language."""
    data = yaml.safe_load(FORBIDDEN_WORDS_FILE.read_text(encoding="utf-8"))
    return tuple(str(word) for word in data["forbidden_words"])


def find_forbidden_words(text: str) -> list[str]:
    """The forbidden words that start a word in ``text``, ignoring case and accents."""
    folded = _fold(text)
    return [word for word in forbidden_words() if re.search(rf"\b{re.escape(_fold(word))}", folded)]


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


# --- check_all -------------------------------------------------------------------------


def check_all(max_segments: int = 3) -> list[str]:
    """Render every kind x channel x language with its sample context and list the problems.

    Problems: a missing translation, a render error, an SMS over its segment limit, an
    English SMS that needs UCS-2, a forbidden word, a link, a patient message that does not
    show its clinic's name and phone, an opt-out line where it does not belong, and template
    files no kind uses. The limit is ``max_segments``, adjusted by the kind's own
    ``max_sms_segments`` / ``extra_sms_segments``; a first message's carrier opt-out line is
    not counted. Besides each sample, every value in the kind's ``vary`` (and
    ``first_message`` true and false) is rendered. An empty list means fit to ship.
    """
    problems = [problem for kind, spec in KINDS.items() for problem in _check_kind(kind, spec, max_segments)]
    return problems + _orphan_templates()


def _check_kind(kind: str, spec: KindSpec, max_segments: int) -> Iterator[str]:
    for channel in spec.channels:
        for language in LANGUAGES:
            yield from _check_one(kind, spec, channel, language, max_segments)


def _check_one(kind: str, spec: KindSpec, channel: Channel, language: str, max_segments: int) -> Iterator[str]:
    where = f"{language}/{kind} ({channel})"
    if not _has_templates(kind, channel, language):
        yield f"{where}: missing template"
        return
    for context in _sample_variants(spec, language):
        try:
            rendered = render(kind, channel, language, context)
        except (RenderError, TemplateMissing) as exc:
            yield f"{where}: {exc}"
            continue
        limit = _segment_limit(spec, language, context, max_segments)
        yield from (f"{where}: {problem}" for problem in _problems(rendered, spec, language, context, limit))


def _sample_variants(spec: KindSpec, language: str) -> Iterator[dict[str, Any]]:
    """The sample as given, then once with each other value of every varied key."""
    sample = spec.sample(language)
    yield sample
    for key, values in _varied_keys(spec).items():
        yield from ({**sample, key: value} for value in values if value != sample.get(key))


def _varied_keys(spec: KindSpec) -> dict[str, tuple[Any, ...]]:
    if spec.opt_out_line == "first_message":
        return {"first_message": (False, True), **spec.vary}
    return dict(spec.vary)


def _segment_limit(spec: KindSpec, language: str, context: Mapping[str, Any], max_segments: int) -> int | None:
    """The kind's SMS budget; None for a first message, whose carrier line is exempt.

    The opt-out line is required, cannot be shortened and goes to each patient once, so
    it is not held against the budget (in Spanish it alone is most of a UCS-2 part).
    """
    if spec.opt_out_line == "first_message" and context.get("first_message"):
        return None
    limit = max_segments + spec.extra_sms_segments.get(language, 0)
    return limit if spec.max_sms_segments is None else min(limit, spec.max_sms_segments)


def _problems(
    rendered: Rendered, spec: KindSpec, language: str, context: Mapping[str, Any], limit: int | None
) -> Iterator[str]:
    outputs = [part for part in (rendered.subject, rendered.text, rendered.html) if part is not None]
    for output in outputs:
        yield from (f"names forbidden word {word!r}" for word in find_forbidden_words(output))
        if LINK_PATTERN.search(output):
            yield "contains a link"
    if rendered.html is None:
        yield from _sms_problems(rendered.text, spec, language, context, limit)
    if spec.names_clinic:
        yield from _clinic_problems(rendered, context)


def _sms_problems(
    text: str, spec: KindSpec, language: str, context: Mapping[str, Any], limit: int | None
) -> Iterator[str]:
    info = sms_info(text)
    if limit is not None and info.segments > limit:
        yield f"SMS is {info.segments} segments ({info.length} {info.encoding} units), limit {limit}"
    if language == "en" and info.encoding != "GSM-7":
        yield "English SMS needs UCS-2 (a typographic quote or dash?), which cuts a part to 70 characters"
    has_line = "STOP" in text and "HELP" in text
    if has_line != _expects_opt_out_line(spec, context):
        yield f"opt-out line {'present' if has_line else 'missing'} (first_message={context.get('first_message')})"


def _expects_opt_out_line(spec: KindSpec, context: Mapping[str, Any]) -> bool:
    if spec.opt_out_line == "first_message":
        return bool(context.get("first_message"))
    return spec.opt_out_line == "always"


def _clinic_problems(rendered: Rendered, context: Mapping[str, Any]) -> Iterator[str]:
    """The body (text, and html when there is one) must say who is writing and how to call."""
    bodies = [body for body in (rendered.text, rendered.html) if body is not None]
    for fact in (str(context["clinic_name"]), format_phone(context["clinic_phone"])):
        if not all(fact in body for body in bodies):
            yield f"does not show {fact!r}"


def _orphan_templates() -> list[str]:
    paths = _template_files()
    return [f"{path.relative_to(TEMPLATES_DIR)}: no kind uses this template" for path in paths if not _is_used(path)]


def _template_files() -> list[Path]:
    return [p for p in sorted(TEMPLATES_DIR.glob("*/*.j2")) if not p.name.startswith("_")]


def _is_used(path: Path) -> bool:
    kind, _, part = path.name.removesuffix(".j2").partition(".")
    spec = KINDS.get(kind)
    return spec is not None and any(part in PARTS[channel] for channel in spec.channels)


# --- the kinds and their sample contexts ---------------------------------------------------

_PATIENT_EN: dict[str, Any] = {
    "first_name": "Maria",
    "clinic_name": "Rocklin Headache Clinic",
    "clinic_phone": "+19165550100",
    "first_message": False,
}
_PATIENT_ES: dict[str, Any] = {
    "first_name": "Lucía",
    "clinic_name": "Clínica de Cefaleas Sevilla",
    "clinic_phone": "+34955000100",
    "first_message": False,
}


def _patient(
    *,
    channels: tuple[Channel, ...] = ("sms",),
    opt_out_line: OptOutLine = "first_message",
    vary: Mapping[str, tuple[Any, ...]] | None = None,
    extra_sms_segments: Mapping[str, int] | None = None,
    **extra: Any,
) -> KindSpec:
    samples = {"en": {**_PATIENT_EN, **extra}, "es": {**_PATIENT_ES, **extra}}
    return KindSpec(
        audience="patient", channels=channels, samples=samples, opt_out_line=opt_out_line,
        vary=vary or {}, extra_sms_segments=extra_sms_segments or {},
    )


REPROMPT_QUESTIONS = ("q1_red_flags", "q2_common_effects", "q3a_headache_days", "q3b_medication_days")
SEVERITIES = ("urgent", "high", "routine", "review")


_ALERT_EN: dict[str, Any] = {
    "clinic_name": "Rocklin Headache Clinic",
    "severity": "urgent",
    "patient_ref": "MRN-0042917",
    "first_name": "Maria",
    "summary": "Reported new trouble swallowing at the day-7 check-in",
    "reasons": ["dysphagia", "dyspnea"],
    "raised_at": "2025-03-14 09:12 PDT",
    "evidence": ["Reply to Q1: \"yes hard to swallow since yesterday\"", "check-in 7f3a2c"],
    "ack_code": "48",
}
_ALERT_ES: dict[str, Any] = {
    **_ALERT_EN,
    "clinic_name": "Clínica de Cefaleas Sevilla",
    "patient_ref": "NHC-118204",
    "first_name": "Lucía",
    "summary": "Dificultad nueva para tragar (control del día 7)",
    "raised_at": "14/03/2025 09:12 CET",
    "evidence": ["Respuesta a P1: \"sí, me cuesta tragar desde ayer\"", "control 7f3a2c"],
}
_DIGEST_EN: dict[str, Any] = {
    "clinic_name": "Rocklin Headache Clinic",
    "recipient": "Dr. Lee",
    "date": "2025-03-14",
    "alerts": [
        {"severity": "urgent", "patient_ref": "MRN-0047731", "first_name": "Rosa",
         "summary": "Patient reports a red-flag symptom after treatment: Trouble swallowing.",
         "raised_at": "2025-03-14 02:10 PDT", "status": "resolved", "acknowledged_by": "Dr. Lee", "acknowledged_via": "sms",
         "ack_minutes": 23, "resolved_by": "Dr. Lee", "outcome": "advised_emergency_care"},
        {"severity": "urgent", "patient_ref": "MRN-0050012", "first_name": "Tom",
         "summary": "Patient reports a red-flag symptom after treatment: Blurred or double vision.",
         "raised_at": "2025-03-14 07:40 PDT", "status": "open", "acknowledged_by": None, "acknowledged_via": None,
         "ack_minutes": None, "resolved_by": None, "outcome": None},
        {"severity": "high", "patient_ref": "MRN-0042917", "first_name": "Maria",
         "summary": "Severe drooping eyelid at the day-14 check-in", "raised_at": "2025-03-14 10:02 PDT",
         "status": "acknowledged", "acknowledged_by": "Dr. Patel", "acknowledged_via": "web", "ack_minutes": 95,
         "resolved_by": None, "outcome": None},
        {"severity": "routine", "patient_ref": "MRN-0051120", "first_name": "James",
         "summary": "Reply could not be read twice", "raised_at": "2025-03-14 13:40 PDT"},
        {"severity": "review", "patient_ref": "MRN-0039001", "first_name": "Ana",
         "summary": "Headache days down 12% from baseline after 2 cycles", "raised_at": "2025-03-14 08:00 PDT"},
    ],
}
_DIGEST_ES: dict[str, Any] = {
    "clinic_name": "Clínica de Cefaleas Sevilla",
    "recipient": "Dra. Ruiz",
    "date": "14/03/2025",
    "alerts": [
        {"severity": "high", "patient_ref": "NHC-118204", "first_name": "Lucía",
         "summary": "Párpado caído grave en el control del día 14", "raised_at": "14/03/2025 10:02 CET",
         "status": "resolved", "acknowledged_by": None, "acknowledged_via": None, "ack_minutes": None,
         "resolved_by": "Dra. Ruiz", "outcome": "appointment_booked"},
        {"severity": "routine", "patient_ref": "NHC-120377", "first_name": "Javier",
         "summary": "No se pudo leer la respuesta dos veces", "raised_at": "14/03/2025 13:40 CET"},
    ],
}

_PAGE_EN: dict[str, Any] = {
    "clinic_name": "Rocklin Headache Clinic",
    "severity": "urgent",
    "patient_ref": "MRN-0042917",
    "first_name": "Maria",
    "summary": "Patient reports a red-flag symptom after treatment: Trouble swallowing, Shortness of breath.",
    "age_minutes": 47,
    "level": 3,
    "repeat": 1,
    "paged": ["Dr. Lee", "Dr. Patel", "Dr. Okafor"],
    "ack_code": "48",
}
_PAGE_ES: dict[str, Any] = {
    **_PAGE_EN,
    "clinic_name": "Clínica de Cefaleas Sevilla",
    "patient_ref": "NHC-118204",
    "first_name": "Lucía",
    "summary": "Dificultad nueva para tragar (control del día 7)",
    "paged": ["Dra. Ruiz", "Dr. Gómez"],
}
ACK_OUTCOMES = ("taken", "taken_first", "already_taken", "already_resolved", "which", "none_open", "how_to")
_ACK_REPLY: dict[str, Any] = {
    "outcome": "taken",
    "code": "48",
    "by": "Dr. Patel",
    "since_minutes": 4,
    "choices": [{"initial": "M.", "age_minutes": 17, "code": "481"}, {"initial": "J.", "age_minutes": 125, "code": "487"},
                {"initial": "A.", "age_minutes": 3, "code": "12"}],
}

KINDS: dict[str, KindSpec] = {
    "checkin_q1": _patient(),
    "checkin_q2": _patient(extra_sms_segments={"es": 1}),
    "checkin_q3a": _patient(),
    "checkin_q3b": _patient(),
    "reprompt": _patient(question="q2_common_effects", vary={"question": REPROMPT_QUESTIONS}),
    "checkin_thanks": _patient(),
    "safety_reply": KindSpec(
        audience="patient", channels=("sms",), names_clinic=False,
        samples={"en": {"emergency_number": "911"}, "es": {"emergency_number": "112"}},
    ),
    "booking_reminder": _patient(channels=("sms", "email"), days_since=70),
    "opt_out_confirmation": _patient(opt_out_line="never"),
    "opt_in_confirmation": _patient(opt_out_line="always"),
    "help": _patient(opt_out_line="always"),
    "unknown_sender": KindSpec(audience="patient", channels=("sms",), names_clinic=False, samples={"en": {}}),
    "alert": KindSpec(
        # three parts: the Spanish alert and its ACK line need UCS-2 (67 characters a part)
        audience="clinician", channels=("sms", "email"), names_clinic=False,
        samples={"en": _ALERT_EN, "es": _ALERT_ES}, vary={"severity": SEVERITIES},
    ),
    "page": KindSpec(
        audience="clinician", channels=("sms", "email"), names_clinic=False, extra_sms_segments={"es": 1},
        samples={"en": _PAGE_EN, "es": _PAGE_ES}, vary={"severity": ("urgent", "high"), "repeat": (0,), "paged": ([],)},
    ),
    "ack_reply": KindSpec(
        audience="clinician", channels=("sms",), names_clinic=False, max_sms_segments=3,
        samples={"en": _ACK_REPLY}, vary={"outcome": ACK_OUTCOMES, "code": (None,)},
    ),
    "digest": KindSpec(audience="clinician", channels=("email",), names_clinic=False, samples={"en": _DIGEST_EN, "es": _DIGEST_ES}),
}
