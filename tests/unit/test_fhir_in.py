"""FHIR R4 in: Patient, Procedure and MedicationAdministration onto the contract events
(services/scheduler/fhir_in.py), and every answer a valid R4B resource."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome

from services.scheduler import fhir_in
from shared.clinics import load_clinics, parse_clinics
from shared.events import PatientDischarged, PatientEnrolled, PatientUpdated, TreatmentRecorded

NOW = datetime(2026, 3, 12, 18, 0, tzinfo=timezone.utc)
CLINICS = load_clinics(None)  # rocklin (America/Los_Angeles, US) and sevilla (Europe/Madrid, ES)
CPT_64615 = {"system": "http://www.ama-assn.org/go/cpt", "code": "64615"}
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CLINIC = {"identifier": {"system": "urn:cyclecare:clinic", "value": "rocklin"}}
MOBILE = {"system": "phone", "value": "+19165550111", "use": "mobile"}
HOME = {"system": "phone", "value": "(916) 555-0122", "use": "home"}


def patient(**changes: Any) -> dict[str, Any]:
    base = {"resourceType": "Patient", "id": "p-ana", "name": [{"given": ["Ana"], "family": "Ruiz"}],
            "telecom": [MOBILE], "managingOrganization": CLINIC}
    return {k: v for k, v in (base | changes).items() if v is not None}


def procedure(**changes: Any) -> dict[str, Any]:
    base = {"resourceType": "Procedure", "id": "proc-1", "status": "completed", "subject": {"reference": "Patient/p-ana"},
            "code": {"coding": [CPT_64615]}, "performedDateTime": "2026-03-10T17:30:00-07:00",
            "meta": {"tag": [{"system": "urn:cyclecare:clinic", "code": "rocklin"}]}}
    return {k: v for k, v in (base | changes).items() if v is not None}


def administration(**changes: Any) -> dict[str, Any]:
    base = {"resourceType": "MedicationAdministration", "id": "ma-1", "status": "completed",
            "subject": {"reference": "Patient/p-ana"}, "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "9999"}]},
            "effectiveDateTime": "2026-03-10", "dosage": {"dose": {"value": 155, "unit": "U"}},
            "meta": {"tag": [{"system": "urn:cyclecare:clinic", "code": "rocklin"}]}}
    return {k: v for k, v in (base | changes).items() if v is not None}


# (resource, expected status, expected fields of the event, or the expression of the first issue)
PATIENT_CASES: dict[str, tuple[dict, int, dict | str]] = {
    "a patient with a mobile": (patient(), 202, {"patient_id": "p-ana", "clinic_id": "rocklin", "first_name": "Ana",
                                                 "phone": "+19165550111", "timezone": "America/Los_Angeles",
                                                 "language": "en", "sms_consent": True, "email_consent": False}),
    "no mobile: the best-ranked phone, in the clinic's national format, without SMS consent": (
        patient(telecom=[{"system": "phone", "value": "+19165550133", "use": "work"}, HOME | {"rank": 1}]), 202,
        {"phone": "+19165550122", "sms_consent": False}),
    "a mobile preferred over a better-ranked home phone": (
        patient(telecom=[HOME | {"rank": 1}, MOBILE | {"rank": 3}]), 202, {"phone": "+19165550111"}),
    "an old number is never used": (patient(telecom=[MOBILE | {"use": "old"}, HOME]), 202, {"phone": "+19165550122"}),
    "missing phone": (patient(telecom=[{"system": "email", "value": "ana@example.org"}]), 422, "Patient.telecom"),
    "an unreadable phone names its telecom": (patient(telecom=[HOME | {"value": "12"}]), 422, "Patient.telecom[0].value"),
    "email and email consent by extension": (
        patient(telecom=[MOBILE, {"system": "email", "value": "ana@example.org"}],
                extension=[{"url": "urn:cyclecare:email-consent", "valueBoolean": True}]), 202,
        {"email": "ana@example.org", "email_consent": True}),
    "SMS consent withheld by extension": (
        patient(extension=[{"url": "urn:cyclecare:sms-consent", "valueBoolean": False}]), 202, {"sms_consent": False}),
    "the timezone extension wins over the clinic's zone": (
        patient(extension=[{"url": "http://hl7.org/fhir/StructureDefinition/timezone", "valueCode": "America/New_York"}]),
        202, {"timezone": "America/New_York"}),
    "an unknown timezone names its extension": (
        patient(extension=[{"url": "urn:cyclecare:sms-consent", "valueBoolean": True},
                           {"url": "http://hl7.org/fhir/StructureDefinition/timezone", "valueCode": "Mars/Olympus"}]),
        422, "Patient.extension[1].valueCode"),
    "Spanish, preferred, from a regional code": (
        patient(communication=[{"language": {"coding": [{"code": "fr"}]}},
                               {"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "es-MX"}]}, "preferred": True}]),
        202, {"language": "es"}),
    "a language cyclecare does not write falls back to English": (
        patient(communication=[{"language": {"coding": [{"code": "fr"}]}}]), 202, {"language": "en"}),
    "the clinic from an identifier": (
        patient(managingOrganization=None, identifier=[{"system": "urn:cyclecare:clinic", "value": "sevilla"}],
                telecom=[MOBILE | {"value": "600 000 113"}]), 202,
        {"clinic_id": "sevilla", "timezone": "Europe/Madrid", "phone": "+34600000113"}),
    "unknown clinic": (patient(managingOrganization={"identifier": {"system": "urn:cyclecare:clinic", "value": "nowhere"}}),
                       422, "Patient.managingOrganization.identifier.value"),
    "no clinic at all": (patient(managingOrganization=None), 422, "Patient"),
    "no id": (patient(id=None), 422, "Patient.id"),
    "no given name": (patient(name=[{"family": "Ruiz"}]), 422, "Patient.name"),
    "a baseline from its extension": (
        patient(extension=[{"url": "urn:cyclecare:baseline-headache-days", "valueInteger": 22}]), 202,
        {"baseline_headache_days": 22}),
    "a baseline out of range": (
        patient(extension=[{"url": "urn:cyclecare:baseline-headache-days", "valueInteger": 40}]), 422,
        "Patient.extension[0].valueInteger"),
    "not FHIR: a telecom that is not a list": (patient(telecom={"system": "phone"}), 422, "Patient.telecom"),
    "a version after the first is an update": (patient(meta={"versionId": "3"}), 202, {"type": "patient.updated"}),
}

TREATMENT_CASES: dict[str, tuple[dict, int, dict | str]] = {
    "a CPT 64615 procedure on the clinic's date": (
        procedure(), 202, {"treatment_id": "proc-1", "patient_id": "p-ana", "clinic_id": "rocklin",
                           "administered_on": date(2026, 3, 10), "units": None}),
    "a late-evening procedure keeps the clinic's date, not UTC's": (
        procedure(performedDateTime="2026-03-11T04:30:00+00:00"), 202, {"administered_on": date(2026, 3, 10)}),
    "a performed period gives its start": (
        procedure(performedDateTime=None, performedPeriod={"start": "2026-03-09T09:00:00-07:00"}), 202,
        {"administered_on": date(2026, 3, 9)}),
    "unknown code ignored": (procedure(code={"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "99213"}]}),
                             200, "Procedure.code"),
    "not completed: ignored": (procedure(status="in-progress"), 200, "Procedure.status"),
    "no date": (procedure(performedDateTime=None), 422, "Procedure.performed[x]"),
    "a subject that is not a patient": (procedure(subject={"reference": "Group/g-1"}), 422, "Procedure.subject"),
    "unknown clinic on a treatment": (procedure(meta={"tag": [{"system": "urn:cyclecare:clinic", "code": "nowhere"}]}),
                                      422, "Procedure.meta.tag[0].code"),
    "a medication the clinic does not list is ignored": (administration(), 200, "MedicationAdministration.medication[x]"),
}


@pytest.mark.parametrize("case", PATIENT_CASES)
def test_a_patient_maps_onto_a_snapshot_or_names_the_fhir_path_at_fault(case):
    resource, status, expected = PATIENT_CASES[case]
    check(fhir_in.map_one(resource, CLINICS, NOW, "Patient"), status, expected)


@pytest.mark.parametrize("case", TREATMENT_CASES)
def test_a_procedure_or_administration_maps_onto_a_treatment_or_says_why_not(case):
    resource, status, expected = TREATMENT_CASES[case]
    check(fhir_in.map_one(resource, CLINICS, NOW), status, expected)


def check(result: fhir_in.Result, status: int, expected: dict | str) -> None:
    answer = OperationOutcome.model_validate_json(fhir_in.outcome(result).model_dump_json())  # valid R4B
    assert result.status == status, answer.model_dump(exclude_none=True)
    if isinstance(expected, dict):
        assert result.event is not None
        assert {k: getattr(result.event, k) for k in expected} == expected
    else:
        assert result.event is None
        assert answer.issue[0].expression == [expected], answer.model_dump(exclude_none=True)
        severity = "information" if status == 200 else "error"
        assert answer.issue[0].severity == severity


def test_a_medication_the_clinic_lists_is_a_treatment_with_its_units():
    clinics = parse_clinics(CLINICS_WITH_MEDICATION)
    result = fhir_in.map_one(administration(), clinics, NOW, "MedicationAdministration")
    assert isinstance(result.event, TreatmentRecorded)
    assert (result.event.treatment_id, result.event.administered_on, result.event.units) == ("ma-1", date(2026, 3, 10), 155)


CLINICS_WITH_MEDICATION = f"""
clinics:
  - id: rocklin
    name: Rocklin Headache Clinic
    phone: "+19165550100"
    timezone: America/Los_Angeles
    clinicians: [{{name: Dr. Lee, email: lee@example.org}}]
    fhir:
      procedure_codes: []
      medication_codes: [{{system: "{RXNORM}", code: "9999"}}]
"""


def test_a_medication_may_be_named_by_a_contained_medication():
    clinics = parse_clinics(CLINICS_WITH_MEDICATION)
    contained = administration(medicationCodeableConcept=None, medicationReference={"reference": "#botox"},
                               contained=[{"resourceType": "Medication", "id": "botox",
                                           "code": {"coding": [{"system": RXNORM, "code": "9999"}]}}])
    assert fhir_in.map_one(contained, clinics, NOW).status == 202
    elsewhere = administration(medicationCodeableConcept=None, medicationReference={"reference": "Medication/botox"})
    assert fhir_in.map_one(elsewhere, clinics, NOW).status == 200


def test_a_clinic_that_lists_no_procedure_codes_ignores_procedures():
    result = fhir_in.map_one(procedure(), parse_clinics(CLINICS_WITH_MEDICATION), NOW)
    assert result.status == 200 and result.event is None


def test_the_same_resource_gives_the_same_event_id_and_a_changed_one_a_new_id():
    first = fhir_in.map_one(patient(), CLINICS, NOW)
    again = fhir_in.map_one(patient(), CLINICS, datetime(2026, 3, 13, tzinfo=timezone.utc))
    changed = fhir_in.map_one(patient(telecom=[MOBILE | {"value": "+19165550199"}]), CLINICS, NOW)
    assert first.event and again.event and changed.event
    assert first.event.event_id == again.event.event_id != changed.event.event_id
    treated = fhir_in.map_one(procedure(), CLINICS, NOW)
    assert treated.event and treated.event.event_id == fhir_in.map_one(procedure(), CLINICS, NOW).event.event_id


def test_a_resource_posted_at_the_wrong_endpoint_or_not_fhir_at_all_is_a_400():
    assert fhir_in.map_one(procedure(), CLINICS, NOW, "Patient").status == 400
    assert fhir_in.map_one({"resourceType": "Observation"}, CLINICS, NOW).status == 400
    assert fhir_in.map_one(["not", "a", "resource"], CLINICS, NOW).status == 400


def transaction(*entries: dict, kind: str = "transaction") -> dict:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def entry(resource: dict, full_url: str | None = None) -> dict:
    request = {"method": "POST", "url": resource["resourceType"]}
    return {"resource": resource, "request": request} | ({"fullUrl": full_url} if full_url else {})


def test_a_bundle_with_one_bad_entry_maps_the_others_and_says_which_failed():
    bob = patient(id="p-bob", name=[{"given": ["Bob"]}], telecom=[MOBILE | {"value": "+19165550112"}])
    result = fhir_in.map_bundle(transaction(
        entry(patient(), "urn:uuid:0d4b1a4e-6a0e-4b8e-9a57-3c1c0f0f0001"),
        entry(patient(id="p-bad", telecom=[])),
        entry(procedure(meta=None, subject={"reference": "urn:uuid:0d4b1a4e-6a0e-4b8e-9a57-3c1c0f0f0001"})),
        entry(bob),
        entry(procedure(id="proc-2", meta=None, subject={"reference": "Patient/p-bob"})),
    ), CLINICS, NOW, max_entries=10)
    assert isinstance(result, fhir_in.BundleResult)
    assert [r.status for r in result.entries] == [202, 422, 202, 202, 202]
    assert result.entries[2].event.patient_id == "p-ana" and result.entries[2].event.clinic_id == "rocklin"
    answer = Bundle.model_validate_json(fhir_in.response_bundle(result).model_dump_json())
    assert answer.type == "transaction-response"
    statuses = [e.response.status for e in answer.entry]
    assert statuses == ["202 Accepted", "422 Unprocessable Entity", "202 Accepted", "202 Accepted", "202 Accepted"]
    failed = answer.entry[1].response.outcome
    assert failed.issue[0].expression == ["Patient.telecom"]
    assert any("processed as a batch" in i.diagnostics for i in failed.issue)


def test_a_treatment_of_a_failing_patient_in_the_bundle_still_gets_its_clinic():
    result = fhir_in.map_bundle(transaction(entry(patient(telecom=[])), entry(procedure(meta=None)), kind="batch"),
                                CLINICS, NOW, max_entries=10)
    assert [r.status for r in result.entries] == [422, 202]
    answer = fhir_in.response_bundle(result)
    assert answer.type == "batch-response"
    assert answer.entry[1].response.outcome is None and answer.entry[1].response.etag == f'W/"{result.entries[1].event.event_id}"'
    assert not any("processed as a batch" in (i.diagnostics or "") for i in answer.entry[0].response.outcome.issue)


@pytest.mark.parametrize("bundle, expression", [
    (transaction(kind="collection"), "Bundle.type"),
    (transaction(*[entry(patient(id=f"p-{i}")) for i in range(11)]), "Bundle.entry"),
    ({"resourceType": "Bundle", "type": "batch", "entry": "nope"}, "Bundle.entry"),
    ({"resourceType": "Bundle", "type": "batch", "entry": [{"request": {"method": "POST"}}]}, "Bundle.entry[0].request.url"),
])
def test_a_bundle_that_is_no_batch_is_refused_whole_with_the_path(bundle, expression):
    result = fhir_in.map_bundle(bundle, CLINICS, NOW, max_entries=10)
    assert isinstance(result, fhir_in.Result) and result.status == 422
    assert fhir_in.outcome(result).issue[0].expression == [expression]


def test_an_entry_that_deletes_or_is_no_resource_fails_alone():
    result = fhir_in.map_bundle(transaction(
        {"request": {"method": "DELETE", "url": "Patient/p-ana"}}, {"request": {"method": "POST", "url": "Patient"}},
        entry(patient())), CLINICS, NOW, max_entries=10)
    assert [r.status for r in result.entries] == [400, 400, 202]
    Bundle.model_validate_json(fhir_in.response_bundle(result).model_dump_json())


def test_patient_snapshots_are_enrolments_unless_a_later_version():
    assert isinstance(fhir_in.map_one(patient(meta={"versionId": "1"}), CLINICS, NOW).event, PatientEnrolled)
    assert isinstance(fhir_in.map_one(patient(meta={"versionId": "2"}), CLINICS, NOW).event, PatientUpdated)


@pytest.mark.parametrize("change, reason", [
    ({"active": False}, "the EHR marks the patient record inactive"),
    ({"deceasedBoolean": True}, "the EHR marks the patient deceased"),
    ({"deceasedDateTime": "2026-03-01", "active": True}, "the EHR marks the patient deceased"),
    ({"active": False, "telecom": None, "name": None}, "the EHR marks the patient record inactive"),
])
def test_an_inactive_or_deceased_patient_is_discharged_so_nothing_more_is_sent(change, reason):
    result = fhir_in.map_one(patient(**change), CLINICS, NOW, "Patient")
    assert result.status == 202 and result.topic == "patients"
    assert isinstance(result.event, PatientDischarged)
    assert (result.event.patient_id, result.event.clinic_id, result.event.reason) == ("p-ana", "rocklin", reason)
    answer = fhir_in.outcome(result)
    assert answer.issue[0].severity == "information" and "patient.discharged" in answer.issue[0].diagnostics


def test_an_active_living_patient_is_a_snapshot_and_the_same_discharge_posted_twice_has_one_id():
    assert isinstance(fhir_in.map_one(patient(active=True, deceasedBoolean=False), CLINICS, NOW).event, PatientEnrolled)
    first, again = (fhir_in.map_one(patient(active=False), CLINICS, NOW).event for _ in range(2))
    assert first.event_id == again.event_id


def test_occurred_at_is_the_resources_last_update_when_given():
    result = fhir_in.map_one(patient(meta={"lastUpdated": "2026-03-01T09:00:00+01:00"}), CLINICS, NOW)
    assert result.event.occurred_at == datetime(2026, 3, 1, 8, 0, tzinfo=timezone.utc)


def test_the_readme_example_bundle_maps_as_the_readme_says():
    example = json.loads((Path(__file__).parents[2] / "examples" / "fhir" / "transaction.json").read_text())
    Bundle.model_validate(example)
    result = fhir_in.map_bundle(example, CLINICS, NOW, max_entries=10)
    assert [r.status for r in result.entries] == [202, 202, 422, 202, 202, 200]
    marta, omar = result.entries[0].event, result.entries[1].event
    assert (marta.phone, marta.language, marta.sms_consent, marta.email_consent, marta.baseline_headache_days) == (
        "+19165550161", "es", True, True, 21)
    assert (omar.timezone, omar.sms_consent) == ("America/Denver", False)
    assert result.entries[3].event.patient_id == "p-3001"  # by fullUrl
