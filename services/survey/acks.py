"""Clinicians taking alerts by SMS ("ACK 48"), pure.

A clinician's phone has a *view*: the urgent and high alerts of the clinics that clinician
works for, each with its lifecycle (:class:`shared.alert_state.AlertState`, the one owner of
that rule), the patient's initial and who the alert went to. It is kept per phone (the
inbound SMS topic is keyed by phone), fed with every alert and action re-keyed by the phone
of each clinician of the clinic, and read when that phone's reply arrives.

* :func:`parse_ack` reads a reply: ``ACK 48``, ``ack48``, ``Ack  48``, ``OK 48``, or the word alone.
* :func:`answer` decides: acknowledge the one alert the code (or, for the word alone, the
  clinician's single open alert) means, or explain why not: the code fits several alerts
  (pick one with a longer code), an alert already taken or closed (who took it), an unknown
  code (how to reply). It never guesses between alerts and only ever sees the clinician's
  own clinics' alerts.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, TypeAdapter

from shared.ack_codes import ack_code, distinguishing, matching
from shared.alert_state import AlertAction, AlertState
from shared.clinics import Clinic, Clinician
from shared.events import AlertAcknowledged, deterministic_id
from shared.notifier_events import OutboundRequested
from shared.survey_events import AlertNoted

ACK_WORDS_PATH = Path(__file__).with_name("ack_words.yaml")
CLOSED_KEPT = timedelta(hours=1)  # a taken or closed alert is remembered this long, to say who took it
PENDING_KEPT = timedelta(hours=1)  # an action whose alert has not arrived yet waits this long
OPEN_KEPT = 500  # open alerts per phone at most (the oldest are forgotten first)
STATE = TypeAdapter(AlertState)


class AckCommand(BaseModel):
    """A reply that takes an alert: ``code`` is the digits typed, None for the word alone."""

    model_config = ConfigDict(frozen=True)

    code: str | None = None


@functools.cache
def _ack_pattern() -> re.Pattern[str]:
    words = yaml.safe_load(ACK_WORDS_PATH.read_text(encoding="utf-8"))["ack_words"]
    alternatives = "|".join(re.escape(str(w)) for w in sorted(words, key=len, reverse=True))
    # the word, then a code (optionally after "#", ":" or "-") followed by anything, or nothing but punctuation
    return re.compile(rf"^\s*(?:{alternatives})(?:\s*[#:\-]?\s*(?P<code>[0-9]{{1,12}})(?![0-9])(?:\W.*)?|[\s.!]*)$",
                      re.IGNORECASE | re.DOTALL)


def parse_ack(text: str) -> AckCommand | None:
    """The ACK a reply carries, or None when it is not one."""
    found = _ack_pattern().match(text[:200])
    return AckCommand(code=found.group("code")) if found else None


# --- the view of one phone ------------------------------------------------------------------


class Seen(BaseModel):
    """One alert as a clinician's phone knows it."""

    model_config = ConfigDict(frozen=True)

    state: AlertState
    initial: str
    alerted: tuple[str, ...] = ()
    closed_at: datetime | None = None  # when this view saw it taken or closed

    def went_to(self, clinician_id: str) -> bool:
        return clinician_id in self.alerted or clinician_id in self.state.paged


View = dict[str, Any]  # alert id -> {"seen": Seen as JSON} or {"pending": [action JSON], "since": time}


def seen_in(view: View) -> dict[str, Seen]:
    return {alert_id: Seen.model_validate(entry["seen"]) for alert_id, entry in view.items() if "seen" in entry}


def note_alert(view: View, noted: AlertNoted, now: datetime) -> View:
    """The view with a newly raised alert, and any action that arrived before it applied."""
    if "seen" in view.get(noted.alert_id, {}):
        return view
    state = AlertState(alert_id=noted.alert_id, patient_id=noted.patient_id, clinic_id=noted.clinic_id,
                       severity=noted.severity, raised_at=noted.raised_at, summary=noted.summary)
    for stored in view.get(noted.alert_id, {}).get("pending", []):
        state = state.apply(_ACTION.validate_python(stored))
    seen = Seen(state=state, initial=noted.initial, alerted=tuple(noted.alerted))
    return _pruned(_with(view, _closing(seen, seen, now)), now)


_ACTION: TypeAdapter[AlertAction] = TypeAdapter(AlertAction)


def note_action(view: View, action: AlertAction, now: datetime) -> View:
    entry = view.get(action.alert_id, {})
    if "seen" not in entry:  # the alert is on its way: keep the action for it
        pending = [*entry.get("pending", []), _ACTION.dump_python(action, mode="json")][-20:]
        return _pruned({**view, action.alert_id: {"pending": pending, "since": now.isoformat()}}, now)
    before = Seen.model_validate(entry["seen"])
    after = before.model_copy(update={"state": before.state.apply(action)})
    return _pruned(_with(view, _closing(before, after, now)), now)


def _with(view: View, seen: Seen) -> View:
    return {**view, seen.state.alert_id: {"seen": seen.model_dump(mode="json")}}


def _closing(before: Seen, after: Seen, now: datetime) -> Seen:
    if after.state.status != "open" and (before.closed_at is None or before.state.status == "open"):
        return after.model_copy(update={"closed_at": before.closed_at or now})
    return after


def _pruned(view: View, now: datetime) -> View:
    """Open alerts stay (the newest ``OPEN_KEPT``); taken or closed ones and stray actions
    are forgotten after an hour: memory per phone stays bounded."""
    kept: View = {}
    for alert_id, entry in view.items():
        if "pending" in entry and now - datetime.fromisoformat(entry["since"]) <= PENDING_KEPT:
            kept[alert_id] = entry
        elif "seen" in entry:
            closed_at = entry["seen"].get("closed_at")
            if closed_at is None or now - datetime.fromisoformat(closed_at) <= CLOSED_KEPT:
                kept[alert_id] = entry
    open_ids = [a for a, e in kept.items() if "seen" in e and e["seen"].get("closed_at") is None]
    for alert_id in open_ids[:-OPEN_KEPT] if len(open_ids) > OPEN_KEPT else ():
        del kept[alert_id]
    return kept


# --- answering a reply ------------------------------------------------------------------


class Answer(BaseModel):
    """What to do about one clinician's reply: the new view, the acknowledgement to publish
    (if any) and the reply's message context."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    view: View
    acknowledged: AlertAcknowledged | None = None
    reply: dict[str, Any]


def answer(view: View, command: AckCommand | None, people: list[tuple[Clinic, Clinician]], now: datetime,
           sid: str) -> Answer:
    """The answer to reply ``sid`` from a phone that belongs to ``people`` (clinicians, with
    their clinic). ``command`` None: the reply was not an ACK at all (how to take an alert)."""
    mine = {clinic.id: (clinic, person) for clinic, person in people}
    alerts = {a: s for a, s in seen_in(view).items() if s.state.clinic_id in mine}
    if command is None:
        return Answer(view=view, reply=_reply("how_to"))
    if command.code is None:
        open_for_me = [a for a, s in alerts.items()
                       if s.state.status == "open" and s.went_to(mine[s.state.clinic_id][1].id)]
        if not open_for_me:
            return Answer(view=view, reply=_reply("none_open"))
        if len(open_for_me) > 1:
            return Answer(view=view, reply=_which(open_for_me, alerts, now, code=None))
        return _take(view, alerts[open_for_me[0]], mine, now, sid)
    fits = matching(command.code, alerts)
    if not fits:
        return Answer(view=view, reply=_reply("how_to", code=command.code))
    if len(fits) > 1:
        return Answer(view=view, reply=_which(fits, alerts, now, code=command.code))
    return _take(view, alerts[fits[0]], mine, now, sid)


def _take(view: View, seen: Seen, mine: dict[str, tuple[Clinic, Clinician]], now: datetime, sid: str) -> Answer:
    clinic, person = mine[seen.state.clinic_id]
    state = seen.state
    choice = [_choice(seen, now, ack_code(state.alert_id))]
    if state.status == "resolved":
        return Answer(view=view, reply=_reply("already_resolved", choices=choice, by=_name(clinic, state.resolved_by)))
    if state.status == "acknowledged":
        since = _minutes(now - state.acknowledged_at) if state.acknowledged_at else 0
        return Answer(view=view, reply=_reply("already_taken", choices=choice, by=_name(clinic, state.acknowledged_by),
                                              since_minutes=since))
    ack = AlertAcknowledged(
        event_id=deterministic_id("sms_ack", sid), alert_id=state.alert_id,
        patient_id=state.patient_id, clinic_id=state.clinic_id, by=person.id, via="sms", acknowledged_at=now,
    )
    taken = note_action(view, ack, now)  # at once: a second "ACK 48" from this phone is told who took it
    return Answer(view=taken, acknowledged=ack, reply=_reply("taken", choices=choice))


def _which(alert_ids: list[str], alerts: dict[str, Seen], now: datetime, code: str | None) -> dict[str, Any]:
    newest_first = sorted(alert_ids, key=lambda a: alerts[a].state.raised_at, reverse=True)
    codes = distinguishing(newest_first) if code else _short_or_distinguishing(newest_first)
    return _reply("which", code=code, choices=[_choice(alerts[a], now, codes[a]) for a in newest_first])


def _short_or_distinguishing(alert_ids: list[str]) -> dict[str, str]:
    """The codes the clinician has seen when they tell the alerts apart, else longer ones."""
    short = {a: ack_code(a) for a in alert_ids}
    return short if len(set(short.values())) == len(short) else distinguishing(alert_ids)


def _choice(seen: Seen, now: datetime, code: str) -> dict[str, Any]:
    return {"initial": seen.initial, "age_minutes": _minutes(now - seen.state.raised_at), "code": code}


def _minutes(span: timedelta) -> int:
    return max(0, int(span.total_seconds() // 60))


def _name(clinic: Clinic, clinician_id: str | None) -> str:
    person = clinic.clinician(clinician_id) if clinician_id else None
    return person.name if person else (clinician_id or "someone")


def _reply(outcome: str, *, code: str | None = None, choices: list[dict[str, Any]] | None = None,
           by: str | None = None, since_minutes: int = 0) -> dict[str, Any]:
    return {"outcome": outcome, "code": code, "choices": choices or [], "by": by, "since_minutes": since_minutes}


def overtaken(before: View, after: View, alert_id: str, people: list[tuple[Clinic, Clinician]],
              now: datetime) -> dict[str, Any] | None:
    """The notice for a clinician told "Taken" whose acknowledgement turned out later than a
    colleague's (two replies crossing): the earliest one counts, so they hear who has it."""
    was, now_seen = seen_in(before).get(alert_id), seen_in(after).get(alert_id)
    if was is None or now_seen is None:
        return None
    mine = {clinic.id: (clinic, person) for clinic, person in people}
    if now_seen.state.clinic_id not in mine:
        return None
    clinic, person = mine[now_seen.state.clinic_id]
    state = now_seen.state
    if was.state.acknowledged_by != person.id or state.acknowledged_by in (None, person.id):
        return None
    since = _minutes(now - state.acknowledged_at) if state.acknowledged_at else 0
    return _reply("taken_first", choices=[_choice(now_seen, now, ack_code(alert_id))],
                  by=_name(clinic, state.acknowledged_by), since_minutes=since)


def initial_of(first_name: str, patient_id: str) -> str:
    """How a confirmation names the patient: the first letter of the first name ("A."),
    or the patient's reference when the survey has no name for them."""
    name = first_name.strip()
    return f"{name[0].upper()}." if name else patient_id


def reply_request(sid: str, phone: str, clinic_id: str, reply: dict[str, Any]) -> OutboundRequested:
    """The reply SMS (to reply ``sid``, or another cause), sent by the notifier to this phone
    only (no patient involved)."""
    key = deterministic_id(sid, phone, "ack_reply")
    return OutboundRequested(event_id=key, message_key=key, patient_id=None, clinic_id=clinic_id, to_phone=phone,
                             kind="ack_reply", language="en", urgent=True, context=reply)


def noted_from(alert_id: str, patient_id: str, clinic: Clinic, severity: str, summary: str, raised_at: datetime,
               initial: str, cause: str) -> AlertNoted:
    return AlertNoted(event_id=deterministic_id("noted", cause), alert_id=alert_id, patient_id=patient_id,
                      clinic_id=clinic.id, severity=severity, summary=summary, raised_at=raised_at, initial=initial,
                      alerted=[c.id for c in clinic.on_call])


def clinician_phones(clinic: Clinic) -> list[str]:
    return list(dict.fromkeys(c.phone for c in clinic.clinicians if c.phone))

