"""``cyclecare run --demo``: a small clinic, a treatment cycle on a fast clock, and
patients who answer their check-ins through the real, signed webhook."""

from __future__ import annotations

import time
from datetime import date, timedelta

import aiohttp
import click
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from twilio.request_validator import RequestValidator

from shared.clock import clock_from
from shared.codec import DecodeError, decode, encode
from shared.config import load_settings
from shared.events import ClinicianAlert, MessageSent, PatientEnrolled, TreatmentRecorded
from shared.readiness import NotReady, wait_until_ready
from shared.topics import Topics

PATIENTS = [
    PatientEnrolled(patient_id="demo-ana", clinic_id="rocklin", first_name="Ana", phone="+19165550111",
                    timezone="America/Los_Angeles", language="en", sms_consent=True, baseline_headache_days=20),
    PatientEnrolled(patient_id="demo-ben", clinic_id="rocklin", first_name="Ben", phone="+19165550112",
                    timezone="America/Los_Angeles", language="en", sms_consent=True, baseline_headache_days=18),
    PatientEnrolled(patient_id="demo-carla", clinic_id="sevilla", first_name="Carla", phone="+34600000113",
                    timezone="Europe/Madrid", language="es", sms_consent=True, baseline_headache_days=22),
    PatientEnrolled(patient_id="demo-dan", clinic_id="rocklin", first_name="Dan", phone="+19165550114",
                    timezone="America/Los_Angeles", language="en", sms_consent=True),
]
# What each patient answers, question by question (first answer to the first message, ...).
# What each patient answers to each question, check-in after check-in (the last answer repeats).
SCRIPTS = {
    "demo-ana": {"checkin_q1": ["yes, it is hard to swallow since yesterday", "no"], "checkin_q2": ["1m", "0"],
                 "checkin_q3a": ["9"], "checkin_q3b": ["3"]},
    "demo-ben": {"checkin_q1": ["No"], "checkin_q2": ["2s", "2m", "0"], "checkin_q3a": ["12", "ten"], "checkin_q3b": ["4"]},
    "demo-carla": {"checkin_q1": ["no"], "checkin_q2": ["0"], "checkin_q3a": ["veinte", "18"], "checkin_q3b": ["8"]},
    "demo-dan": {"checkin_q1": ["STOP"]},
}


# What the viewer should look for as the simulated clock passes each day of the cycle.
MILESTONES = {
    2: "day-2 side-effect check-ins", 7: "day-7 side-effect check-ins", 14: "day-14 side-effect check-ins",
    28: "headache check-ins (day 28)", 56: "headache check-ins (day 56)", 70: "first booking reminders (day 70)",
    77: "headache check-ins (day 77)", 81: "second booking reminders (day 81)",
    84: "12 weeks: the next treatment is due", 98: "no new treatment recorded: overdue alerts to the clinic (day 98)",
}


def say(started: float, text: str) -> None:
    click.secho(f"[demo +{time.monotonic() - started:5.1f}s] {text}", fg="cyan")


async def wait_ready(ports: dict[str, int], timeout: float = 120.0) -> None:
    for name, port in ports.items():
        try:
            await wait_until_ready(f"http://127.0.0.1:{port}", timeout)
        except NotReady:
            raise SystemExit(f"cyclecare: the {name} worker did not become ready in {timeout:.0f}s") from None


async def post_reply(http: aiohttp.ClientSession, public_url: str, token: str, phone: str, body: str, sid: str) -> int:
    url = public_url.rstrip("/") + "/twilio/sms"
    form = {"MessageSid": sid, "AccountSid": "ACdemo", "From": phone, "To": "+19165550100", "Body": body}
    signature = RequestValidator(token).compute_signature(url, form)
    async with http.post(url, data=form, headers={"X-Twilio-Signature": signature}) as response:
        return response.status


async def run_demo(env: dict[str, str], ports: dict[str, int], exit_after: float | None) -> None:
    settings = load_settings(env)
    topics = Topics(settings.topic_namespace)
    started = time.monotonic()
    say(started, "waiting for the workers to be ready…")
    await wait_ready(ports)
    from services.portal.cli import demo_user

    email, password = await demo_user(settings, sorted({p.clinic_id for p in PATIENTS}))
    say(started, f"clinician portal: {settings.portal_url}  (sign in as {email} / {password})")
    say(started, "workers ready; enrolling 4 patients, each treated 2 days ago (simulated clock)")
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()
    today = clock_from(settings).now().date()  # the simulated clock has run while workers started
    for patient in PATIENTS:
        await producer.send_and_wait(topics.of(patient), encode(patient), key=patient.patient_id.encode())
        treatment = TreatmentRecorded(
            treatment_id=f"{patient.patient_id}-t1", patient_id=patient.patient_id, clinic_id=patient.clinic_id,
            administered_on=today - timedelta(days=2), units=155,
        )
        await producer.send_and_wait(topics.of(treatment), encode(treatment), key=patient.patient_id.encode())
    await producer.stop()
    await _converse(settings, topics, started, exit_after, treated_on=today - timedelta(days=2))


def passed_milestones(clock, treated_on: date, shown: set[int]) -> list[tuple[int, date]]:  # noqa: ANN001
    """The milestone days the simulated clock has reached and that were not shown yet."""
    day = (clock.now().date() - treated_on).days
    return [(m, treated_on + timedelta(days=m)) for m in sorted(MILESTONES) if m <= day and m not in shown]


async def _converse(settings, topics: Topics, started: float, exit_after: float | None, treated_on: date) -> None:  # noqa: ANN001
    consumer = AIOKafkaConsumer(
        topics.deliveries, topics.alerts, bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest", enable_auto_commit=False,
    )
    await consumer.start()
    phones = {p.patient_id: p.phone for p in PATIENTS}
    names = {p.patient_id: p.first_name for p in PATIENTS}
    answered: dict[str, int] = {}
    first_alert = None
    deadline = started + exit_after if exit_after else None
    clock, shown = clock_from(settings), set()
    try:
        async with aiohttp.ClientSession() as http:
            while deadline is None or time.monotonic() < deadline:
                for day, on in passed_milestones(clock, treated_on, shown):
                    shown.add(day)
                    say(started, f"simulated day {day} ({on:%a %d %b}): {MILESTONES[day]}")
                batch = await consumer.getmany(timeout_ms=500)
                for record in (r for records in batch.values() for r in records):
                    try:
                        event = decode(record.value)
                    except DecodeError:
                        continue
                    if isinstance(event, MessageSent) and event.kind == "alert":
                        continue
                    if isinstance(event, ClinicianAlert):
                        first_alert = first_alert or time.monotonic() - started
                        say(started, f"ALERT {event.severity.upper()} for {names.get(event.patient_id, event.patient_id)}: {event.summary}")
                    elif isinstance(event, MessageSent) and event.patient_id in SCRIPTS:
                        script = SCRIPTS[event.patient_id].get(event.kind, [])
                        turn = answered.get(f"{event.patient_id}:{event.kind}", 0)
                        if script:
                            answered[f"{event.patient_id}:{event.kind}"] = turn + 1
                            body = script[min(turn, len(script) - 1)]
                            status = await post_reply(http, settings.public_url, settings.twilio_auth_token or "",
                                                      phones[event.patient_id], body, f"SMdemo{event.message_key[:20]}{turn}")
                            say(started, f"{names[event.patient_id]} replies {body!r} (webhook answered {status})")
    finally:
        await consumer.stop()
    if first_alert is not None:
        say(started, f"first clinician alert {first_alert:.1f}s after start")
