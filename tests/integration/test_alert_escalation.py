"""Alerts nobody acknowledges get louder, on the real broker with a simulated clock: the
scheduler pages at the policy's deadlines, an acknowledgement stops it, the HTTP API
acknowledges and resolves, and a killed worker pages each step once by id.

The workers' clock runs two simulated minutes per real second; the test builds the same clock
from the same three numbers, so it knows the simulated time of what it sees.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import aiohttp

from shared.clock import SimulatedClock
from shared.events import AlertAcknowledged, AlertEscalated, AlertResolved, ClinicianAlert
from tests.integration.test_scheduler_durability import consumed
from tests.support.kafka import eventually, eventually_async

START = datetime(2026, 11, 26, 10, 0, tzinfo=timezone.utc)
SPEED = 120.0  # two simulated minutes per real second
TOKEN = {"Authorization": "Bearer test-api-token"}


def clock_env(anchor: float) -> dict[str, str]:
    return {"CYCLECARE_CLOCK_START": START.isoformat(), "CYCLECARE_CLOCK_SPEED": str(SPEED),
            "CYCLECARE_CLOCK_ANCHOR": str(anchor)}


def alert(alert_id: str, raised_at: datetime, severity: str = "urgent", patient_id: str = "p-1") -> ClinicianAlert:
    return ClinicianAlert(alert_id=alert_id, patient_id=patient_id, clinic_id="rocklin", severity=severity,
                          reasons=["dysphagia"], summary="new trouble swallowing", raised_at=raised_at)


def acknowledged(alert_id: str, by: str, at: datetime, patient_id: str = "p-1") -> AlertAcknowledged:
    return AlertAcknowledged(alert_id=alert_id, patient_id=patient_id, clinic_id="rocklin", by=by, via="sms",
                             acknowledged_at=at)


def pages(watcher, topics, alert_id: str) -> list[AlertEscalated]:
    return [e for e in watcher.events(topics.alert_actions) if isinstance(e, AlertEscalated) and e.alert_id == alert_id]


async def metric(url: str, name: str) -> float | None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/metrics") as response:
            for line in (await response.text()).splitlines():
                if line.startswith(f"{name} "):
                    return float(line.split()[1])
    return None


async def test_an_unacknowledged_urgent_alert_pages_every_clinician_at_15_minutes_until_a_clinician_acknowledges(
        start_worker, publisher, topics, watch):
    anchor = time.time()
    clock = SimulatedClock(START, SPEED, anchor)
    scheduler = await start_worker("scheduler", **clock_env(anchor))
    watcher = await watch(topics.alert_actions, topics.dlq)
    raised_at = clock.now()
    await publisher.send(topics.alerts, "p-1", alert("a-urgent", raised_at))
    # someone who is no clinician of Rocklin (Sevilla's Dr. Ruiz) cannot take the alert
    await publisher.send(topics.alert_actions, "p-1", acknowledged("a-urgent", "ruiz", raised_at + timedelta(minutes=1)))

    [page] = await eventually(lambda: pages(watcher, topics, "a-urgent"), timeout=30, what="the level-2 page")
    assert (page.level, page.repeat, page.notified, page.reason) == (2, 0, ["lee", "patel"], "ack_timeout")
    assert raised_at + timedelta(minutes=15) <= page.escalated_at < raised_at + timedelta(minutes=45)
    assert await metric(scheduler.url, "cyclecare_urgent_alerts_open") == 1

    await publisher.send(topics.alert_actions, "p-1", acknowledged("a-urgent", "patel", clock.now()))
    await eventually_async(lambda: metric(scheduler.url, "cyclecare_urgent_alerts_open"), lambda v: v == 0,
                           what="the acknowledgement to close the alert")
    level_3_due = raised_at + timedelta(minutes=45)
    await eventually(lambda: clock.now() > level_3_due + timedelta(minutes=30), timeout=60, what="an hour past level 3")
    assert [(p.level, p.repeat) for p in pages(watcher, topics, "a-urgent")] == [(2, 0)]
    assert await metric(scheduler.url, 'cyclecare_alert_escalations_total{level="2"}') == 1
    assert watcher.raw(topics.dlq) == []


async def test_alerts_are_acknowledged_and_resolved_through_the_api(start_worker, publisher, topics, watch):
    anchor = time.time()
    clock = SimulatedClock(START, SPEED, anchor)
    scheduler = await start_worker("scheduler", **clock_env(anchor))
    watcher = await watch(topics.alert_actions)
    await publisher.send(topics.alerts, "p-2", alert("a-api", clock.now(), severity="high", patient_id="p-2"))
    url = f"{scheduler.url}/v1/alerts/a-api"

    async def post(path: str, body: object, headers: dict | None = TOKEN) -> tuple[int, dict]:
        async with aiohttp.ClientSession() as http:
            async with http.post(url + path, json=body, headers=headers or {}) as response:
                return response.status, await response.json()

    await eventually_async(lambda: post("/ack", {"by": "nobody-yet"}), lambda r: r[0] != 404, what="the alert known")
    assert (await post("/ack", {"by": "lee"}, headers=None))[0] == 401
    status, body = await post("/ack", {"by": "mallory"})
    assert status == 422 and body["details"] == [{"field": "by", "error": "not a clinician of clinic 'rocklin'"}]
    status, body = await post("/resolve", {"by": "lee", "outcome": "cured"})
    assert status == 422 and body["details"][0]["field"] == "outcome"
    assert (await post("/resolve", {"by": "lee"}))[0] == 422  # an outcome is needed to resolve
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{scheduler.url}/v1/alerts/no-such-alert/ack", json={"by": "lee"}, headers=TOKEN) as response:
            assert response.status == 404

    status, body = await post("/ack", {"by": "lee"})
    assert status == 202
    [ack] = await eventually(lambda: [e for e in watcher.events(topics.alert_actions) if isinstance(e, AlertAcknowledged)],
                             what="the acknowledgement on the topic")
    assert (ack.event_id, ack.by, ack.via, ack.patient_id, ack.clinic_id) == (body["event_id"], "lee", "api", "p-2", "rocklin")
    await eventually_async(lambda: post("/ack", {"by": "patel"}), lambda r: r[0] == 409, what="a second ack refused")

    note = "called the patient, symptoms settled"
    assert (await post("/resolve", {"by": "patel", "outcome": "contacted_patient", "note": note}))[0] == 202
    [resolved] = await eventually(lambda: [e for e in watcher.events(topics.alert_actions) if isinstance(e, AlertResolved)],
                                  what="the resolution on the topic")
    assert (resolved.by, resolved.outcome, resolved.note, resolved.via) == ("patel", "contacted_patient", note, "api")
    await eventually_async(lambda: post("/resolve", {"by": "lee", "outcome": "other"}), lambda r: r[0] == 409,
                           what="a second resolution refused")
    assert note not in scheduler.output()
    assert [e for e in watcher.events(topics.alert_actions) if isinstance(e, AlertEscalated)] == []


async def test_a_worker_killed_as_it_pages_is_replaced_and_each_step_pages_once_by_id(start_worker, publisher, topics, watch):
    anchor = time.time()
    clock = SimulatedClock(START, SPEED, anchor)
    first = await start_worker("scheduler", **clock_env(anchor))
    watcher = await watch(topics.alert_actions)
    raised_at = clock.now()
    await publisher.send(topics.alerts, "p-3", alert("a-killed", raised_at, patient_id="p-3"))

    await eventually(lambda: pages(watcher, topics, "a-killed"), timeout=30, what="the level-2 page")
    first.kill()  # no goodbye: the deadline command and the table write may not be committed
    await start_worker("scheduler", **clock_env(anchor))
    await eventually(lambda: {(p.level, p.repeat) for p in pages(watcher, topics, "a-killed")} >= {(3, 0)},
                     timeout=60, what="the level-3 page from the new worker")

    by_step: dict[tuple[int, int], set[str]] = {}
    for page in pages(watcher, topics, "a-killed"):
        by_step.setdefault((page.level, page.repeat), set()).add(page.event_id)
    assert by_step[(2, 0)] and all(len(ids) == 1 for ids in by_step.values()), by_step


async def test_either_of_two_workers_takes_an_action_on_any_alert(start_worker, publisher, topics, watch):
    anchor = time.time()
    clock = SimulatedClock(START, SPEED, anchor)
    one = await start_worker("scheduler", **clock_env(anchor))
    two = await start_worker("scheduler", **clock_env(anchor))
    await one.wait_ready()
    await two.wait_ready()
    watcher = await watch(topics.alert_actions)
    ids = [f"a-{n}" for n in range(8)]  # spread over the partitions, so each worker holds some
    for n, alert_id in enumerate(ids):
        await publisher.send(topics.alerts, f"p-{n}", alert(alert_id, clock.now(), severity="routine", patient_id=f"p-{n}"))

    async def post(url: str, alert_id: str, action: str, body: dict) -> int:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{url}/v1/alerts/{alert_id}/{action}", json=body, headers=TOKEN) as response:
                return response.status

    for alert_id in ids:
        await eventually_async(lambda: post(one.url, alert_id, "ack", {"by": "lee"}), lambda s: s == 202,
                               what=f"{alert_id} acknowledged through the first worker")
        await eventually_async(lambda: post(two.url, alert_id, "resolve", {"by": "patel", "outcome": "other"}),
                               lambda s: s == 202, what=f"{alert_id} resolved through the second worker")
    await eventually(lambda: {e.alert_id for e in watcher.events(topics.alert_actions) if isinstance(e, AlertResolved)}
                     == set(ids), what="every resolution on the topic")
    for alert_id in ids:
        await eventually_async(lambda: post(two.url, alert_id, "ack", {"by": "lee"}), lambda s: s == 409,
                               what=f"{alert_id} known as resolved whichever worker is asked")
    acks = [e for e in watcher.events(topics.alert_actions) if isinstance(e, AlertAcknowledged)]
    assert sorted(e.alert_id for e in acks) == sorted(ids)  # each once: nothing was both answered and forwarded
    assert "forwarding an action" not in one.output() + two.output()
    held = [await consumed(worker.url, topics.scheduler_alerts) for worker in (one, two)]
    assert all(held), f"alert records handled per worker: {held} (both must hold some for this test to mean anything)"
