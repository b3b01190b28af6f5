"""The survey's rules: conversations, escalation and outcomes, as pure functions.

A :class:`PatientFile` is everything the survey keeps about one patient (a table value).
Each ``on_*`` function takes the file and an event and returns an :class:`Outcome`:
the new file and the events to publish. Every event an outcome carries has an id derived
from its cause (the reply's MessageSid, the check-in id), so a redelivered cause gives
the same events and downstream ledgers drop the copies.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from shared.reasons import reason_label
from shared.events import (
    CheckinCompleted,
    CheckinDue,
    CheckinExpired,
    ClinicianAlert,
    ConsentChanged,
    Event,
    PatientSnapshot,
    Severity,
    deterministic_id,
)
from shared.notifier_events import OutboundRequested
from shared.clinics import ClinicRules
from shared.limits import SMS_PARSE_CHARS
from services.survey.parsing import Finding, Question, Reply, detect_red_flags, explain

FIRST_QUESTION: dict[str, Question] = {"side_effects": "q1_red_flags", "headache_frequency": "q3a_headache_days"}
TEMPLATE_OF: dict[Question, str] = {
    "q1_red_flags": "checkin_q1",
    "q2_common_effects": "checkin_q2",
    "q3a_headache_days": "checkin_q3a",
    "q3b_medication_days": "checkin_q3b",
}
RED_FLAG_SUMMARY = "Patient reports a red-flag symptom after treatment"
# NICE TA260: stop if headache days fall by less than 30% after two treatment cycles, or
# once the migraine is episodic (fewer than 15 headache days a month) for three months.
NON_RESPONSE_AFTER_CYCLES = 2
RESPONSE_THRESHOLD = 0.30
CHRONIC_DAYS = 15
EPISODIC_MONTHS = 3
# Two headache reports further apart than this leave a month unreported: not consecutive.
MAX_GAP_BETWEEN_MONTHS = timedelta(days=42)
DEFAULT_RULES = ClinicRules()
# How many handled MessageSids and closed check-ins a file remembers (redelivery guards).
REMEMBERED = 50


class Conversation(BaseModel):
    checkin_id: str
    kind: str
    treatment_id: str | None = None
    cycle: int | None = None
    day: int | None = None
    due_at: datetime | None = None
    question: Question
    attempts: int = 0
    answers: dict[str, Any] = Field(default_factory=dict)
    raw: list[str] = Field(default_factory=list)


class HeadacheReading(BaseModel):
    """One answered headache-frequency check-in: days out of the 4 weeks before ``at``."""

    cycle: int
    day: int
    days: int
    at: datetime
    checkin_id: str


class PatientFile(BaseModel):
    patient_id: str
    clinic_id: str = ""
    first_name: str = ""
    language: str = "en"
    phone: str | None = None
    baseline_headache_days: int | None = None
    opted_out: bool = False
    discharged: bool = False
    open: Conversation | None = None
    readings: dict[str, HeadacheReading] = Field(default_factory=dict)  # "cycle:day" -> reading
    non_response_cycles: list[int] = Field(default_factory=list)  # cycles already flagged
    episodic_reported_from: str | None = None  # the first month of the run already reported
    handled_sids: list[str] = Field(default_factory=list)
    closed_checkins: list[str] = Field(default_factory=list)


class Outcome(BaseModel):
    """The new file and the events to publish (each to its type's topic: ``shared.topics``)."""

    file: PatientFile
    emit: list[Event] = Field(default_factory=list)

    def add(self, event: Event) -> "Outcome":
        self.emit.append(event)
        return self


def reading_key(cycle: int, day: int) -> str:
    return f"{cycle}:{day}"


def on_patient(file: PatientFile, event: PatientSnapshot) -> Outcome:
    return Outcome(file=file.model_copy(update={
        "clinic_id": event.clinic_id, "first_name": event.first_name, "language": event.language,
        "phone": event.phone, "baseline_headache_days": event.baseline_headache_days,
    }))


# --- the phone index (keyed by phone) ---------------------------------------------------

PATIENT_OF_PHONE = ("patient_id", "clinic_id", "language")


def phones_to_reindex(previous_phone: str | None, snapshot: PatientSnapshot) -> list[str]:
    """The phone index entries a snapshot touches: its phone, and the one it replaces."""
    return [snapshot.phone] + ([previous_phone] if previous_phone and previous_phone != snapshot.phone else [])


def index_phone(entry: dict[str, Any], phone: str, snapshot: PatientSnapshot) -> dict[str, Any]:
    """The index entry of ``phone`` after ``snapshot``: the patient's number now points to
    them; a number they left no longer does (its MessageSid memory stays)."""
    if phone == snapshot.phone:
        return entry | {"patient_id": snapshot.patient_id, "clinic_id": snapshot.clinic_id, "language": snapshot.language}
    if entry.get("patient_id") == snapshot.patient_id:
        return {k: v for k, v in entry.items() if k not in PATIENT_OF_PHONE}
    return entry


def on_discharged(file: PatientFile) -> Outcome:
    return Outcome(file=file.model_copy(update={"discharged": True, "open": None}))


def on_consent(file: PatientFile, event: ConsentChanged) -> Outcome:
    """Consent changed elsewhere (the EHR, the SMS provider's opt-out): the survey follows it."""
    if not event.covers("sms"):
        return Outcome(file=file)
    update: dict[str, Any] = {"opted_out": not event.granted}
    if not event.granted:
        update["open"] = None
    return Outcome(file=file.model_copy(update=update))


def on_checkin_due(file: PatientFile, event: CheckinDue) -> Outcome:
    """Open the check-in and ask its first question. It supersedes an unanswered older
    one, which the clinic then sees as unanswered. A check-in already closed changes
    nothing; one already open is asked again only while nothing was answered (the same
    message key: the notifier's ledger sends it once). A patient who opted out or was
    discharged gets no conversation, but the question is still handed to the notifier,
    which owns delivery and reports it as suppressed."""
    file = file.model_copy(update={"clinic_id": event.clinic_id})
    first = FIRST_QUESTION[event.kind]
    ask = _ask(file, TEMPLATE_OF[first], question_cause(file, event.checkin_id, first))
    if event.checkin_id in file.closed_checkins:
        return Outcome(file=file)
    if file.open and file.open.checkin_id == event.checkin_id:
        unanswered = file.open.question == first and not file.open.raw
        return Outcome(file=file, emit=[ask] if unanswered else [])
    if file.opted_out or file.discharged:
        return Outcome(file=file).add(ask)
    conversation = Conversation(
        checkin_id=event.checkin_id, kind=event.kind, treatment_id=event.treatment_id,
        cycle=event.cycle, day=event.day, due_at=event.due_at, question=first,
    )
    outcome = Outcome(file=file)
    if file.open:
        outcome = _unanswered(file, file.open, event.due_at, superseded_by=event.checkin_id)
    return Outcome(file=outcome.file.model_copy(update={"open": conversation}), emit=[*outcome.emit, ask])


def on_checkin_expired(file: PatientFile, event: CheckinExpired, now: datetime) -> Outcome:
    if not file.open or file.open.checkin_id != event.checkin_id:
        return Outcome(file=file)
    return _unanswered(file, file.open, now)


def red_flags_at_any_time(file: PatientFile, text: str, sid: str, now: datetime) -> list[Event]:
    """A red flag named in any message, at any time, whatever question is open: the
    safety reply and the urgent alert at once. It needs no conversation state, so the
    inbound path calls it as soon as it knows the sender (one hop sooner); the
    conversation then only records the answer (a yes to Q1 without red-flag words is
    the conversation's to escalate)."""
    red_flags = detect_red_flags(text[:SMS_PARSE_CHARS])
    return red_flag_escalation(file, text, sid, red_flags, now) if red_flags else []


def red_flag_escalation(file: PatientFile, text: str, sid: str, red_flags: tuple[str, ...], now: datetime,
                        checkin_id: str | None = None, findings: tuple[Finding, ...] | None = None) -> list[Event]:
    """The safety reply and the urgent alert for a red flag, safety reply first; the ids
    depend only on the patient and the MessageSid. The alert's evidence says why: the
    words read and the rule that read them."""
    reasons = list(red_flags) or ["red_flag_reported"]
    evidence: dict[str, Any] = {"reply": text, "message_sid": sid}
    if checkin_id:
        evidence["checkin_id"] = checkin_id
    if why := described(explain(text) if findings is None else findings):
        evidence["findings"] = why
    return [
        _ask(file, "safety_reply", sid, urgent=True),
        _alert(file, "urgent", reasons, RED_FLAG_SUMMARY + f": {', '.join(map(reason_label, reasons))}.", now, evidence, cause=sid),
    ]


def described(findings: tuple[Finding, ...]) -> list[str]:
    """ "'se me traba al tragar' -> dysphagia (reported: lexicon 'traba* ... tragar')"."""
    return list(dict.fromkeys(finding.describe() for finding in findings))


def on_reply(file: PatientFile, text: str, message_sid: str, reply: Reply, now: datetime, *,
             rules: ClinicRules = DEFAULT_RULES) -> Outcome:
    """A patient's message, read against the question open when it arrived (the red-flag
    words in it were escalated by :func:`red_flags_at_any_time`)."""
    if message_sid in file.handled_sids:
        return Outcome(file=file)  # redelivered: its events went out the first time
    outcome = _react(file, text, message_sid, reply, now, rules)
    sids = [*outcome.file.handled_sids, message_sid][-REMEMBERED:]
    return Outcome(file=outcome.file.model_copy(update={"handled_sids": sids}), emit=outcome.emit)


def _react(file: PatientFile, text: str, sid: str, reply: Reply, now: datetime, rules: ClinicRules) -> Outcome:
    if reply.keyword:
        return KEYWORD_HANDLERS[reply.keyword](file, sid, now)
    if reply.red_flags or (file.open and file.open.question == "q1_red_flags" and reply.yes_no):
        return _urgent(file, text, sid, reply, now, rules)
    if file.open is None:
        return Outcome(file=file).add(_alert(
            file, "routine", ["patient_message"], "Patient sent a message outside a check-in.",
            now, {"reply": text}, cause=sid,
        ))
    if not reply.understood:
        return _unreadable(file, text, sid, now)
    return _answer(file, text, sid, reply, now, rules)


# --- keywords -----------------------------------------------------------------------


def _help(file: PatientFile, sid: str, now: datetime) -> Outcome:
    return Outcome(file=file).add(_ask(file, "help", sid))


def _opt_out(file: PatientFile, sid: str, now: datetime) -> Outcome:
    """Honoured at once: the open check-in closes, consent is revoked, one confirmation.
    A second STOP from a patient already opted out sends nothing at all."""
    if file.opted_out:
        return Outcome(file=file)
    closed = _closing(file, file.open.checkin_id) if file.open else file
    outcome = Outcome(file=closed.model_copy(update={"opted_out": True, "open": None}))
    outcome.add(_consent(file, sid, granted=False, now=now))
    return outcome.add(_ask(file, "opt_out_confirmation", sid))


def _opt_in(file: PatientFile, sid: str, now: datetime) -> Outcome:
    outcome = Outcome(file=file.model_copy(update={"opted_out": False}))
    if file.opted_out:
        outcome.add(_consent(file, sid, granted=True, now=now))
    return outcome.add(_ask(file, "opt_in_confirmation", sid))


def _consent(file: PatientFile, sid: str, *, granted: bool, now: datetime) -> ConsentChanged:
    return ConsentChanged(
        event_id=deterministic_id("consent", sid), patient_id=file.patient_id, clinic_id=file.clinic_id,
        channel="sms", granted=granted, source="sms_keyword", occurred_at=now,
    )


KEYWORD_HANDLERS = {"help": _help, "stop": _opt_out, "start": _opt_in}


# --- the branches of a reply ------------------------------------------------------


def _urgent(file: PatientFile, text: str, sid: str, reply: Reply, now: datetime, rules: ClinicRules) -> Outcome:
    """A red flag or a yes to Q1 closes Q1 as answered; a reply that also answers another
    open question is taken as that answer. What :func:`red_flags_at_any_time` escalated
    already (red-flag words) is not escalated again; anything else (a yes to Q1) is."""
    reasons = list(reply.red_flags) or ["red_flag_reported"]
    outcome = Outcome(file=file)
    if file.open and file.open.question == "q1_red_flags":
        answers: dict[str, Any] = {"red_flags": True, "red_flag_reasons": reasons}
        if reply.effects:  # "yes, I can't swallow and my neck is stiff"
            answers["effects"] = [e.model_dump() for e in reply.effects]
        outcome = _complete(file, file.open, answers, text, now)
    elif file.open and reply.understood:
        outcome = _answer(file, text, sid, reply, now, rules)
    if not detect_red_flags(text[:SMS_PARSE_CHARS]):
        checkin_id = file.open.checkin_id if file.open else None
        outcome.emit[:0] = red_flag_escalation(file, text, sid, reply.red_flags, now, checkin_id, reply.findings)
    return outcome


def _unreadable(file: PatientFile, text: str, sid: str, now: datetime) -> Outcome:
    conversation = file.open
    assert conversation is not None
    updated = conversation.model_copy(update={"attempts": conversation.attempts + 1, "raw": [*conversation.raw, text]})
    outcome = Outcome(file=file.model_copy(update={"open": updated}))
    if conversation.attempts == 0:
        return outcome.add(_ask(file, "reprompt", sid, context={"question": conversation.question}))
    return outcome.add(_alert(
        file, "routine", ["unparsed_reply"], "Patient's reply to a check-in could not be read.",
        now, {"reply": text, "checkin_id": conversation.checkin_id, "question": conversation.question}, cause=sid,
    ))


def _answer(file: PatientFile, text: str, sid: str, reply: Reply, now: datetime, rules: ClinicRules) -> Outcome:
    conversation = file.open
    assert conversation is not None
    question = conversation.question
    if question == "q1_red_flags" and reply.effects is None:  # a NO: go on to the common effects
        return _next(file, conversation, "q2_common_effects", {"red_flags": False}, text)
    if question == "q3a_headache_days" and reply.medication_days is None:
        return _next(file, conversation, "q3b_medication_days", {"headache_days": reply.number}, text)
    if question in ("q3a_headache_days", "q3b_medication_days"):
        numbers = {"medication_days": reply.number} if question == "q3b_medication_days" else \
            {"headache_days": reply.number, "medication_days": reply.medication_days}
        outcome = _complete(file, conversation, numbers, text, now)
        outcome.add(_ask(file, "checkin_thanks", sid))
        return judge_response(outcome, now, rules.non_response_reduction)
    # Q2, or a NO to Q1 that names the common effects too ("no, though my neck is stiff")
    answers: dict[str, Any] = {"effects": [e.model_dump() for e in reply.effects or ()]}
    if question == "q1_red_flags":
        answers["red_flags"] = False
    outcome = _complete(file, conversation, answers, text, now)
    outcome.add(_ask(file, "checkin_thanks", sid))
    severity = effects_severity(reply)
    if severity:
        reasons = [e.reason for e in reply.effects or ()]
        evidence: dict[str, Any] = {"reply": text, "checkin_id": conversation.checkin_id}
        if why := described(reply.findings):
            evidence["findings"] = why
        outcome.add(_alert(
            file, severity, reasons, f"Patient reports side effects: {', '.join(_describe(reply))}.",
            now, evidence, cause=sid,
        ))
    return outcome


def effects_severity(reply: Reply) -> Severity | None:
    effects = reply.effects or ()
    if any(e.severity == "severe" or e.reason == "ptosis" for e in effects):
        return "high"
    return "routine" if effects else None


def _describe(reply: Reply) -> list[str]:
    return [f"{reason_label(e.reason)}{f' ({e.severity})' if e.severity else ''}" for e in reply.effects or ()]


def _next(file: PatientFile, conversation: Conversation, question: Question, answers: dict, text: str) -> Outcome:
    updated = conversation.model_copy(update={
        "question": question, "attempts": 0, "answers": conversation.answers | answers, "raw": [*conversation.raw, text],
    })
    outcome = Outcome(file=file.model_copy(update={"open": updated}))
    return outcome.add(_ask(file, TEMPLATE_OF[question], question_cause(file, conversation.checkin_id, question)))


def question_cause(file: PatientFile, checkin_id: str, question: Question) -> str:
    """Asking one question of one check-in: sent once, whoever else's check-in has that id."""
    return f"{file.patient_id}:{checkin_id}:{question}"


def _closing(file: PatientFile, checkin_id: str) -> PatientFile:
    closed = [*file.closed_checkins, checkin_id][-REMEMBERED:]
    return file.model_copy(update={"open": None, "closed_checkins": closed})


def _complete(file: PatientFile, conversation: Conversation, answers: dict, text: str, now: datetime) -> Outcome:
    all_answers = conversation.answers | answers
    closed = _closing(file, conversation.checkin_id)
    days = all_answers.get("headache_days")
    if days is not None and conversation.cycle is not None and conversation.day is not None:
        reading = HeadacheReading(cycle=conversation.cycle, day=conversation.day, days=days,
                                  at=conversation.due_at or now, checkin_id=conversation.checkin_id)
        closed = closed.model_copy(update={"readings": file.readings | {reading_key(reading.cycle, reading.day): reading}})
    outcome = Outcome(file=closed)
    return outcome.add(CheckinCompleted(
        event_id=deterministic_id("completed", conversation.checkin_id), occurred_at=now,
        patient_id=file.patient_id, clinic_id=file.clinic_id, checkin_id=conversation.checkin_id,
        kind=conversation.kind, treatment_id=conversation.treatment_id, cycle=conversation.cycle,
        answers=all_answers, raw_replies=[*conversation.raw, text],
    ))


def _unanswered(file: PatientFile, conversation: Conversation, now: datetime, *, superseded_by: str | None = None) -> Outcome:
    """Closes a check-in nobody finished; the clinic sees it in the digest. An expiry and
    a supersession of the same check-in give the same alert id."""
    evidence: dict[str, Any] = {"checkin_id": conversation.checkin_id, "kind": conversation.kind,
                                "question": conversation.question, "answers": conversation.answers}
    summary = "Check-in got no answer before it expired."
    if superseded_by:
        evidence["superseded_by"] = superseded_by
        summary = "Check-in got no complete answer before the next one replaced it."
    outcome = Outcome(file=_closing(file, conversation.checkin_id))
    return outcome.add(_alert(file, "routine", ["no_reply"], summary, now, evidence, cause=conversation.checkin_id))


# --- outcomes over months (NICE TA260) ------------------------------------------------


def judge_response(outcome: Outcome, now: datetime, threshold: float = RESPONSE_THRESHOLD) -> Outcome:
    outcome = _judge_non_response(outcome, now, threshold)
    return _judge_episodic(outcome, now)


def chronological(readings: dict[str, HeadacheReading]) -> list[HeadacheReading]:
    return sorted(readings.values(), key=lambda r: (r.at, r.cycle, r.day))


def _judge_non_response(outcome: Outcome, now: datetime, threshold: float) -> Outcome:
    """Headache days fell by less than the clinic's threshold (30% by default) from
    baseline once two cycles were reported: one `review` alert per cycle."""
    file = outcome.file
    baseline = file.baseline_headache_days
    readings = chronological(file.readings)
    if not baseline or not readings:
        return outcome
    latest = readings[-1]
    cycles = sorted({r.cycle for r in readings if r.cycle <= latest.cycle})
    if len(cycles) < NON_RESPONSE_AFTER_CYCLES or latest.cycle in file.non_response_cycles:
        return outcome
    reduction = (baseline - latest.days) / baseline
    if reduction >= threshold:
        return outcome
    flagged = file.model_copy(update={"non_response_cycles": [*file.non_response_cycles, latest.cycle]})
    return Outcome(file=flagged, emit=outcome.emit).add(_alert(
        file, "review", ["non_response"],
        f"Headache days {baseline} -> {latest.days} ({reduction:.0%} reduction) after {len(cycles)} cycles; "
        f"below the {threshold:.0%} response threshold.",
        now, {"baseline_headache_days": baseline, "latest_headache_days": latest.days, "reduction": round(reduction, 3),
              "threshold": threshold, "cycles_reported": len(cycles), "cycle": latest.cycle, "day": latest.day, "checkin_id": latest.checkin_id},
        cause=f"non_response:{latest.cycle}",
    ))


def episodic_streak(readings: list[HeadacheReading]) -> list[HeadacheReading]:
    """The latest run of consecutive monthly reports under 15 headache days."""
    streak: list[HeadacheReading] = []
    for reading in readings:
        consecutive = bool(streak) and reading.at - streak[-1].at <= MAX_GAP_BETWEEN_MONTHS
        if reading.days >= CHRONIC_DAYS:
            streak = []
        elif consecutive:
            streak.append(reading)
        else:
            streak = [reading]
    return streak


def _judge_episodic(outcome: Outcome, now: datetime) -> Outcome:
    """Fewer than 15 headache days a month for three consecutive months: reported once per
    run (a month of 15 or more days, or a month unreported, starts the count again)."""
    file = outcome.file
    streak = episodic_streak(chronological(file.readings))
    if len(streak) < EPISODIC_MONTHS:
        return outcome
    first, last = streak[0], streak[-1]
    if file.episodic_reported_from == reading_key(first.cycle, first.day):
        return outcome
    reported = file.model_copy(update={"episodic_reported_from": reading_key(first.cycle, first.day)})
    return Outcome(file=reported, emit=outcome.emit).add(_alert(
        file, "review", ["below_chronic_threshold"],
        f"Fewer than {CHRONIC_DAYS} headache days a month for {len(streak)} consecutive months "
        f"({', '.join(str(r.days) for r in streak)}).",
        now, {"headache_days": [r.days for r in streak], "cycles_days": [reading_key(r.cycle, r.day) for r in streak],
              "from": first.at.isoformat(), "to": last.at.isoformat(), "baseline_headache_days": file.baseline_headache_days},
        cause=f"episodic:{reading_key(first.cycle, first.day)}",
    ))


# --- events -------------------------------------------------------------------------


def _ask(file: PatientFile, kind: str, cause: str, *, urgent: bool = False, context: dict | None = None) -> OutboundRequested:
    return OutboundRequested(
        event_id=deterministic_id("outbound", cause, kind), message_key=deterministic_id(cause, kind),
        patient_id=file.patient_id, clinic_id=file.clinic_id, kind=kind, language=file.language,
        urgent=urgent, context=context or {},
    )


def _alert(file: PatientFile, severity: Severity, reasons: list[str], summary: str, now: datetime,
           evidence: dict[str, Any], *, cause: str) -> ClinicianAlert:
    alert_id = deterministic_id("alert", file.patient_id, cause, severity)
    return ClinicianAlert(
        event_id=alert_id, alert_id=alert_id, patient_id=file.patient_id, clinic_id=file.clinic_id,
        severity=severity, reasons=reasons, summary=summary, raised_at=now, evidence=evidence,
    )
