"""Human labels of the alert reason codes (``shared/data/reason_labels.yaml``)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml

LABELS_FILE = Path(__file__).parent / "data" / "reason_labels.yaml"
FALLBACK_LANGUAGE = "en"


@cache
def labels() -> dict[str, dict[str, str]]:
    return yaml.safe_load(LABELS_FILE.read_text(encoding="utf-8"))


def reason_label(code: str, language: str = FALLBACK_LANGUAGE) -> str:
    """``ptosis`` -> ``drooping eyelid`` (``es``: ``párpado caído``); an unknown code as itself."""
    entry = labels().get(str(code), {})
    return entry.get(language) or entry.get(FALLBACK_LANGUAGE) or str(code).replace("_", " ")
