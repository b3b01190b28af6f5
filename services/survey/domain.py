"""The survey's rules: conversations, escalation and outcomes, as pure functions.

A :class:`PatientFile` is everything the survey keeps about one patient (a table value).
Each ``on_*`` function takes the file and an event and returns an :class:`Outcome`:
the new file and the events to publish.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from shared.events import (
    CheckinCompleted,
    CheckinDue,
    CheckinExpired,
    ClinicianAlert,
    ConsentChanged,
    Event,
    OutboundRequested,
    PatientSnapshot,
    Severity,
    deterministic_id,
)
from services.survey.parsing import Question, Reply

FIRST_QUESTION: dict[str, Question] = {"side_effects": "q1_red_flags", "headache_frequency": "q3a_headache_days"}
TEMPLATE_OF: dict[Question, str] = {
    "q1_red_flags": "checkin_q1",
    "q2_common_effects": "checkin_q2",
    "q3a_headache_days": "checkin_q3a",
    "q3b_medication_days": "checkin_q3b",
}
RED_FLAG_SUMMARY = "Patient reports a red-flag symptom after treatment"
NON_RESPONSE_AFTER_CYCLES = 2


class Conversation(BaseModel):
    checkin_id: str
    kind: str
    treatment_id: str | None = None
    cycle: int | None = None
    question: Question
    attempts: int = 0
    answers: dict[str, Any] = Field(default_factory=dict)
    raw: list[str] = Field(default_factory=list)


class PatientFile(BaseModel):
    patient_id: str
    clinic_id: str = ""
    first_name: str = ""
    language: str = "en"
    baseline_headache_days: int | None = None
    opted_out: bool = False
    discharged: bool = False
    open: Conversation | None = None
    headache_days: dict[str, int] = Field(default_factory=dict)  # "cycle:day" -> days


class Outcome(BaseModel):
    file: PatientFile
    emit: list[tuple[str, Event]] = Field(default_factory=list)

    def add(self, topic: str, event: Event) -> "Outcome":
        self.emit.append((topic, event))
        return self


def on_patient(file: PatientFile, event: PatientSnapshot) -> Outcome:
    return Outcome(file=file.model_copy(update={
        "clinic_id": event.clinic_id, "first_name": event.first_name, "language": event.language,
        "baseline_headache_days": event.baseline_headache_days,
    }))


def on_checkin_due(file: PatientFile, event: CheckinDue) -> Outcome:
    """Open the check-in (the notifier sends its first question); it supersedes an
    unanswered older one."""
    if file.open and file.open.checkin_id == event.checkin_id:
        return Outcome(file=file)  # redelivered
    conversation = Conversation(
        checkin_id=event.checkin_id, kind=event.kind, treatment_id=event.treatment_id,
        cycle=event.cycle, question=FIRST_QUESTION[event.kind],
    )
    return Outcome(file=file.model_copy(update={"open": conversation}))


def on_checkin_expired(file: PatientFile, event: CheckinExpired, now: datetime) -> Outcome:
    if not file.open or file.open.checkin_id != event.checkin_id:
        return Outcome(file=file)
    outcome = Outcome(file=file.model_copy(update={"open": None}))
    return outcome.add("alerts", _alert(
        file, "routine", ["no_reply"], "Check-in got no answer before it expired.",
        now, {"checkin_id": event.checkin_id, "kind": file.open.kind}, cause=event.checkin_id,
    ))


def on_reply(file: PatientFile, text: str, message_sid: str, reply: Reply, now: datetime) -> Outcome:
    if reply.keyword:
        return _keyword(file, reply.keyword, message_sid, now)
    if reply.red_flags or (file.open and file.open.question == "q1_red_flags" and reply.yes_no):
        return _urgent(file, text, message_sid, reply, now)
    if file.open is None:
        return Outcome(file=file).add("alerts", _alert(
            file, "routine", ["patient_message"], "Patient sent a message outside a check-in.",
            now, {"reply": text}, cause=message_sid,
        ))
    if not reply.understood:
        return _unreadable(file, text, message_sid, now)
    return _answer(file, text, message_sid, reply, now)


# --- the branches of a reply ------------------------------------------------------


def _keyword(file: PatientFile, keyword: str, sid: str, now: datetime) -> Outcome:
    if keyword == "help":
        return Outcome(file=file).add("outbound", _ask(file, "help", sid))
    granted = keyword == "start"
    updated = file.model_copy(update={"opted_out": not granted, "open": None if not granted else file.open})
    outcome = Outcome(file=updated)
    outcome.add("consent", ConsentChanged(
        event_id=deterministic_id("consent", sid), patient_id=file.patient_id, clinic_id=file.clinic_id,
        channel="sms", granted=granted, source="sms_keyword", occurred_at=now,
    ))
    kind = "opt_in_confirmation" if granted else "opt_out_confirmation"
    return outcome.add("outbound", _ask(file, kind, sid))


def _urgent(file: PatientFile, text: str, sid: str, reply: Reply, now: datetime) -> Outcome:
    reasons = list(reply.red_flags) or ["red_flag_reported"]
    evidence: dict[str, Any] = {"reply": text, "message_sid": sid}
    outcome = Outcome(file=file)
    if file.open:
        evidence["checkin_id"] = file.open.checkin_id
        if file.open.question == "q1_red_flags":
            outcome = _complete(file, file.open, {"red_flags": True, "red_flag_reasons": reasons}, text, now)
    outcome.add("outbound", _ask(file, "safety_reply", sid, urgent=True))
    return outcome.add("alerts", _alert(file, "urgent", reasons, RED_FLAG_SUMMARY + f": {', '.join(reasons)}.", now, evidence, cause=sid))


def _unreadable(file: PatientFile, text: str, sid: str, now: datetime) -> Outcome:
    conversation = file.open
    assert conversation is not None
    updated = conversation.model_copy(update={"attempts": conversation.attempts + 1, "raw": [*conversation.raw, text]})
    outcome = Outcome(file=file.model_copy(update={"open": updated}))
    if conversation.attempts == 0:
        return outcome.add("outbound", _ask(file, "reprompt", sid, context={"question": conversation.question}))
    return outcome.add("alerts", _alert(
        file, "routine", ["unparsed_reply"], "Patient's reply to a check-in could not be read.",
        now, {"reply": text, "checkin_id": conversation.checkin_id, "question": conversation.question}, cause=sid,
    ))


def _answer(file: PatientFile, text: str, sid: str, reply: Reply, now: datetime) -> Outcome:
    conversation = file.open
    assert conversation is not None
    question = conversation.question
    if question == "q1_red_flags":  # a NO: go on to the common effects
        return _next(file, conversation, "q2_common_effects", {"red_flags": False}, text, sid)
    if question == "q3a_headache_days":
        return _next(file, conversation, "q3b_medication_days", {"headache_days": reply.number}, text, sid)
    if question == "q3b_medication_days":
        outcome = _complete(file, conversation, {"medication_days": reply.number}, text, now)
        outcome.add("outbound", _ask(file, "checkin_thanks", sid))
        return _judge_response(outcome, now)
    effects = [e.model_dump() for e in reply.effects or ()]
    outcome = _complete(file, conversation, {"effects": effects}, text, now)
    outcome.add("outbound", _ask(file, "checkin_thanks", sid))
    severity = effects_severity(reply)
    if severity:
        reasons = [e.reason for e in reply.effects or ()]
        outcome.add("alerts", _alert(
            file, severity, reasons, f"Patient reports side effects: {', '.join(_describe(reply))}.",
            now, {"reply": text, "checkin_id": conversation.checkin_id}, cause=sid,
        ))
    return outcome


def effects_severity(reply: Reply) -> Severity | None:
    effects = reply.effects or ()
    if any(e.severity == "severe" or e.reason == "ptosis" for e in effects):
        return "high"
    return "routine" if effects else None


def _describe(reply: Reply) -> list[str]:
    return [f"{e.reason}{f' ({e.severity})' if e.severity else ''}" for e in reply.effects or ()]


def _next(file: PatientFile, conversation: Conversation, question: Question, answers: dict, text: str, sid: str) -> Outcome:
    updated = conversation.model_copy(update={
        "question": question, "attempts": 0, "answers": conversation.answers | answers, "raw": [*conversation.raw, text],
    })
    outcome = Outcome(file=file.model_copy(update={"open": updated}))
    return outcome.add("outbound", _ask(file, TEMPLATE_OF[question], f"{conversation.checkin_id}:{question}"))


def _complete(file: PatientFile, conversation: Conversation, answers: dict, text: str, now: datetime) -> Outcome:
    all_answers = conversation.answers | answers
    history = dict(file.headache_days)
    if "headache_days" in all_answers and all_answers["headache_days"] is not None:
        history[f"{conversation.cycle}:{conversation.checkin_id}"] = all_answers["headache_days"]
    outcome = Outcome(file=file.model_copy(update={"open": None, "headache_days": history}))
    return outcome.add("checkins", CheckinCompleted(
        event_id=deterministic_id("completed", conversation.checkin_id), occurred_at=now,
        patient_id=file.patient_id, clinic_id=file.clinic_id, checkin_id=conversation.checkin_id,
        kind=conversation.kind, treatment_id=conversation.treatment_id, cycle=conversation.cycle,
        answers=all_answers, raw_replies=[*conversation.raw, text],
    ))


def _judge_response(outcome: Outcome, now: datetime) -> Outcome:
    """NICE TA260: stop if headache days fell by less than 30% after two cycles."""
    file = outcome.file
    baseline = file.baseline_headache_days
    cycles = sorted({int(k.split(":")[0]) for k in file.headache_days if k.split(":")[0].isdigit()})
    if not baseline or len(cycles) < NON_RESPONSE_AFTER_CYCLES:
        return outcome
    latest_cycle = cycles[-1]
    latest = [v for k, v in file.headache_days.items() if k.startswith(f"{latest_cycle}:")][-1]
    reduction = (baseline - latest) / baseline
    if reduction < 0.30:
        outcome.add("alerts", _alert(
            file, "review", ["non_response"],
            f"Headache days {baseline} -> {latest} ({reduction:.0%} reduction) after {len(cycles)} cycles; below the 30% response threshold.",
            now, {"baseline_headache_days": baseline, "latest_headache_days": latest, "reduction": round(reduction, 3), "cycles": len(cycles)},
            cause=f"non_response:{latest_cycle}",
        ))
    return outcome


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
