"""The one place where bytes become events and events become bytes.

Values on the wire are plain JSON objects (no Faust metadata), so any Kafka client can
read and write them. Reading validates against the contract models; a record that does
not validate becomes a :class:`DeadLetter` that names the error.

Reading is bounded before anything else happens (README, "Limits"): the size of the
value and of the key is checked before decoding, JSON deeper than ``MAX_JSON_DEPTH`` or
with an integer longer than ``MAX_INT_DIGITS`` is refused, and the error text is capped,
so one hostile record costs little work and yields a short, printable reason.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Annotated, Any, Union

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from shared import events, notifier_events, scheduler_events, survey_events
from shared.envelope import Event, utcnow
from shared.validation import capped, field_errors, one_line
from shared.limits import (
    MAX_DLQ_ORIGINAL_BYTES, MAX_INT_DIGITS, MAX_JSON_DEPTH, MAX_KEY_BYTES, MAX_RECORD_BYTES,
    MAX_TYPE,
)


# Every event cyclecare reads: the public contract, then each service's internal family.
ALL_EVENTS: tuple[type[Event], ...] = (
    *events.CONTRACT_EVENTS, *survey_events.EVENTS, *notifier_events.EVENTS, *scheduler_events.EVENTS,
)
ANY_EVENT: TypeAdapter[Any] = TypeAdapter(Annotated[Union[ALL_EVENTS], Field(discriminator="type")])  # type: ignore[valid-type]


class DecodeError(ValueError):
    """A record that is not a valid contract event; ``str()`` says why."""


def encode(event: BaseModel) -> bytes:
    return event.model_dump_json(exclude_none=False).encode()


def decode(raw: bytes | None) -> Event:
    if raw is None:
        raise DecodeError("empty record (tombstone)")
    data = loads_bounded(raw, what="record", limit=MAX_RECORD_BYTES)
    if not isinstance(data, dict):
        raise DecodeError("not a JSON object")
    check_type(data.get("type"))
    try:
        return ANY_EVENT.validate_python(data)
    except ValidationError as exc:
        raise DecodeError(_reasons(exc)) from None


def decode_key(raw: bytes | None) -> str:
    """A record key as text: UTF-8, at most ``MAX_KEY_BYTES``; no key is ``""``."""
    if raw is None:
        return ""
    if len(raw) > MAX_KEY_BYTES:
        raise DecodeError(f"key of {len(raw)} bytes exceeds the limit of {MAX_KEY_BYTES} bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(f"key is not UTF-8: {exc.reason} at byte {exc.start}") from None


def decode_record(key: bytes | None, value: bytes | None) -> tuple[str, Event]:
    """Everything that happens to a consumed record before its handler runs."""
    return decode_key(key), decode(value)


def loads_bounded(raw: bytes, *, what: str, limit: int) -> Any:
    """JSON from untrusted bytes, within the size, depth and integer limits; raises
    :class:`DecodeError` with a short reason for anything else."""
    if len(raw) > limit:
        raise DecodeError(f"{what} of {len(raw)} bytes exceeds the limit of {limit} bytes")
    try:
        data = json.loads(raw.decode("utf-8"), parse_int=_bounded_int, parse_constant=_no_constant)
    except UnicodeDecodeError as exc:
        raise DecodeError(f"not UTF-8: {exc.reason} at byte {exc.start}") from None
    except json.JSONDecodeError as exc:
        raise DecodeError(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise DecodeError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    except _Refused as exc:
        raise DecodeError(str(exc)) from None
    if _brackets(raw) > MAX_JSON_DEPTH and _deeper_than(data, MAX_JSON_DEPTH):
        raise DecodeError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return data


class _Refused(Exception):
    """Raised from inside the JSON parser's hooks (a ValueError would read as bad JSON)."""


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _Refused(f"an integer of {len(text)} digits exceeds the limit of {MAX_INT_DIGITS} digits")
    return int(text)


def _no_constant(name: str) -> float:
    raise _Refused(f"{name} is not a JSON number")


def _brackets(raw: bytes) -> int:
    """An upper bound on the nesting: walking every decoded value cost the portal's projection
    about 7% of its time; a record with no more brackets than the limit cannot be too deep."""
    return raw.count(b"{") + raw.count(b"[")


def _deeper_than(data: Any, limit: int) -> bool:
    """Iterative, so that it cannot itself run out of stack."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            value = list(value.values())
        if isinstance(value, list):
            if depth >= limit:
                return True
            stack.extend((item, depth + 1) for item in value if isinstance(item, (dict, list)))
    return False


def check_type(value: object) -> None:
    """The discriminator first: pydantic quotes an unknown tag whole in its message."""
    if not isinstance(value, str):
        raise DecodeError("type: missing or not a string")
    if len(value) > MAX_TYPE:
        raise DecodeError(f"type: {len(value)} characters exceed the limit of {MAX_TYPE}")


def _reasons(exc: ValidationError) -> str:
    return capped(one_line(exc, whole="event"))


def validation_reasons(exc: ValidationError) -> list[dict[str, Any]]:
    """The reasons of a validation error in a form safe to return over HTTP."""
    return field_errors(exc)


def dead_letter(
    raw: bytes | None, *, topic: str, partition: int, offset: int, error: str, service: str
) -> bytes:
    """The DLQ record: the original bytes (base64), where they came from and why they failed.

    An original longer than ``MAX_DLQ_ORIGINAL_BYTES`` is kept in part (``original_truncated``,
    with the size and SHA-256 of the whole) so that the dead letter itself fits in a Kafka
    record; the whole stays at its topic, partition and offset."""
    raw = raw or b""
    record = {
        "type": "dead_letter",
        "version": 1,
        "service": service,
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "error": capped(error),
        "original_base64": base64.b64encode(raw[:MAX_DLQ_ORIGINAL_BYTES]).decode(),
        "occurred_at": utcnow().isoformat(),
    }
    if len(raw) > MAX_DLQ_ORIGINAL_BYTES:
        record |= {"original_truncated": True, "original_size": len(raw),
                   "original_sha256": hashlib.sha256(raw).hexdigest()}
    return json.dumps(record).encode()


def dead_letter_key(key: bytes | None) -> bytes | None:
    """The key a dead letter is sent with: the original one, unless it is itself too long."""
    return key if key is None or len(key) <= MAX_KEY_BYTES else key[:MAX_KEY_BYTES]
