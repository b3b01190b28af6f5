"""How a validation error reads, everywhere: the dead-letter reason, an HTTP 422's details,
a bad setting, a bad clinics file. Each error is ``field.path: message``; long texts are
cut, saying how much was cut."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from shared.limits import MAX_ERROR_CHARS

PART_CHARS = 200  # the longest field path or message kept of one error


def capped(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit} more characters]"


def field_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """Each error as ``{field, error}`` (the field's dotted path; ``""`` for the whole value)."""
    return [
        {"field": capped(".".join(str(p) for p in err["loc"]), PART_CHARS), "error": capped(err["msg"], PART_CHARS)}
        for err in exc.errors()
    ]


def one_line(exc: ValidationError, whole: str = "") -> str:
    """Every error on one line, ``field: message; ...``; ``whole`` names an error of the whole value."""
    return "; ".join(f"{e['field'] or whole}: {e['error']}" for e in field_errors(exc))
