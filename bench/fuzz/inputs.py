"""Hostile and sloppy inputs for ``python -m bench.fuzz``: valid documents, the same with
fields replaced by the values an attacker or a sloppy integration sends, and raw bytes.
Seeded, so a run can be repeated."""

from __future__ import annotations

import json
import random
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

PHONE = "+19165550123"
PATIENT = {"type": "patient.enrolled", "patient_id": "p-1", "clinic_id": "rocklin", "first_name": "Ana",
           "phone": PHONE, "timezone": "America/Los_Angeles", "sms_consent": True}
TREATMENT = {"type": "treatment.recorded", "treatment_id": "t-1", "patient_id": "p-1", "clinic_id": "rocklin",
             "administered_on": "2026-03-02"}
SMS = {"type": "sms.received", "message_sid": "SM" + "0" * 32, "from_phone": PHONE, "to_phone": "+19165550100",
       "body": "no", "received_at": "2026-03-02T10:00:00+00:00"}
SMS_FORM = {"MessageSid": "SM" + "0" * 32, "AccountSid": "ACtest00000000000000000000000000", "From": PHONE,
            "To": "+19165550100", "Body": "no", "NumMedia": "0"}
STATUS_FORM = {"MessageSid": "SM" + "0" * 32, "MessageStatus": "delivered", "AccountSid": "ACtest00000000000000000000000000"}
FORM = "application/x-www-form-urlencoded"


def hostile_text(rng: random.Random) -> str:
    # mostly around the field limits; now and then past the record and body limits
    size = rng.choices([0, 1, 33, 65, 129, 300, 1601, 10_001, 70_000, 300_000], [10, 10, 10, 10, 10, 10, 10, 5, 1, 0.3])[0]
    unit = rng.choice(["x", "1", "+1 ", "a@", ".", "❾", "é", "\u0000", "\u202e", "🙂", "Europe/", "../", "%", "&=",
                       "can't swallow ", "STOP "])
    return (unit * (size // len(unit) + 1))[:size]


def hostile_value(rng: random.Random) -> object:
    kind = rng.randrange(9)
    if kind == 0:
        return hostile_text(rng)
    if kind == 1:
        return rng.choice([None, True, False, 0, -1, 2**63, -(2**63) - 1, 1.5, [], {}])
    if kind == 2:
        return _nested(rng.choice([5, 31, 33, 200, 900]))
    if kind == 3:
        return [hostile_text(rng) for _ in range(rng.randrange(1, 5))]
    if kind == 4:
        return {hostile_text(rng)[:50]: hostile_text(rng)[:50] for _ in range(rng.randrange(1, 5))}
    if kind == 5:
        return rng.choice(["2026-02-30", "2026-03-02T10:00:00", "Mars/Olympus", "+1", "12", "es", "xx", "+1" + "9" * 40])
    if kind == 6:
        return rng.choice([PHONE, "America/Los_Angeles", "rocklin", "2026-03-02", "en"])  # valid, maybe misplaced
    return hostile_text(rng)[:200]


def _nested(depth: int) -> object:
    value: object = []
    for _ in range(depth):
        value = [value]
    return value


def mutated_json(rng: random.Random, base: dict) -> bytes:
    """A document: valid, or with fields replaced, removed or added, or broken as bytes."""
    doc = dict(base)
    doc["event_id"] = f"e-{rng.getrandbits(48):x}"
    for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
        field = rng.choice([*base, "event_id", "version", "occurred_at", "email", "baseline_headache_days", "units",
                            "interval_weeks", "language", hostile_text(rng)[:30]])
        if rng.random() < 0.15:
            doc.pop(field, None)
        else:
            doc[field] = hostile_value(rng)
    raw = json.dumps(doc, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")
    return _broken(rng, raw) if rng.random() < 0.2 else raw


def _broken(rng: random.Random, raw: bytes) -> bytes:
    kind = rng.randrange(8)
    if kind == 0:
        return raw[: rng.randrange(len(raw) + 1)]
    if kind == 1:
        at = rng.randrange(len(raw) + 1)
        return raw[:at] + bytes([rng.randrange(256)]) + raw[at:]
    if kind == 2:
        return b"\xef\xbb\xbf" + raw
    if kind == 3:
        depth = rng.choice([50, 5000, 50_000])
        return b"[" * depth + raw + b"]" * depth
    if kind == 4:
        return raw[:-1] + b', "n": ' + b"9" * rng.choice([19, 20, 400, 5000]) + b"}"
    if kind == 5:
        return raw.decode("utf-8", "surrogatepass").encode("utf-16")
    if kind == 6:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(200)))
    return raw.replace(b"1", b"NaN", 1)


def kafka_key(rng: random.Random) -> bytes | None:
    return rng.choice([b"p-1", b"p-1", PHONE.encode(), None, b"\xff\xfe", b"k" * 300, "ключ".encode()])


def ingest_request(rng: random.Random, base: dict, token: str) -> tuple[bytes, dict[str, str]]:
    headers = {"Content-Type": rng.choice(["application/json"] * 6 + ["text/plain", "application/json; charset=latin-1"])}
    if rng.random() < 0.95:
        headers["Authorization"] = f"Bearer {token}"
    if rng.random() < 0.02:
        return b"x" * rng.choice([65_537, 300_000]), headers
    return mutated_json(rng, base), headers


def webhook_request(rng: random.Random, base: dict[str, str], path: str, public_url: str,
                    auth_token: str) -> tuple[bytes, dict[str, str]]:
    form = dict(base)
    form["MessageSid"] = "SM" + f"{rng.getrandbits(128):032x}"
    for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
        field = rng.choice([*base, "SmsSid", "ErrorCode", "SmsStatus", hostile_text(rng)[:20]])
        if rng.random() < 0.15:
            form.pop(field, None)
        else:
            form[field] = hostile_text(rng)
    headers = {"Content-Type": FORM}
    roll = rng.random()
    if roll < 0.75:
        headers["X-Twilio-Signature"] = RequestValidator(auth_token).compute_signature(public_url + path, form)
    elif roll < 0.9:
        headers["X-Twilio-Signature"] = "Zm9yZ2Vk"
    body = urlencode(form).encode()
    if rng.random() < 0.15:
        body = _broken(rng, body)
        headers["Content-Type"] = rng.choice([FORM, f"{FORM}; charset=x-unknown", "multipart/form-data; boundary=a",
                                              "text/plain", f"{FORM}; charset=utf-8"])
    return body, headers
