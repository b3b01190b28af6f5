"""The clinician portal in Debian's Chromium (Playwright), against real workers: the
survey takes a signed Twilio webhook, the portal projects the broker's topics into SQLite.

One survey and one portal serve the module (starting workers is the slow part); each
test signs in with its own browser context. Screenshots go to docs/screenshots/.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import aiohttp
import pytest
from twilio.request_validator import RequestValidator

from services.portal.cli import add_user
from services.portal.auth import Accounts
from services.portal.db import database_url, make_engine
from shared.broker import EmbeddedBroker, ensure_topics
from shared.config import load_settings
from shared.events import AlertAcknowledged, TreatmentRecorded
from shared.topics import Topics
from tests.support.kafka import Publisher, TopicWatcher, eventually
from tests.support.portal_events import alert, enrolled, headache_checkin, side_effects_checkin
from tests.support.workers import WorkerProcess

playwright_api = pytest.importorskip("playwright.async_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is not installed (.ci/run installs it: apt-get install chromium)", allow_module_level=True)
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(__file__).parents[2] / "docs" / "screenshots"
PUBLIC_URL = "https://cyclecare.clinic.test/hooks"
CLOCK_START = "2026-06-01T17:00:00+00:00"
PASSWORD = "correct horse battery"
PHONE = "+19165550177"
pytestmark = pytest.mark.integration


@dataclass
class Stack:
    topics: Topics
    survey: WorkerProcess
    portal: WorkerProcess
    publisher: Publisher
    actions: TopicWatcher
    env: dict[str, str]
    auth_token: str


@pytest.fixture(scope="module")
async def stack(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    tmp = tmp_path_factory.mktemp("portal-browser")
    topics = Topics(f"b{uuid.uuid4().hex[:10]}")
    await ensure_topics(broker.bootstrap_servers, topics.all(), 4)
    env = {"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers, "CYCLECARE_TOPIC_NAMESPACE": topics.namespace,
           "CYCLECARE_PARTITIONS": "4", "CYCLECARE_REBALANCE_TIMEOUT": "1", "CYCLECARE_DATA_DIR": str(tmp / "data"),
           "TWILIO_AUTH_TOKEN": "browser-test-token", "CYCLECARE_PUBLIC_URL": PUBLIC_URL,
           "CYCLECARE_CLOCK_START": CLOCK_START, "CYCLECARE_LOG_FORMAT": "json"}
    survey = WorkerProcess("survey", env, tmp).start()
    portal = WorkerProcess("portal", env, tmp).start()
    publisher = await Publisher(broker.bootstrap_servers).start()
    actions = await TopicWatcher(broker.bootstrap_servers, topics.alert_actions).start()
    try:
        await survey.wait_ready()
        await portal.wait_ready()
        settings = load_settings(env)
        for email, clinic in (("lee@example.org", "rocklin"), ("ruiz@example.org", "sevilla")):
            link = await add_user(settings, [clinic], email)
            engine = make_engine(database_url(settings))
            await Accounts(engine).set_password(link.split("token=")[1], PASSWORD)
            await engine.dispose()
        yield Stack(topics, survey, portal, publisher, actions, env, "browser-test-token")
    finally:
        await actions.stop()
        await publisher.stop()
        survey.stop()
        portal.stop()
    for worker in (survey, portal):
        assert PHONE not in worker.output(), f"the {worker.service} logged a phone number"


@pytest.fixture(scope="module")
async def chromium() -> AsyncIterator[object]:
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield browser
        await browser.close()


async def signed_in(chromium, stack: Stack, email: str = "lee@example.org"):  # noqa: ANN001, ANN201
    context = await chromium.new_context(viewport={"width": 1100, "height": 900})
    page = await context.new_page()
    await page.goto(f"{stack.portal.url}/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    async with page.expect_navigation():
        await page.get_by_role("button", name="Sign in").click()
    assert page.url == f"{stack.portal.url}/", await page.inner_text("body")
    return context, page


async def send_sms(stack: Stack, body: str) -> None:
    url = PUBLIC_URL + "/twilio/sms"
    form = {"MessageSid": f"SM{uuid.uuid4().hex}", "AccountSid": "ACtest", "From": PHONE, "To": "+19165550100", "Body": body}
    signature = RequestValidator(stack.auth_token).compute_signature(url, form)
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{stack.survey.url}/twilio/sms", data=form, headers={"X-Twilio-Signature": signature}) as response:
            assert response.status == 200


async def enrol_ana(stack: Stack) -> None:
    ana = enrolled("b-ana", name="Ana").model_copy(update={"phone": PHONE, "occurred_at": datetime.now(timezone.utc)})
    await stack.publisher.send(stack.topics.patients, "b-ana", ana)
    treated_on = date(2026, 6, 1) - timedelta(days=30)
    await stack.publisher.send(stack.topics.treatments, "b-ana", TreatmentRecorded(
        treatment_id="b-ana-t1", patient_id="b-ana", clinic_id="rocklin", administered_on=treated_on - timedelta(days=84), units=155))
    await stack.publisher.send(stack.topics.treatments, "b-ana", TreatmentRecorded(
        treatment_id="b-ana-t2", patient_id="b-ana", clinic_id="rocklin", administered_on=treated_on, units=155))
    for n, (days, cycle) in enumerate(((18, 1), (15, 1), (13, 2))):
        answered = datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc) + timedelta(weeks=4 * n)
        await stack.publisher.send(stack.topics.checkins, "b-ana", headache_checkin(days, cycle, patient_id="b-ana", at=answered))
    await stack.publisher.send(stack.topics.checkins, "b-ana", side_effects_checkin(patient_id="b-ana"))


async def test_an_urgent_alert_from_a_signed_webhook_appears_in_the_open_inbox_and_is_acknowledged(chromium, stack: Stack) -> None:
    context, page = await signed_in(chromium, stack)
    await enrol_ana(stack)
    phones = TopicWatcher(stack.env["KAFKA_BOOTSTRAP_SERVERS"], f"{stack.topics.namespace}-survey-phones-changelog")
    await phones.start()
    try:
        await eventually(lambda: phones.records, what="the survey indexing Ana's phone")
    finally:
        await phones.stop()
    await send_sms(stack, "I can't swallow properly since this morning")

    # no reload: the inbox polls, the alert must show up by itself
    alert = page.locator("li.alert.urgent", has_text="Ana")
    await alert.wait_for(timeout=15000)
    assert "swallow" in await alert.locator(".evidence").inner_text()
    await page.screenshot(path=str(SCREENSHOTS / "inbox.png"), full_page=True)
    await page.set_viewport_size({"width": 390, "height": 844})  # a phone
    assert await alert.get_by_role("button", name="Acknowledge").is_visible()
    await page.screenshot(path=str(SCREENSHOTS / "inbox-phone.png"))
    await page.set_viewport_size({"width": 1100, "height": 900})

    await alert.get_by_role("button", name="Acknowledge").click()
    acked = page.locator("li.alert.urgent .acked", has_text="Acknowledged by lee")
    await acked.wait_for(timeout=10000)
    assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", await acked.inner_text())
    [event] = await eventually(lambda: [e for e in stack.actions.events() if isinstance(e, AlertAcknowledged)],
                               what="the acknowledgement on cyclecare.alert-actions")
    assert (event.by, event.via, event.patient_id) == ("lee", "web", "b-ana")
    await context.close()


async def test_the_patient_page_shows_the_timeline_and_the_headache_chart(chromium, stack: Stack) -> None:
    context, page = await signed_in(chromium, stack)
    await enrol_ana(stack)
    await page.goto(f"{stack.portal.url}/patients/b-ana")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while await page.locator("#headache-chart circle.point").count() < 3 and loop.time() < deadline:
        await page.reload()  # the projection catches up with the three check-ins
    assert await page.locator("#headache-chart circle.point").count() == 3
    assert "baseline 20" in await page.locator("#headache-chart").inner_text()
    timeline = await page.locator("#timeline").inner_text()
    assert "Treatment on" in timeline and "Check-in answered: headache days" in timeline
    await page.screenshot(path=str(SCREENSHOTS / "patient.png"), full_page=True)
    await page.get_by_role("link", name="Rocklin Headache Clinic").click()
    await page.wait_for_url(re.compile(r".*/clinics/rocklin"))
    assert "check-ins answered" in await page.inner_text("main")
    await page.screenshot(path=str(SCREENSHOTS / "clinic.png"), full_page=True)
    await context.close()


async def test_a_user_of_another_clinic_gets_404_for_the_patient_and_the_alert(chromium, stack: Stack) -> None:
    await enrol_ana(stack)
    await stack.publisher.send(stack.topics.alerts, "b-ana", alert("b-ana-other", patient_id="b-ana"))
    lee, lee_page = await signed_in(chromium, stack)
    await lee_page.locator("#alert-b-ana-other").wait_for(timeout=15000)  # projected: it exists, for Rocklin
    await lee.close()

    context, page = await signed_in(chromium, stack, "ruiz@example.org")
    assert "Ana" not in await page.inner_text("main")
    response = await page.goto(f"{stack.portal.url}/patients/b-ana")
    assert response is not None and response.status == 404
    assert "Ana" not in await page.inner_text("main")
    token = await page.locator('input[name="csrf_token"]').first.get_attribute("value")
    ack = await page.request.post(f"{stack.portal.url}/alerts/b-ana-other/ack", form={"csrf_token": token or ""})
    assert ack.status == 404
    await context.close()


async def test_a_post_without_the_csrf_token_gets_403(chromium, stack: Stack) -> None:
    context, page = await signed_in(chromium, stack)
    response = await page.request.post(f"{stack.portal.url}/alerts/anything/ack", form={"note": "x"})
    assert response.status == 403
    await context.close()
