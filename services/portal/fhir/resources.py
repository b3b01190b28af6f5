"""Read-model rows -> FHIR R4 resources (``fhir.resources`` R4B models): pure functions.

A cyclecare ``patient_id`` is the FHIR ``Patient.id`` (``Patient/{patient_id}``); every
resource carries an identifier under ``urn:cyclecare:`` with the cyclecare id it comes
from, which is what the push sink's conditional creates match on. A row is anything with
the read model's column names as attributes (a SQLAlchemy row, or a namespace in tests).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from fhir.resources.R4B.adverseevent import AdverseEvent
from fhir.resources.R4B.communication import Communication
from fhir.resources.R4B.detectedissue import DetectedIssue
from fhir.resources.R4B.flag import Flag
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from fhir.resources.R4B.resource import Resource

from services.portal.fhir.ids import URN, adverse_event_keys, fhir_id
from services.portal.projection import EFFECTS
from shared.reasons import reason_label

KINDS = {"side_effects": "side-effects", "headache_frequency": "headache-frequency"}  # check-in kind -> Questionnaire.id
QUESTIONNAIRES_FILE = Path(__file__).parent / "questionnaires.yaml"
REPORT_PERIOD = timedelta(weeks=4)  # "headache days in the last 4 weeks"
OBSERVATIONS = {  # answer -> (id suffix, code, display); no LOINC code counts days over 4 weeks
    "headache_days": ("headache-days", "headache-days", "Days with headache in the last 4 weeks"),
    "medication_days": ("medication-days", "acute-medication-days", "Days with acute headache medicine in the last 4 weeks"),
}
SEVERITY_FLAG = {"urgent": "urgent", "high": "high", "routine": "routine", "review": "review"}
HL7 = "http://terminology.hl7.org/CodeSystem/"


def patient_ref(patient_id: str) -> dict[str, str]:
    return {"reference": f"Patient/{fhir_id(patient_id)}"}


def identifier(kind: str, value: str) -> list[dict[str, str]]:
    return [{"system": URN + kind, "value": value}]


def _meta(updated: datetime) -> dict[str, str]:
    return {"lastUpdated": updated.isoformat()}


def _coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    return {"system": system, "code": code, **({"display": display} if display else {})}


def _concept(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    return {"coding": [_coding(system, code, display)], **({"text": display} if display else {})}


def _json_list(text: str | None) -> list[Any]:
    return json.loads(text) if text else []


# --- Questionnaire (static) ----------------------------------------------------------------


@cache
def _questionnaire_data() -> dict[str, Any]:
    return yaml.safe_load(QUESTIONNAIRES_FILE.read_text(encoding="utf-8"))


def _display(system_name: str, code: str) -> str:
    if system_name == "red_flag":
        return reason_label(code)
    if system_name == "side_effect":
        return EFFECTS[int(code)]
    return code


def _answer_coding(system_name: str, code: str) -> dict[str, str]:
    return _coding(_questionnaire_data()["systems"][system_name], code, _display(system_name, code))


def _item(spec: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = {"linkId": spec["linkId"], "text": spec["text"], "type": spec["type"],
                            "repeats": spec.get("repeats", False)}
    if "options" in spec:
        opts = spec["options"]
        item["answerOption"] = [{"valueCoding": _answer_coding(opts["system"], str(c))} for c in opts["codes"]]
    if "enable_when" in spec:
        when = spec["enable_when"]
        item["enableWhen"] = [{"question": when["question"], "operator": "=", "answerBoolean": when["answer"]}]
    if "items" in spec:
        item["item"] = [_item(child) for child in spec["items"]]
    return item


def questionnaire_url(questionnaire_id: str) -> str:
    return f"{URN}questionnaire:{questionnaire_id}"


def questionnaires() -> list[Questionnaire]:
    """The side-effect and headache-frequency check-ins."""
    return [
        Questionnaire(id=qid, url=questionnaire_url(qid), name="".join(part.capitalize() for part in qid.split("-")), title=spec["title"],
                      description=spec["description"], status="active", subjectType=["Patient"],
                      item=[_item(i) for i in spec["items"]])
        for qid, spec in _questionnaire_data()["questionnaires"].items()
    ]


# --- from a completed check-in -----------------------------------------------------------


def questionnaire_response(checkin: Any) -> QuestionnaireResponse:
    return QuestionnaireResponse(
        id=fhir_id(checkin.checkin_id), meta=_meta(checkin.completed_at), identifier=identifier("checkin", checkin.checkin_id)[0],
        questionnaire=questionnaire_url(KINDS[checkin.kind]), status="completed", subject=patient_ref(checkin.patient_id),
        authored=checkin.completed_at.isoformat(), source=patient_ref(checkin.patient_id), item=_answers(checkin) or None,
    )


def _answers(checkin: Any) -> list[dict[str, Any]]:
    if checkin.kind == "headache_frequency":
        return [{"linkId": link, "answer": [{"valueInteger": value}]}
                for link, value in (("q3a", checkin.headache_days), ("q3b", checkin.medication_days)) if value is not None]
    items: list[dict[str, Any]] = []
    if checkin.red_flags is not None:
        items.append({"linkId": "q1", "answer": [{"valueBoolean": bool(checkin.red_flags)}]})
    reasons = _json_list(checkin.red_flag_reasons)
    if checkin.red_flags and reasons:
        items.append({"linkId": "q1-reasons", "answer": [{"valueCoding": _answer_coding("red_flag", r)} for r in reasons]})
    effects = _json_list(checkin.effects)
    if effects:
        items.append({"linkId": "q2", "answer": [_effect_answer(e) for e in effects]})
    return items


def _effect_answer(effect: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = {"valueCoding": _answer_coding("side_effect", str(effect["code"]))}
    if effect.get("severity"):
        answer["item"] = [{"linkId": "q2-severity", "answer": [{"valueCoding": _answer_coding("severity", effect["severity"])}]}]
    return answer


def observations(checkin: Any) -> list[Observation]:
    """Headache days and acute-medication days, each over the 4 weeks before the report."""
    if checkin.kind != "headache_frequency":
        return []
    end = checkin.completed_at
    found = []
    for field, (suffix, code, display) in OBSERVATIONS.items():
        value = getattr(checkin, field)
        if value is None:
            continue
        key = f"{checkin.checkin_id}-{suffix}"
        found.append(Observation(
            id=fhir_id(key), meta=_meta(end), identifier=identifier("observation", key), status="final",
            category=[_concept(HL7 + "observation-category", "survey", "Survey")],
            code=_concept(URN + "observation", code, display), subject=patient_ref(checkin.patient_id),
            effectivePeriod={"start": (end - REPORT_PERIOD).isoformat(), "end": end.isoformat()}, issued=end.isoformat(),
            valueQuantity={"value": value, "unit": "days", "system": "http://unitsofmeasure.org", "code": "d"},
            derivedFrom=[{"reference": f"QuestionnaireResponse/{fhir_id(checkin.checkin_id)}"}],
        ))
    return found


def adverse_events(checkin: Any) -> list[AdverseEvent]:
    """One per reported side effect; the red flags (one event, serious) first."""
    if checkin.kind != "side_effects":
        return []
    effects = _json_list(checkin.effects)
    keys = iter(adverse_event_keys(checkin.checkin_id, checkin.red_flags, effects))
    found = []
    if checkin.red_flags:
        reasons = _json_list(checkin.red_flag_reasons) or ["red_flag_reported"]
        found.append(_adverse_event(checkin, next(keys), [_answer_coding("red_flag", r) for r in reasons], serious=True, severity=None))
    for effect in effects:
        found.append(_adverse_event(checkin, next(keys), [_answer_coding("side_effect", str(effect["code"]))], serious=False,
                                    severity=effect.get("severity")))
    return found


def _adverse_event(checkin: Any, key: str, codings: list[dict[str, str]], *, serious: bool, severity: str | None) -> AdverseEvent:
    seriousness = ("serious", "Serious") if serious else ("non-serious", "Non-serious")
    return AdverseEvent(
        id=fhir_id(key), meta=_meta(checkin.completed_at), identifier={"system": URN + "adverse-event", "value": key},
        actuality="actual", subject=patient_ref(checkin.patient_id),
        event={"coding": codings, "text": ", ".join(c["display"] for c in codings)},
        date=checkin.completed_at.isoformat(), recordedDate=checkin.completed_at.isoformat(),
        seriousness=_concept(HL7 + "adverse-event-seriousness", *seriousness),
        severity=_concept(HL7 + "adverse-event-severity", severity, severity.capitalize()) if severity else None,
        referenceDocument=[{"reference": f"QuestionnaireResponse/{fhir_id(checkin.checkin_id)}"}],
    )


# --- from a clinician alert --------------------------------------------------------------


def alert_updated(alert: Any) -> datetime:
    return alert.resolved_at or alert.raised_at


def flag(alert: Any) -> Flag:
    """Active while the alert is not resolved (acknowledged included), inactive once resolved."""
    reasons = _json_list(alert.reasons)
    return Flag(
        id=fhir_id(alert.alert_id), meta=_meta(alert_updated(alert)), identifier=identifier("alert", alert.alert_id),
        status="inactive" if alert.status == "resolved" else "active",
        category=[_concept(HL7 + "flag-category", "clinical", "Clinical"),
                  _concept(URN + "alert-severity", alert.severity, alert.severity)],
        code={"coding": [_coding(URN + "alert-reason", r, reason_label(r)) for r in reasons], "text": alert.summary},
        subject=patient_ref(alert.patient_id),
        period={"start": alert.raised_at.isoformat(), **({"end": alert.resolved_at.isoformat()} if alert.resolved_at else {})},
    )


def is_non_response(alert: Any) -> bool:
    return "non_response" in _json_list(alert.reasons)


def detected_issue(alert: Any) -> DetectedIssue:
    """A non-response review (NICE TA260: headache days down by less than 30% after 2 cycles)."""
    mitigation = None
    if alert.resolved_at:
        mitigation = [{"action": {"text": (alert.outcome or "resolved").replace("_", " ")}, "date": alert.resolved_at.isoformat()}]
    return DetectedIssue(
        id=fhir_id(alert.alert_id), meta=_meta(alert_updated(alert)), identifier=identifier("detected-issue", alert.alert_id),
        status="final", code=_concept(URN + "alert-reason", "non_response", reason_label("non_response")), severity="moderate",
        patient=patient_ref(alert.patient_id), identifiedDateTime=alert.raised_at.isoformat(), detail=alert.summary,
        mitigation=mitigation,
    )


# --- messages ----------------------------------------------------------------------------

COMMUNICATION_STATUS = {"sent": "completed", "delivered": "completed", "received": "completed",
                        "failed": "not-done", "suppressed": "not-done"}


def communication(message: Any) -> Communication:
    inbound = message.direction == "in"
    patient = patient_ref(message.patient_id)
    return Communication(
        id=fhir_id(message.message_id), meta=_meta(message.updated_at), identifier=identifier("message", message.message_id),
        status=COMMUNICATION_STATUS.get(message.status, "unknown"),
        statusReason={"text": message.reason} if message.reason else None,
        category=[_concept(URN + "message-kind", message.kind, message.kind.replace("_", " "))],
        medium=[_concept(URN + "channel", message.channel, message.channel.upper())],
        subject=patient, sender=patient if inbound else None, recipient=None if inbound else [patient],
        sent=None if inbound else message.at.isoformat(), received=message.at.isoformat() if inbound else None,
        payload=[{"contentString": message.body}] if message.body else None,
    )


# --- which resources a row gives ---------------------------------------------------------

Builder = Callable[[Any], list[Resource]]
BUILDERS: dict[str, Builder] = {
    "QuestionnaireResponse": lambda row: [questionnaire_response(row)],
    "Observation": observations,
    "AdverseEvent": adverse_events,
    "Flag": lambda row: [flag(row)],
    "DetectedIssue": lambda row: [detected_issue(row)] if is_non_response(row) else [],
    "Communication": lambda row: [communication(row)],
}


def resources_of(resource_type: str, rows: Iterable[Any]) -> list[Resource]:
    build = BUILDERS[resource_type]
    return [resource for row in rows for resource in build(row)]
