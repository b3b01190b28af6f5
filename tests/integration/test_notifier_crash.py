"""The notifier killed (SIGKILL, no clean shutdown) in the middle of a burst, on the real
broker with the fake Twilio server: once per cause still holds. What the ledger had recorded
before the crash never goes out again, even when its cause comes again to the restarted
worker; what was in flight at the crash is sent (at most once more), never lost."""

from __future__ import annotations

import json
from collections import Counter
from urllib.parse import parse_qs, urlsplit

from tests.integration.test_notifier_delivery import enrolment, reminder
from tests.support.kafka import eventually

PATIENTS = [f"p-{n}" for n in range(20)]
FAST = {"CYCLECARE_SMS_RATE": "1000"}  # the burst is limited by the fake's latency, not the token bucket


def phone(patient_id: str) -> str:
    return f"+1916555{int(patient_id[2:]):04d}"


def message_key(callback: str | None) -> str:
    """The message key the notifier puts on every SMS's status callback (``m=``)."""
    return parse_qs(urlsplit(callback or "").query).get("m", [""])[0]


def keys(reminders: list) -> set[str]:
    return {f"{r.event_id}:booking_reminder" for r in reminders}


async def test_a_notifier_killed_mid_burst_loses_no_reminder_and_never_resends_what_its_ledger_recorded(
    start_worker, publisher, topics, fake_twilio, watch
):
    notifier = await start_worker("notifier", **FAST)
    ledger = await watch(f"{topics.namespace}-notifier-ledger-changelog")

    def recorded() -> set[str]:
        return {json.loads(key) for _, key, _ in ledger.records if key}

    def sends() -> Counter[str]:
        return Counter(message_key(m.status_callback) for m in fake_twilio.messages)

    for patient in PATIENTS:
        await publisher.send(topics.patients, patient, enrolment(patient, phone(patient)))
    first = [reminder(0, patient) for patient in PATIENTS]
    for due in first:
        await publisher.send(topics.due, due.patient_id, due)
    await eventually(lambda: keys(first) <= recorded(), timeout=60, what="the first reminders on the ledger")

    fake_twilio.latency = 0.3  # sends in flight when the worker dies
    burst = [reminder(n, patient) for n in range(1, 11) for patient in PATIENTS]
    for due in burst:
        await publisher.send(topics.due, due.patient_id, due)
    await eventually(lambda: len(keys(burst) & set(sends())) >= 40, timeout=60, what="part of the burst sent")
    notifier.kill()
    assert not keys(burst) <= set(sends()), "the burst ended before the crash: nothing was in flight"

    await start_worker("notifier", **FAST)
    for due in first:  # causes the ledger recorded before the crash, delivered again
        await publisher.send(topics.due, due.patient_id, due)
    last = [reminder(99, patient) for patient in PATIENTS]  # behind them in every patient's partition
    for due in last:
        await publisher.send(topics.due, due.patient_id, due)
    everything = keys(first) | keys(burst) | keys(last)
    await eventually(lambda: everything <= set(sends()), timeout=120, what="every reminder sent")
    await eventually(lambda: everything <= recorded(), timeout=30, what="every reminder on the ledger")

    counts = sends()
    assert [k for k in keys(first) if counts[k] != 1] == []
    assert [k for k in keys(burst) | keys(last) if counts[k] > 2] == []
    assert set(counts) == everything
