"""The clinics file: who the clinics are, how to reach them, and their clinical rules."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shared.events import E164, TimeZoneName
from shared.validation import one_line

EXAMPLE_CLINICS = Path(__file__).parent / "data" / "clinics.example.yaml"


class ClinicsFileError(ValueError):
    pass


class UnknownClinic(ValueError):
    """An event names a clinic that is not in the clinics file (its record is dead-lettered)."""


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Clinician(_Strict):
    id: str = ""  # defaults to the part of the email before "@"
    name: str
    email: str | None = None
    phone: E164 | None = None
    on_call: bool = False

    @model_validator(mode="before")
    @classmethod
    def _id_from_email(cls, data: object) -> object:
        if isinstance(data, dict) and not data.get("id"):
            email = data.get("email")
            if not email:
                raise ValueError("a clinician needs an id or an email")
            data = {**data, "id": str(email).split("@", 1)[0]}
        return data


class EscalationPolicy(_Strict):
    """How an alert nobody acknowledges gets louder (DESIGN.md, clinics file ``escalation``)."""

    urgent_ack_minutes: int = Field(15, ge=1)
    repeat_minutes: int = Field(30, ge=1)
    max_repeats: int = Field(4, ge=0)
    high_ack_working_hours: float = Field(4, gt=0)


class ClinicRules(_Strict):
    """The clinical defaults of DESIGN.md; every field can be overridden per clinic."""

    cycle_interval_weeks: int = Field(12, ge=1, le=52)
    earliest_routine_day: int = 84
    booking_reminder_days: tuple[int, ...] = (70, 81)
    overdue_day: int = 98
    side_effect_checkin_days: tuple[int, ...] = (2, 7, 14)
    headache_checkin_days: tuple[int, ...] = (28, 56, 77)
    send_time: time = time(10, 0)  # when scheduled patient messages go out, local time
    send_window_start: time = time(8, 0)
    send_window_end: time = time(20, 30)
    checkin_expiry_hours: int = Field(48, ge=1)
    hold_unknown_patient_days: int = Field(14, ge=1)  # a treatment waits this long for its patient's enrolment
    digest_hour: int = Field(8, ge=0, le=23)
    non_response_reduction: float = Field(0.30, ge=0, le=1)

    @model_validator(mode="after")
    def _window_is_a_window(self) -> "ClinicRules":
        if self.send_window_start >= self.send_window_end:
            raise ValueError("send_window_start must be before send_window_end")
        if not self.send_window_start <= self.send_time <= self.send_window_end:
            raise ValueError("send_time must be inside the send window")
        return self


CPT = "http://www.ama-assn.org/go/cpt"


class Coding(_Strict):
    """A FHIR code as the clinics file names it: ``{system: ..., code: ...}``."""

    system: str = Field(min_length=1)
    code: str = Field(min_length=1)


class FhirCodes(_Strict):
    """Which FHIR resources from the EHR count as this clinic's treatment (README, "FHIR").

    A Procedure counts when one of its codes is listed (default: CPT 64615, chemodenervation
    for chronic migraine); a MedicationAdministration when its medication code is listed.
    No medication code is listed by default: an EHR sends administrations of many drugs,
    and counting any of them would restart a patient's cycle."""

    procedure_codes: tuple[Coding, ...] = Field(
        (Coding(system=CPT, code="64615"),),
        description=f"`{{system, code}}` pairs; default CPT 64615 (`{CPT}`)")
    medication_codes: tuple[Coding, ...] = Field(
        (), description="`{system, code}` pairs (RxNorm, SNOMED CT, a national code); none by default: "
        "no MedicationAdministration counts until its code is listed")

    def counts(self, resource_type: str, codes: list[tuple[str | None, str | None]]) -> bool:
        listed = self.procedure_codes if resource_type == "Procedure" else self.medication_codes
        return any((c.system, c.code) in codes for c in listed)


class Clinic(_Strict):
    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    phone: E164
    timezone: TimeZoneName
    clinicians: list[Clinician] = Field(min_length=1)
    escalation_phone: E164 | None = None  # paged from level 3
    escalation: EscalationPolicy = EscalationPolicy()
    rules: ClinicRules = ClinicRules()
    fhir: FhirCodes = Field(FhirCodes(), description="see below")

    @model_validator(mode="after")
    def _clinician_ids_are_unique(self) -> "Clinic":
        ids = [c.id for c in self.clinicians]
        if len(ids) != len(set(ids)):
            raise ValueError(f"clinician ids must be unique within a clinic: {sorted(ids)}")
        return self

    def clinician(self, clinician_id: str) -> Clinician | None:
        return next((c for c in self.clinicians if c.id == clinician_id), None)

    @property
    def on_call(self) -> list[Clinician]:
        return [c for c in self.clinicians if c.on_call] or self.clinicians[:1]


class ClinicsFile(_Strict):
    clinics: list[Clinic]


class Directory:
    """Look-ups of clinics by id."""

    def __init__(self, clinics: list[Clinic]) -> None:
        self._by_id = {c.id: c for c in clinics}
        self._clinicians_by_phone: dict[str, list[tuple[Clinic, Clinician]]] = {}
        for clinic in clinics:
            for person in clinic.clinicians:
                if person.phone:
                    self._clinicians_by_phone.setdefault(person.phone, []).append((clinic, person))

    def clinicians_with_phone(self, phone: str) -> list[tuple[Clinic, Clinician]]:
        """Every (clinic, clinician) a phone number belongs to: a clinician's number is never a patient's."""
        return list(self._clinicians_by_phone.get(phone, ()))

    def get(self, clinic_id: str) -> Clinic | None:
        return self._by_id.get(clinic_id)

    def require(self, clinic_id: str | None) -> Clinic:
        clinic = self._by_id.get(clinic_id or "")
        if clinic is None:
            raise UnknownClinic(f"clinic {clinic_id!r} is not in the clinics file")
        return clinic

    def __contains__(self, clinic_id: object) -> bool:
        return clinic_id in self._by_id

    def __iter__(self):
        return iter(self._by_id.values())


def parse_clinics(text: str, source: str = "clinics file") -> Directory:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ClinicsFileError(f"{source}: not valid YAML: {exc}") from None
    try:
        parsed = ClinicsFile.model_validate(data)
    except ValidationError as exc:
        raise ClinicsFileError(f"{source}: {one_line(exc)}") from None
    return Directory(parsed.clinics)


def load_clinics(path: Path | None) -> Directory:
    path = path or EXAMPLE_CLINICS
    try:
        text = path.read_text()
    except OSError as exc:
        raise ClinicsFileError(f"cannot read clinics file {path}: {exc.strerror}") from None
    return parse_clinics(text, str(path))
