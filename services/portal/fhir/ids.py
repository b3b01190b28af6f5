"""The ids cyclecare gives its FHIR resources: shared by the builders and the projection
(which queues the push sink's resources by id). A cyclecare ``patient_id`` is the FHIR
``Patient.id``; identifiers live under ``urn:cyclecare:``."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Any

URN = "urn:cyclecare:"
_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def fhir_id(raw: str) -> str:
    """``raw`` when it is a valid FHIR id, else a stable digest of it (the identifier keeps ``raw``)."""
    return raw if _FHIR_ID.fullmatch(raw) else "h-" + hashlib.sha256(raw.encode()).hexdigest()[:40]


def adverse_event_keys(checkin_id: str, red_flags: bool | None, effects: Iterable[dict[str, Any]]) -> list[str]:
    """One AdverseEvent for the red flags (when reported), then one per common effect."""
    keys = [f"{checkin_id}-red-flags"] if red_flags else []
    return keys + [f"{checkin_id}-effect-{e['code']}" for e in effects]


_DERIVED = re.compile(r"^(.+)-(headache-days|medication-days|red-flags|effect-\d+)$")


def source_candidates(resource_id: str) -> list[str]:
    """The check-in, alert or message ids a resource id may come from (a read by id)."""
    derived = _DERIVED.match(resource_id)
    return [resource_id, derived[1]] if derived else [resource_id]
