"""FHIR R4 in: an EHR's Patient, Procedure and MedicationAdministration resources onto the
contract events (README, "FHIR": the mapping table is this module's specification).

Pure: JSON-shaped data and the clinics in, results out (an event to publish, or the
problems as FHIR paths); parsing and validation use the fhir.resources R4B models, and the
answers (OperationOutcome, batch-response Bundle) are built with them too. The HTTP edge
is :mod:`services.scheduler.adapters.fhir_api`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.medicationadministration import MedicationAdministration
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.procedure import Procedure
from fhir.resources.R4B.resource import Resource
from pydantic import ValidationError

from shared.clinics import Clinic, Directory
from shared.codec import capped
from shared.events import (
    PatientDischarged, PatientEnrolled, PatientSnapshot, PatientUpdated, TreatmentRecorded, deterministic_id,
)
from shared.phones import e164_or_none, region_of

CLINIC_SYSTEM = "urn:cyclecare:clinic"
TIMEZONE_EXTENSION = "http://hl7.org/fhir/StructureDefinition/timezone"
SMS_CONSENT_EXTENSION = "urn:cyclecare:sms-consent"
EMAIL_CONSENT_EXTENSION = "urn:cyclecare:email-consent"
BASELINE_EXTENSION = "urn:cyclecare:baseline-headache-days"
LANGUAGES = ("en", "es")
MODELS: dict[str, type[Resource]] = {
    "Patient": Patient, "Procedure": Procedure, "MedicationAdministration": MedicationAdministration,
}
BUNDLE_KINDS = ("batch", "transaction")
AS_BATCH = ("transaction processed as a batch: each entry is published on its own (Kafka offers no atomic "
            "transaction here), so the entries that failed can be corrected and sent again alone")
STATUS_TEXT = {200: "200 OK", 202: "202 Accepted", 400: "400 Bad Request", 422: "422 Unprocessable Entity"}
Event = PatientSnapshot | PatientDischarged | TreatmentRecorded
Severity = Literal["error", "warning", "information"]


@dataclass(frozen=True)
class Problem:
    """One OperationOutcome issue: where (a FHIR path) and why."""

    expression: str
    diagnostics: str
    severity: Severity = "error"
    code: str = "invalid"  # a FHIR IssueType: invalid, required, value, not-supported, informational


@dataclass(frozen=True)
class Result:
    """What became of one resource: ``status`` 202 with an event to publish, 200 when it is
    accepted and ignored, 422 when it is invalid, 400 when it is no resource cyclecare takes."""

    status: int
    event: Event | None = None
    problems: tuple[Problem, ...] = ()
    topic: Literal["patients", "treatments"] | None = None


@dataclass(frozen=True)
class PatientRef:
    """A patient known from the same Bundle, for its treatments' subject references."""

    patient_id: str
    clinic_id: str


Known = Mapping[str, PatientRef]


def invalid(expression: str, diagnostics: str, code: str = "invalid") -> Result:
    return Result(422, problems=(Problem(expression, diagnostics, code=code),))


def ignored(expression: str, diagnostics: str) -> Result:
    return Result(200, problems=(Problem(expression, diagnostics, "information", "informational"),))


# --- reading resources ----------------------------------------------------------------------


def fhir_path(resource_type: str, loc: Iterable[str | int]) -> str:
    """``("telecom", 0, "value")`` -> ``Patient.telecom[0].value``."""
    path = resource_type
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{'resourceType' if part == 'resource_type' else part}"
    return path


def validation_problems(resource_type: str, exc: ValidationError, where: Mapping[str, str] | None = None) -> tuple[Problem, ...]:
    """A pydantic error as issues; ``where`` maps a contract field (``phone``) to the FHIR path it came from."""
    problems = []
    for err in exc.errors():
        loc = [p for p in err["loc"] if not isinstance(p, str) or not p.startswith("function-")]
        first = str(loc[0]) if loc else ""
        path = where[first] if where and first in where else fhir_path(resource_type, loc)
        problems.append(Problem(path, " ".join(err["msg"].split())[:300], code="required" if err["type"] == "missing" else "value"))
    return tuple(problems)


def read_resource(data: object, expect: str | None = None) -> Resource | Result:
    """The R4B model of ``data``, or the result saying why not (400: no resource cyclecare
    takes here; 422: a resource of the right type that breaks the FHIR rules)."""
    if not isinstance(data, dict) or not isinstance(data.get("resourceType"), str):
        return Result(400, problems=(Problem("resourceType", "not a FHIR resource: a JSON object with resourceType is expected", code="structure"),))
    resource_type = capped(data["resourceType"], 64)
    if expect and resource_type != expect:
        return Result(400, problems=(Problem("resourceType", f"this endpoint takes {expect} resources, not {resource_type}", code="not-supported"),))
    model = MODELS.get(resource_type)
    if model is None:
        return Result(400, problems=(Problem("resourceType", f"cyclecare takes {', '.join(MODELS)} (and Bundles of them), not {resource_type}", code="not-supported"),))
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        return Result(422, problems=validation_problems(resource_type, exc))


# --- which clinic ----------------------------------------------------------------------------


def _tagged_clinic(resource: Resource, resource_type: str) -> tuple[str, str] | None:
    for i, tag in enumerate((resource.meta.tag or []) if resource.meta else []):
        if tag.system == CLINIC_SYSTEM and tag.code:
            return tag.code, f"{resource_type}.meta.tag[{i}].code"
    return None


def patient_clinic(patient: Patient) -> tuple[str, str] | None:
    """The clinic id and where it was found: managingOrganization's identifier, else an
    identifier of the patient, else a ``meta.tag``, each with the system ``urn:cyclecare:clinic``."""
    org = patient.managingOrganization
    if org and org.identifier and org.identifier.system == CLINIC_SYSTEM and org.identifier.value:
        return org.identifier.value, "Patient.managingOrganization.identifier.value"
    for i, ident in enumerate(patient.identifier or []):
        if ident.system == CLINIC_SYSTEM and ident.value:
            return ident.value, f"Patient.identifier[{i}].value"
    return _tagged_clinic(patient, "Patient")


def _clinic(clinics: Directory, found: tuple[str, str] | None, resource_type: str, hint: str) -> Clinic | Result:
    if found is None:
        return invalid(resource_type, f"no clinic: {hint}", "required")
    clinic_id, path = found
    clinic = clinics.get(clinic_id)
    return clinic if clinic else invalid(path, f"unknown clinic {capped(clinic_id, 128)!r} (not in the clinics file)", "value")


# --- Patient -> patient.enrolled / patient.updated --------------------------------------------


def _extension(resource: Patient, url: str) -> tuple[int, Any] | None:
    for i, ext in enumerate(resource.extension or []):
        if ext.url == url:
            return i, ext
    return None


def best_phone(patient: Patient) -> tuple[int, bool] | None:
    """The index of the telecom to text and whether it is a mobile: a mobile (or an ``sms``
    contact point) first, then any other phone; by ``rank`` within each; never ``use: old``."""
    phones = [(i, t) for i, t in enumerate(patient.telecom or [])
              if t.system in ("phone", "sms") and t.value and t.use != "old"]
    if not phones:
        return None

    def mobile(t: Any) -> bool:
        return t.use == "mobile" or t.system == "sms"

    i, chosen = min(phones, key=lambda it: (not mobile(it[1]), it[1].rank or 10**6, it[0]))
    return i, mobile(chosen)


def _email(patient: Patient) -> tuple[int, str] | None:
    return next(((i, t.value) for i, t in enumerate(patient.telecom or [])
                 if t.system == "email" and t.value and t.use != "old"), None)


def _first_name(patient: Patient) -> tuple[int, str] | None:
    order = {"usual": 0, "official": 1}
    names = sorted(enumerate(patient.name or []), key=lambda it: (order.get(it[1].use or "", 2), it[0]))
    for i, name in names:
        if name.use == "old":
            continue
        given = [g for g in name.given or [] if g and g.strip()]
        if given:
            return i, given[0].strip()
        if name.text and name.text.strip():
            return i, name.text.split()[0]
    return None


def patient_language(patient: Patient) -> tuple[str, Problem | None]:
    """The first of the patient's languages (the preferred ones first) that cyclecare speaks;
    ``en`` with a warning when none is, ``en`` silently when none is given."""
    comms = sorted(enumerate(patient.communication or []), key=lambda it: (not it[1].preferred, it[0]))
    given = []
    for i, comm in comms:
        codes = [c.code for c in comm.language.coding or [] if c.code]
        for code in codes:
            base = code.split("-")[0].lower()
            if base in LANGUAGES:
                return base, None
            given.append(code)
    if given:
        return "en", Problem("Patient.communication", f"cyclecare writes in English or Spanish, not {capped(', '.join(given), 200)}: "
                             "messages go in English", "warning", "not-supported")
    return "en", None


def _boolean_extension(patient: Patient, url: str) -> bool | None:
    found = _extension(patient, url)
    return found[1].valueBoolean if found and found[1].valueBoolean is not None else None


def _content_id(resource_type: str, resource_id: str, values: Mapping[str, Any]) -> str:
    """The event id: the resource's type and id and a digest of what it maps to, so the same
    resource posted again gives the same id and a changed one a new id."""
    digest = hashlib.sha256(repr(sorted(values.items())).encode()).hexdigest()[:16]
    return deterministic_id("fhir", resource_type, resource_id, digest)


def _occurred_at(resource: Resource, now: datetime) -> datetime:
    updated = resource.meta.lastUpdated if resource.meta else None
    return updated if isinstance(updated, datetime) and updated.tzinfo else now


def map_patient(patient: Patient, clinics: Directory, now: datetime) -> Result:
    if not patient.id:
        return invalid("Patient.id", "a Patient needs an id: it is cyclecare's patient_id", "required")
    clinic = _clinic(clinics, patient_clinic(patient), "Patient",
                     f"give managingOrganization.identifier (or an identifier) with system {CLINIC_SYSTEM}")
    if isinstance(clinic, Result):
        return clinic
    gone = no_longer_followed(patient)
    if gone:
        return discharged(patient, clinic, gone, now)
    where = {"patient_id": "Patient.id"}
    phone = best_phone(patient)
    if phone is None:
        return invalid("Patient.telecom", "no phone number: cyclecare reaches patients by SMS; "
                       "add a telecom with system phone and use mobile", "required")
    index, is_mobile = phone
    raw_phone = patient.telecom[index].value
    where["phone"] = f"Patient.telecom[{index}].value"
    values: dict[str, Any] = {
        "patient_id": patient.id, "clinic_id": clinic.id,
        "phone": e164_or_none(raw_phone, region_of(clinic.phone)) or raw_phone,
        "timezone": clinic.timezone,
    }
    name = _first_name(patient)
    if name is None:
        return invalid("Patient.name", "no first name: add a name with a given name", "required")
    where["first_name"] = f"Patient.name[{name[0]}].given[0]"
    values["first_name"] = name[1]
    email = _email(patient)
    if email:
        where["email"] = f"Patient.telecom[{email[0]}].value"
        values["email"] = email[1]
    zone = _extension(patient, TIMEZONE_EXTENSION)
    if zone:
        where["timezone"] = f"Patient.extension[{zone[0]}].valueCode"
        values["timezone"] = zone[1].valueCode
    baseline = _extension(patient, BASELINE_EXTENSION)
    if baseline:
        where["baseline_headache_days"] = f"Patient.extension[{baseline[0]}].valueInteger"
        values["baseline_headache_days"] = baseline[1].valueInteger
    values["language"], note = patient_language(patient)
    sms = _boolean_extension(patient, SMS_CONSENT_EXTENSION)
    email_ok = _boolean_extension(patient, EMAIL_CONSENT_EXTENSION)
    values["sms_consent"] = is_mobile if sms is None else sms
    values["email_consent"] = bool(email_ok) and bool(email)
    updated = patient.meta is not None and patient.meta.versionId not in (None, "1")
    model = PatientUpdated if updated else PatientEnrolled
    try:
        event = model.model_validate(values | {
            "event_id": _content_id("Patient", patient.id, values), "occurred_at": _occurred_at(patient, now)})
    except ValidationError as exc:
        return Result(422, problems=validation_problems("Patient", exc, where))
    return Result(202, event, (note,) if note else (), "patients")


def no_longer_followed(patient: Patient) -> str | None:
    """Why an EHR's Patient means cyclecare must stop contacting the patient, if it does:
    the record is marked inactive, or the patient has died."""
    if patient.deceasedBoolean or patient.deceasedDateTime is not None:
        return "Patient.deceased[x]"
    if patient.active is False:
        return "Patient.active"
    return None


def discharged(patient: Patient, clinic: Clinic, expression: str, now: datetime) -> Result:
    """A discharge: every planned message is cancelled (the scheduler, the notifier and the
    survey stop). Neither a phone nor a name is needed to stop contacting someone."""
    reason = "the EHR marks the patient deceased" if expression == "Patient.deceased[x]" else \
        "the EHR marks the patient record inactive"
    values = {"patient_id": patient.id, "clinic_id": clinic.id, "reason": reason}
    event = PatientDischarged.model_validate(values | {
        "event_id": _content_id("Patient", patient.id or "", values), "occurred_at": _occurred_at(patient, now)})
    note = Problem(expression, f"{reason}: published as patient.discharged, nothing more is sent to this patient",
                   "information", "informational")
    return Result(202, event, (note,), "patients")


# --- Procedure / MedicationAdministration -> treatment.recorded ----------------------------------


def subject_of(reference: str | None, known: Known) -> tuple[str, PatientRef | None] | None:
    """The patient id a subject reference names (``Patient/p-1``, a full URL ending so, or
    the fullUrl of a Patient in the same Bundle) and that patient when the Bundle has it."""
    if not reference:
        return None
    if reference in known:
        return known[reference].patient_id, known[reference]
    parts = reference.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == "Patient" and parts[-1]:
        local = f"Patient/{parts[-1]}"
        return parts[-1], known.get(local)
    return None


def _codes(resource: Procedure | MedicationAdministration) -> list[tuple[str | None, str | None]]:
    """The codes to look up in the clinic's list: a Procedure's code; an administration's
    medicationCodeableConcept, or the code of the contained Medication its medicationReference
    names (``#med``; a Medication elsewhere is not fetched)."""
    if isinstance(resource, Procedure):
        concept = resource.code
    elif resource.medicationReference is not None:
        local = (resource.medicationReference.reference or "").removeprefix("#")
        medication = next((c for c in resource.contained or [] if c.get_resource_type() == "Medication" and c.id == local), None)
        concept = medication.code if medication is not None else None
    else:
        concept = resource.medicationCodeableConcept
    return [(c.system, c.code) for c in (concept.coding or [])] if concept else []


def _when(resource: Procedure | MedicationAdministration) -> tuple[str, date | datetime | None]:
    if isinstance(resource, Procedure):
        period = resource.performedPeriod
        return "Procedure.performed[x]", resource.performedDateTime or (period.start if period else None)
    period = resource.effectivePeriod
    return "MedicationAdministration.effective[x]", resource.effectiveDateTime or (period.start if period else None)


def clinic_date(moment: date | datetime, zone: str) -> date:
    """The clinic's calendar date of a FHIR date or dateTime (a time without offset is the clinic's)."""
    if not isinstance(moment, datetime):
        return moment
    return moment.astimezone(ZoneInfo(zone)).date() if moment.tzinfo else moment.date()


def _units(resource: Procedure | MedicationAdministration) -> float | None:
    if isinstance(resource, MedicationAdministration) and resource.dosage and resource.dosage.dose:
        value = resource.dosage.dose.value
        return float(value) if value is not None else None
    return None


def map_treatment(resource: Procedure | MedicationAdministration, clinics: Directory, now: datetime,
                  known: Known | None = None) -> Result:
    kind = type(resource).__name__
    if not resource.id:
        return invalid(f"{kind}.id", f"a {kind} needs an id: it is cyclecare's treatment_id", "required")
    if resource.status != "completed":
        return ignored(f"{kind}.status", f"ignored: status {capped(str(resource.status), 64)!r}; only a completed {kind} is a treatment")
    subject = subject_of(resource.subject.reference if resource.subject else None, known or {})
    if subject is None:
        return invalid(f"{kind}.subject", "subject must reference a Patient (Patient/{id}, or a Patient in the same Bundle)", "required")
    patient_id, in_bundle = subject
    found = (in_bundle.clinic_id, f"{kind}.subject") if in_bundle else _tagged_clinic(resource, kind)
    clinic = _clinic(clinics, found, kind, f"send the Patient in the same Bundle or tag the {kind} "
                     f"(meta.tag with system {CLINIC_SYSTEM})")
    if isinstance(clinic, Result):
        return clinic
    codes = _codes(resource)
    if not clinic.fhir.counts(kind, codes):
        listed = "procedure_codes" if kind == "Procedure" else "medication_codes"
        shown = ", ".join(f"{s}|{c}" for s, c in codes) or "none"
        return ignored(f"{kind}.code" if kind == "Procedure" else f"{kind}.medication[x]",
                       f"ignored: not a treatment of clinic {clinic.id!r}; its codes ({capped(shown, 300)}) are not in "
                       f"fhir.{listed} of the clinics file")
    path, moment = _when(resource)
    if moment is None:
        return invalid(path, "when the treatment was given is required (a dateTime or a Period with a start)", "required")
    values: dict[str, Any] = {"treatment_id": resource.id, "patient_id": patient_id, "clinic_id": clinic.id,
                              "administered_on": clinic_date(moment, clinic.timezone), "units": _units(resource)}
    values = {k: v for k, v in values.items() if v is not None}
    where = {"treatment_id": f"{kind}.id", "patient_id": f"{kind}.subject", "administered_on": path,
             "units": f"{kind}.dosage.dose.value"}
    try:
        event = TreatmentRecorded.model_validate(values | {
            "event_id": _content_id(kind, resource.id, values), "occurred_at": _occurred_at(resource, now)})
    except ValidationError as exc:
        return Result(422, problems=validation_problems(kind, exc, where))
    return Result(202, event, (), "treatments")


def map_resource(resource: Resource, clinics: Directory, now: datetime, known: Known | None = None) -> Result:
    if isinstance(resource, Patient):
        return map_patient(resource, clinics, now)
    return map_treatment(resource, clinics, now, known)  # type: ignore[arg-type]


def map_one(data: object, clinics: Directory, now: datetime, expect: str | None = None, known: Known | None = None) -> Result:
    """One posted resource: read it, then map it."""
    resource = read_resource(data, expect)
    return resource if isinstance(resource, Result) else map_resource(resource, clinics, now, known)


# --- Bundles ------------------------------------------------------------------------------------


@dataclass
class BundleResult:
    kind: str  # batch or transaction
    entries: list[Result] = field(default_factory=list)


def _bundle_shape(data: dict, max_entries: int) -> Result | None:
    if data.get("type") not in BUNDLE_KINDS:
        return invalid("Bundle.type", f"a Bundle of type batch or transaction is expected, not {data.get('type')!r}", "value")
    entries = data.get("entry", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        return invalid("Bundle.entry", "entry must be a list of objects", "structure")
    if len(entries) > max_entries:
        return invalid("Bundle.entry", f"{len(entries)} entries exceed the limit of {max_entries} per Bundle; split it", "too-costly")
    shell = {k: v for k, v in data.items() if k != "entry"}
    shell["entry"] = [{k: v for k, v in e.items() if k != "resource"} for e in entries]
    try:
        Bundle.model_validate(shell)
    except ValidationError as exc:
        return Result(422, problems=validation_problems("Bundle", exc))
    return None


def _entry_method(entry: dict) -> str | None:
    request = entry.get("request") or {}
    return request.get("method") if isinstance(request, dict) else None


def map_bundle(data: dict, clinics: Directory, now: datetime, max_entries: int) -> BundleResult | Result:
    """Every entry of a batch or transaction Bundle (POST or PUT of a Patient, Procedure or
    MedicationAdministration), each on its own; a treatment's subject
    may name a Patient of the same Bundle by ``Patient/{id}`` or by its ``fullUrl``."""
    refused = _bundle_shape(data, max_entries)
    if refused:
        return refused
    entries: list[dict] = data.get("entry", [])
    read: list[Resource | Result] = []
    for i, entry in enumerate(entries):
        method = _entry_method(entry)
        if method not in (None, "POST", "PUT"):
            read.append(Result(400, problems=(Problem(f"Bundle.entry[{i}].request.method", f"{method} is not supported: POST or PUT a resource", code="not-supported"),)))
        else:
            read.append(read_resource(entry.get("resource")))
    known = patients_in(entries, read)
    results = [r if isinstance(r, Result) else map_resource(r, clinics, now, known) for r in read]
    return BundleResult(data["type"], results)


def patients_in(entries: list[dict], read: list[Resource | Result]) -> dict[str, PatientRef]:
    """The Bundle's patients by ``Patient/{id}`` and by ``fullUrl``, with their clinic (even a
    patient whose entry fails: its treatments are still its clinic's)."""
    known: dict[str, PatientRef] = {}
    for entry, resource in zip(entries, read):
        clinic = patient_clinic(resource) if isinstance(resource, Patient) and resource.id else None
        if clinic:
            ref = PatientRef(resource.id, clinic[0])  # type: ignore[union-attr]
            known[f"Patient/{ref.patient_id}"] = ref
            if isinstance(entry.get("fullUrl"), str):
                known[entry["fullUrl"]] = ref
    return known


# --- answers ---------------------------------------------------------------------------------------


def outcome(result: Result, notes: tuple[Problem, ...] = ()) -> OperationOutcome:
    """The OperationOutcome of a result: its problems, or what was published (or ignored)."""
    issues = list(result.problems) + list(notes)
    if result.event is not None:
        issues.insert(0, Problem("", f"published {result.event.type} "
                                 f"(event_id {result.event.event_id})", "information", "informational"))
    if not issues:
        issues.append(Problem("", "accepted", "information", "informational"))
    return OperationOutcome(issue=[
        {"severity": p.severity, "code": p.code, "diagnostics": p.diagnostics,
         **({"expression": [p.expression]} if p.expression else {})} for p in issues])


def entry_response(result: Result, kind: str) -> dict[str, Any]:
    """One entry of the response: its status; what was published as the ``etag``
    (``W/"{event_id}"``); an outcome when something is to be said (a failure, a reason for
    ignoring, a warning). A failed entry of a transaction says the others were kept."""
    response: dict[str, Any] = {"status": STATUS_TEXT.get(result.status, str(result.status))}
    if result.event is not None:
        response["etag"] = f'W/"{result.event.event_id}"'
    if result.problems:
        failed = result.status >= 400 and kind == "transaction"
        notes = (Problem("Bundle.type", AS_BATCH, "information", "informational"),) if failed else ()
        response["outcome"] = outcome(Result(result.status, problems=result.problems + notes))
    return {"response": response}


def response_bundle(result: BundleResult) -> Bundle:
    """The ``batch-response`` or ``transaction-response``: one entry per entry, in order."""
    return Bundle(type=f"{result.kind}-response", entry=[entry_response(r, result.kind) for r in result.entries])
