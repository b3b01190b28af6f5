"""What operators and Kubernetes rely on: health, readiness, metrics, JSON logs."""

from __future__ import annotations

import json

import aiohttp

from shared.events import PatientEnrolled
from tests.support.kafka import eventually_async


async def test_a_worker_reports_alive_ready_and_its_metrics_and_logs_json_lines(start_worker, publisher, topics):
    notifier = await start_worker("notifier")
    await publisher.send(topics.patients, "p-op", PatientEnrolled(
        patient_id="p-op", clinic_id="rocklin", first_name="Ana", phone="+19165550130",
        timezone="America/Los_Angeles", sms_consent=True))
    await publisher.send(topics.patients, "p-op", b"garbage")
    failed = f'cyclecare_events_failed_total{{service="notifier",topic="{topics.patients}"}} 1.0'
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{notifier.url}/healthz") as response:
            assert response.status == 200
        async with http.get(f"{notifier.url}/readyz") as response:
            assert response.status == 200 and (await response.json())["ready"] is True

        async def metrics() -> str:
            async with http.get(f"{notifier.url}/metrics") as response:
                assert response.headers["Content-Type"].startswith("text/plain")
                return await response.text()

        text = await eventually_async(metrics, lambda t: failed in t, what="the failed-event counter")
    assert 'cyclecare_ready{service="notifier"} 1.0' in text
    assert f'cyclecare_events_consumed_total{{service="notifier",topic="{topics.patients}"}} 2.0' in text
    lines = [line for line in notifier.output().splitlines() if line.startswith("{")]
    assert lines and all(json.loads(line)["level"] for line in lines)
