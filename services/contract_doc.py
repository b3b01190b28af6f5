"""docs/contract.md, generated from the code that enforces the contract: the event models
(``shared/events.py``), the topics, the HTTP endpoints, the settings and the clinics-file
models. A unit test fails when the file is stale.

    python -m services.contract_doc --write     # or: cyclecare contract --write
    python -m services.contract_doc --check     # exit 1 when docs/contract.md is stale
"""

from __future__ import annotations

import argparse
import sys
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from services.envhelp import described, variables
from shared import events
from shared.clinics import Clinic, Clinician, ClinicRules
from shared.config import Settings
from shared.endpoints import COMMON, ENDPOINTS
from shared.reasons import labels
from shared.topics import INTERNAL, PUBLIC

DOC = Path(__file__).parents[1] / "docs" / "contract.md"
COMMAND = "python -m services.contract_doc --write"

WRITERS = {
    "patients": "integrations, `cyclecare import`, ingest API", "treatments": "integrations, `cyclecare import`, ingest API",
    "due": "scheduler", "consent": "survey, notifier", "checkins": "survey", "alerts": "survey, scheduler, notifier",
    "deliveries": "notifier", "alert-actions": "portal, survey (SMS ack), scheduler (escalation), ingest API",
    "dlq": "every service",
}
# the topic of each event type; types not listed go by their first word (PREFIX_TOPIC)
TYPE_TOPIC = {"checkin.due": "due", "checkin.expired": "due", "checkin.completed": "checkins"}
PREFIX_TOPIC = {"patient": "patients", "treatment": "treatments", "reminder": "due", "cycle": "due", "timer": "due",
                "consent": "consent", "clinician": "alerts", "message": "deliveries", "alert": "alert-actions"}
INTERNAL_TYPES = {"outbound.requested", "sms.received", "survey.reply", "notifier.retry", "notifier.digest_item",
                  "notifier.digest_due", "scheduler.fire", "scheduler.alert_deadline"}
# what the JSON schema cannot say (the checks are AfterValidators)
NOTES = {"phone": "E.164, e.g. `+19165550123`", "to_phone": "E.164", "timezone": "IANA name, e.g. `America/Los_Angeles`",
         "event_id": "unique; generated when absent; the same cause gives the same id where the producer can tell",
         "reasons": "codes, see \"Alert reasons\"", "type": "the event's name (the heading of each event below)",
         "occurred_at": "when absent: the time it was read", "alert_id": "deterministic: the same cause gives the same id",
         "clinicians": "see below", "rules": "see below"}
ENVELOPE = ("type", "version", "event_id", "occurred_at")


def event_models() -> list[type[events.Event]]:
    union = typing.get_args(typing.get_args(events.AnyEvent)[0])
    return [m for m in union if _type_of(m) not in INTERNAL_TYPES]


def _type_of(model: type[BaseModel]) -> str:
    return str(model.model_fields["type"].default)


def topic_of(event_type: str) -> str:
    return TYPE_TOPIC.get(event_type) or PREFIX_TOPIC.get(event_type.split(".")[0], "other")


# --- types from the JSON schema ----------------------------------------------------------


def _type_text(prop: dict[str, Any], defs: dict[str, Any]) -> str:
    if "$ref" in prop:
        return _type_text(defs[prop["$ref"].rsplit("/", 1)[-1]], defs)
    if "anyOf" in prop:
        parts = [_type_text(p, defs) for p in prop["anyOf"] if p.get("type") != "null"]
        return " or ".join(parts)
    if "const" in prop:
        return f"`{prop['const']}`"
    if "enum" in prop:
        return " \\| ".join(f"`{v}`" for v in prop["enum"])
    kind = prop.get("type", "any")
    if kind == "array":
        return f"list of {_type_text(prop.get('items', {}), defs)}" + _bounds(prop, "minItems", "maxItems", " items")
    if kind == "object":
        return "object"
    if kind == "string":
        fmt = {"date": "date `YYYY-MM-DD`", "date-time": "RFC 3339 time with offset", "time": "time `HH:MM` (local)"}.get(prop.get("format", ""), "string")
        return fmt + _bounds(prop, "minLength", "maxLength", " chars")
    if kind in ("integer", "number"):
        return kind + _bounds(prop, "minimum", "maximum", "")
    return str(kind)


def _bounds(prop: dict[str, Any], low: str, high: str, unit: str) -> str:
    lo, hi = prop.get(low), prop.get(high)
    if lo is None and hi is None:
        return ""
    if hi is None:
        return f" ≥ {lo}{unit}" if unit == "" or lo != 1 else " (not empty)"
    return f" {lo if lo is not None else '…'}–{hi}{unit}"


def _default_text(prop: dict[str, Any], required: bool) -> str:
    if required:
        return "**required**"
    if "default" not in prop or prop["default"] is None:
        return "optional"
    default = prop["default"]
    if isinstance(default, (dict, list)) and len(str(default)) > 40:
        return "optional, defaults below"
    return f"optional, default `{str(default).lower() if isinstance(default, bool) else default}`"


def fields_table(model: type[BaseModel], skip: tuple[str, ...] = ()) -> list[str]:
    schema = model.model_json_schema(by_alias=True)
    defs, required = schema.get("$defs", {}), set(schema.get("required", ()))
    rows = ["| field | type | | notes |", "|---|---|---|---|"]
    for name, prop in schema.get("properties", {}).items():
        if name in skip:
            continue
        note = NOTES.get(name, prop.get("description", ""))
        rows.append(f"| `{name}` | {_type_text(prop, defs)} | {_default_text(prop, name in required)} | {note} |")
    return rows


# --- sections ---------------------------------------------------------------------------


def topics_section() -> list[str]:
    by_topic: dict[str, list[str]] = {}
    for model in event_models():
        by_topic.setdefault(topic_of(_type_of(model)), []).append(f"`{_type_of(model)}`")
    lines = ["## Topics", "", "JSON values, UTF-8; the key is the `patient_id` as UTF-8 bytes. `CYCLECARE_TOPIC_NAMESPACE`",
             "replaces the `cyclecare` prefix.", "", "| topic | written by | events |", "|---|---|---|"]
    for short in PUBLIC:
        what = ", ".join(by_topic.get(short, [])) or ("the dead-letter record below" if short == "dlq" else "")
        lines.append(f"| `cyclecare.{short}` | {WRITERS.get(short, '')} | {what} |")
    if by_topic.get("other"):
        lines.append(f"| (not yet on a topic here) | | {', '.join(by_topic['other'])} |")
    lines += ["", "Internal topics, part of no contract: " + ", ".join(f"`cyclecare.{t}`" for t in INTERNAL)
              + ", and Faust's changelog topics."]
    return lines


def events_section() -> list[str]:
    lines = ["## Events", "", "Every event carries the envelope below; unknown extra fields are ignored, so producers",
             "may add optional fields. A value that fails these checks is dead-lettered with the reason.", "",
             "### Envelope", "", *fields_table(events.Event)]
    for model in event_models():
        event_type = _type_of(model)
        doc = (model.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
        lines += ["", f"### `{event_type}` (`cyclecare.{topic_of(event_type)}`)", ""]
        if doc and not doc.startswith(("A base", "Create a new model")):
            lines += [doc, ""]
        lines += fields_table(model, skip=ENVELOPE)
    lines += ["", "### Dead-letter record (`cyclecare.dlq`)", "",
              "`type` (`dead_letter`), `version`, `service`, `topic`, `partition`, `offset`, `error` (why),",
              "`original_base64` (the untouched bytes) and `occurred_at`."]
    return lines


def reasons_section() -> list[str]:
    lines = ["## Alert reasons", "", "The codes of `clinician.alert` `reasons`, and what clinicians read for them",
             "(`shared/data/reason_labels.yaml`).", "", "| code | English | Spanish |", "|---|---|---|"]
    lines += [f"| `{code}` | {text.get('en', '')} | {text.get('es', '')} |" for code, text in labels().items()]
    return lines


def http_section() -> list[str]:
    lines = ["## HTTP", "", "| endpoint | service | what |", "|---|---|---|"]
    lines += [f"| `{e.method} {e.path}{'…' if e.path.endswith('/') else ''}` | {e.service} | {e.what} |" for e in ENDPOINTS]
    lines += [f"| `{c}` | every worker | {w} |" for c, w in zip(COMMON, ("alive", "connected, assigned, recovered (503 otherwise)", "Prometheus metrics"))]
    lines += ["", "A path a worker does not serve gets a JSON 404 (405 for a wrong method) whose `hint` names the",
              "service that serves it."]
    return lines


def settings_section() -> list[str]:
    lines = ["## Environment variables", "", "| variable | meaning | default | contract |", "|---|---|---|---|"]
    for name in variables():
        entry = described().get(name, {})
        lines.append(f"| `{name}` | {entry.get('meaning', '(not described)')} | {entry.get('default', '')} "
                     f"| {'yes' if entry.get('contract') else ''} |")
    return lines


def clinics_section() -> list[str]:
    return ["## Clinics file (`CYCLECARE_CLINICS`)", "",
            "YAML (JSON is accepted, being YAML): `clinics:`, a list of clinics. An unknown key is an error naming it.",
            "", "### A clinic", "", *fields_table(Clinic), "", "### `clinicians:` entries", "", *fields_table(Clinician),
            "", "### `rules:` (each overrides a clinical default)", "", *fields_table(ClinicRules)]


def render() -> str:
    sections = [topics_section(), events_section(), reasons_section(), http_section(), settings_section(), clinics_section()]
    head = ["# The cyclecare contract", "",
            f"<!-- Generated from the code by `{COMMAND}`; do not edit by hand. -->", "",
            "Integrations rely on everything here. It changes only by added optional fields or a new `version`."]
    body = "\n\n".join("\n".join(section) for section in sections)
    return "\n".join(head) + "\n\n" + body + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help=f"write {DOC.name}")
    parser.add_argument("--check", action="store_true", help="exit 1 when it is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.write:
        DOC.parent.mkdir(exist_ok=True)
        DOC.write_text(text, encoding="utf-8")
        print(f"wrote {DOC}")
        return 0
    current = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    if current != text:
        print(f"{DOC} is stale: run `{COMMAND}`", file=sys.stderr)
        return 1
    print(f"{DOC} is up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
