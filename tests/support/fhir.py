"""What an EHR sends to ``POST /fhir/R4``: Patients, Procedures and Bundles built with the
fhir.resources R4B models (for the integration tests and ``bench/fhir``)."""

from __future__ import annotations

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.procedure import Procedure
from fhir.resources.R4B.resource import Resource

from services.scheduler.fhir_in import CLINIC_SYSTEM
from shared.clinics import CPT

FHIR_HEADERS = {"Content-Type": "application/fhir+json"}


def ehr_patient(patient_id: str, phone: str | None, clinic_id: str = "rocklin", given: str = "Ana") -> Patient:
    telecom = [{"system": "phone", "value": phone, "use": "mobile"}] if phone else []
    return Patient(id=patient_id, name=[{"given": [given], "family": "Example"}], telecom=telecom,
                   managingOrganization={"identifier": {"system": CLINIC_SYSTEM, "value": clinic_id}})


def ehr_procedure(procedure_id: str, patient_id: str, performed: str, code: str = "64615") -> Procedure:
    return Procedure(id=procedure_id, status="completed", subject={"reference": f"Patient/{patient_id}"},
                     code={"coding": [{"system": CPT, "code": code}]}, performedDateTime=performed)


def bundle_of(resources: list[Resource], kind: str = "transaction") -> Bundle:
    return Bundle(type=kind, entry=[
        {"resource": r, "request": {"method": "PUT", "url": f"{r.get_resource_type()}/{r.id}"}} for r in resources])


def as_body(bundle: Bundle) -> str:
    return bundle.model_dump_json(exclude_none=True)
