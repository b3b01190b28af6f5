"""The one place where bytes become events and events become bytes.

Values on the wire are plain JSON objects (no Faust metadata), so any Kafka client can
read and write them. Reading validates against the contract models; a record that does
not validate becomes a :class:`DeadLetter` that names the error.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from pydantic import BaseModel, ValidationError

from shared.events import ANY_EVENT, Event, utcnow


class DecodeError(ValueError):
    """A record that is not a valid contract event; ``str()`` says why."""


def encode(event: BaseModel) -> bytes:
    return event.model_dump_json(exclude_none=False).encode()


def decode(raw: bytes | None) -> Event:
    if raw is None:
        raise DecodeError("empty record (tombstone)")
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DecodeError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise DecodeError("not a JSON object")
    try:
        return ANY_EVENT.validate_python(data)
    except ValidationError as exc:
        raise DecodeError(_reasons(exc)) from None


def _reasons(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'event'}: {err['msg']}" for err in exc.errors()
    )


def validation_reasons(exc: ValidationError) -> list[dict[str, Any]]:
    """The reasons of a validation error in a form safe to return over HTTP."""
    return [
        {"field": ".".join(str(p) for p in err["loc"]), "error": err["msg"]} for err in exc.errors()
    ]


def dead_letter(
    raw: bytes | None, *, topic: str, partition: int, offset: int, error: str, service: str
) -> bytes:
    """The DLQ record: the original bytes (base64), where they came from and why they failed."""
    record = {
        "type": "dead_letter",
        "version": 1,
        "service": service,
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "error": error,
        "original_base64": base64.b64encode(raw or b"").decode(),
        "occurred_at": utcnow().isoformat(),
    }
    return json.dumps(record).encode()
