"""The portal's pages over real HTTP and a real SQLite read model; the Kafka edge is a
fake publisher that projects each published action straight into the read model."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from services.portal.auth import Accounts
from services.portal.db import make_engine, migrate
from services.portal.store import Projection, ReadModel
from services.portal.web import Portal, make_app
from shared.clinics import load_clinics
from shared.clock import ManualClock
from shared.events import AlertAcknowledged, AlertResolved, Event
from tests.support.portal_events import (
    T0, alert, enrolled, escalated, headache_checkin, side_effects_checkin, sms_failed, sms_sent, treated,
)

PASSWORD = "correct horse battery"


class Wall:
    """The sessions' clock, moved by the test."""

    def __init__(self) -> None:
        self.moment = datetime(2026, 3, 5, 9, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.moment


class RecordingPublisher:
    """Stands in for the Kafka producer: keeps what was published and projects it."""

    def __init__(self, projection: Projection) -> None:
        self.projection = projection
        self.published: list[Event] = []

    async def __call__(self, key: str, event: Event) -> None:
        self.published.append(event)
        await self.projection.apply([event])


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'portal.db'}")
    await migrate(engine)
    await Projection(engine).apply([
        enrolled(), treated(), side_effects_checkin(), headache_checkin(14, 1), headache_checkin(12, 2),
        sms_failed(at=T0 + timedelta(hours=1)), alert(), sms_sent(kind="alert", at=T0 + timedelta(seconds=2)), escalated(),
        enrolled("p9", clinic_id="sevilla", name="Carla"), alert("a9", patient_id="p9", clinic_id="sevilla"),
    ])
    yield engine
    await engine.dispose()


@pytest.fixture
def wall() -> Wall:
    return Wall()


@pytest.fixture
def publisher(engine: AsyncEngine) -> RecordingPublisher:
    return RecordingPublisher(Projection(engine))


@pytest.fixture
async def client(engine: AsyncEngine, wall: Wall, publisher: RecordingPublisher) -> AsyncIterator[TestClient]:
    accounts = Accounts(engine, now=wall)
    for email, clinic in (("lee@example.org", "rocklin"), ("ruiz@example.org", "sevilla")):
        await accounts.set_password(await accounts.add_user(email, [clinic]), PASSWORD)
    portal = Portal(ReadModel(engine), accounts, publisher, load_clinics(None), ManualClock(T0 + timedelta(days=5)), action_wait=0.5)
    async with TestClient(TestServer(make_app(portal))) as test_client:
        yield test_client


def csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no CSRF token"
    return found.group(1)


async def sign_in(client: TestClient, email: str = "lee@example.org", password: str = PASSWORD) -> str:
    page = await (await client.get("/login")).text()
    response = await client.post("/login", data={"email": email, "password": password, "csrf_token": csrf(page)})
    return await response.text()


SignIn = Callable[..., object]


async def test_a_page_without_a_session_sends_you_to_sign_in(client: TestClient) -> None:
    response = await client.get("/", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/login"


async def test_signing_in_shows_the_inbox_with_the_urgent_alert_and_its_evidence(client: TestClient) -> None:
    html = await sign_in(client)
    assert "URGENT" in html and "Ana" in html and "hard to swallow since yesterday" in html
    cookie = next(c for c in client.session.cookie_jar if c.key == "cc_session")
    assert cookie["httponly"] and cookie["samesite"] == "Lax"


async def test_the_inbox_says_who_was_paged_and_when(client: TestClient) -> None:
    html = await sign_in(client)
    assert "level 1 → Dr. Lee: SMS sent 2026-03-02 15:00 UTC" in html
    assert "level 2 → kim, ray at 2026-03-02 15:15 UTC" in html


async def test_another_clinics_alert_is_not_listed(client: TestClient) -> None:
    html = await sign_in(client)
    assert "Carla" not in html


async def test_a_wrong_password_is_refused_and_five_lock_the_account(client: TestClient, engine: AsyncEngine) -> None:
    assert "wrong email or password" in await sign_in(client, password="nope")
    for _ in range(4):
        await sign_in(client, password="nope")
    assert "too many failed sign-ins" in await sign_in(client)
    assert "login_failed" in await Accounts(engine).audit_csv()


async def test_a_post_without_the_csrf_token_is_refused_with_403_and_publishes_nothing(
        client: TestClient, publisher: RecordingPublisher) -> None:
    await sign_in(client)
    response = await client.post("/alerts/a1/ack", data={})
    assert response.status == 403 and publisher.published == []
    response = await client.post("/alerts/a1/ack", data={"csrf_token": "forged"})
    assert response.status == 403 and publisher.published == []
    response = await client.post("/alerts/a1/ack", data={"csrf_token": "forgéd"})
    assert response.status == 403 and publisher.published == []


async def test_a_sign_in_without_the_form_token_is_refused(client: TestClient) -> None:
    response = await client.post("/login", data={"email": "lee@example.org", "password": PASSWORD})
    assert response.status == 403


async def test_acknowledging_publishes_the_event_and_shows_who_and_when(client: TestClient, publisher: RecordingPublisher) -> None:
    page = await sign_in(client)
    html = await (await client.post("/alerts/a1/ack", data={"csrf_token": csrf(page)})).text()
    [event] = publisher.published
    assert isinstance(event, AlertAcknowledged) and (event.by, event.via, event.alert_id) == ("lee", "web", "a1")
    assert "Acknowledged by <strong>lee</strong>" in html


async def test_resolving_with_an_outcome_takes_the_alert_out_of_the_inbox(client: TestClient, publisher: RecordingPublisher) -> None:
    page = await sign_in(client)
    html = await (await client.post("/alerts/a1/resolve", data={"csrf_token": csrf(page), "outcome": "contacted_patient",
                                                                "note": "called her"})).text()
    [event] = publisher.published
    assert isinstance(event, AlertResolved) and event.outcome == "contacted_patient" and event.note == "called her"
    assert "No open alerts." in html and "contacted patient by lee" in html


async def test_another_clinics_patient_and_alert_are_404(client: TestClient, publisher: RecordingPublisher) -> None:
    page = await sign_in(client, "ruiz@example.org")
    assert (await client.get("/patients/p1")).status == 404
    assert (await client.post("/alerts/a1/ack", data={"csrf_token": csrf(page)})).status == 404
    assert (await client.get("/clinics/rocklin")).status == 404
    assert publisher.published == []


async def test_the_patient_page_shows_timeline_chart_and_consent_and_is_audited(client: TestClient, engine: AsyncEngine) -> None:
    await sign_in(client)
    html = await (await client.get("/patients/p1")).text()
    assert "<svg" in html and "baseline 20" in html and "30% reduction (14)" in html
    assert "SMS failed: checkin q1" in html and "number unreachable" in html
    assert "Treatment on 2026-03-01, 155 units" in html and "URGENT alert" in html
    assert "neck pain or stiffness (mild)" in html
    assert "view_patient" in await Accounts(engine).audit_csv() and "p1" in await Accounts(engine).audit_csv()


async def test_an_idle_session_ends_after_15_minutes(client: TestClient, wall: Wall) -> None:
    await sign_in(client)
    wall.moment += timedelta(minutes=16)
    response = await client.get("/", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/login"


async def test_the_inbox_polling_does_not_keep_a_session_alive(client: TestClient, wall: Wall) -> None:
    await sign_in(client)
    for _ in range(4):
        wall.moment += timedelta(minutes=5)
        polled = await client.get("/inbox/list", headers={"HX-Request": "true"})
    assert polled.status == 401 and polled.headers["HX-Redirect"] == "/login"


async def test_search_finds_a_patient_by_name_or_id_within_ones_clinics(client: TestClient) -> None:
    await sign_in(client)
    assert "Ana" in await (await client.get("/patients", params={"q": "an"})).text()
    assert "Ana" in await (await client.get("/patients", params={"q": "P1"})).text()
    assert "Carla" not in await (await client.get("/patients", params={"q": ""})).text()


async def test_the_clinic_page_shows_the_unreachable_patient_and_the_response_rate(client: TestClient) -> None:
    await sign_in(client)
    html = await (await client.get("/clinics/rocklin")).text()
    assert "Unreachable" in html and 'href="/patients/p1"' in html


async def test_pages_forbid_inline_scripts_and_framing(client: TestClient) -> None:
    response = await client.get("/login")
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


async def test_a_set_password_link_works_once_and_then_signs_in(client: TestClient, engine: AsyncEngine, wall: Wall) -> None:
    token = await Accounts(engine, now=wall).add_user("kim@example.org", ["rocklin"])
    page = await (await client.get("/set-password", params={"token": token})).text()
    short = await client.post("/set-password", data={"csrf_token": csrf(page), "token": token, "password": "short", "confirm": "short"})
    assert short.status == 400 and "at least 12 characters" in await short.text()
    done = await client.post("/set-password", data={"csrf_token": csrf(page), "token": token,
                                                    "password": "kim's long password", "confirm": "kim's long password"})
    assert "Password set: sign in." in await done.text()
    again = await client.post("/set-password", data={"csrf_token": csrf(page), "token": token,
                                                     "password": "another long password", "confirm": "another long password"})
    assert "not valid any more" in await again.text()
    assert "Inbox" in await sign_in(client, "kim@example.org", "kim's long password")


async def test_resolving_without_an_outcome_is_refused(client: TestClient, publisher: RecordingPublisher) -> None:
    page = await sign_in(client)
    response = await client.post("/alerts/a1/resolve", data={"csrf_token": csrf(page), "outcome": "made up"})
    assert response.status == 422 and publisher.published == []


async def test_a_long_queue_shows_its_top_and_says_how_many_are_open(client: TestClient, engine: AsyncEngine) -> None:
    await Projection(engine).apply([alert(f"routine-{n}", severity="routine", at=T0 + timedelta(minutes=n)) for n in range(60)])
    html = await sign_in(client)
    assert html.count('class="alert ') == 50 and "The first 50 of 61 open alerts." in html
    assert html.index("URGENT") < html.index("ROUTINE")
