"""The portal's pages (aiohttp + jinja2 + htmx): sign-in, inbox, patient, clinic, search.

Every page needs a session; every POST needs the session's CSRF token (403 without it);
another clinic's patient or alert is a 404. Views of a patient and every action are
audited. Acknowledging and resolving publish events; the page shows the result once the
projection has read them back.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from shared.clinics import Directory
from shared.clock import Clock
from shared.events import AlertAcknowledged, AlertResolved, Event, deterministic_id
from services.portal import domain
from services.portal.auth import Accounts, AccountError, LoginRefused, Session
from services.portal.projection import effects_text
from services.portal.store import INBOX_PAGE, ReadModel

HERE = Path(__file__).parent
HTMX = "htmx-2.0.11.min.js"
SESSION_COOKIE = "cc_session"
LOGIN_CSRF_COOKIE = "cc_login_csrf"
OUTCOMES = {
    "contacted_patient": "Contacted the patient",
    "advised_emergency_care": "Advised emergency care",
    "appointment_booked": "Appointment booked",
    "no_action_needed": "No action needed",
    "other": "Other",
}
# /fhir/R4/ checks its own bearer token (services.portal.fhir.api): no clinician session there
PUBLIC_PATHS = ("/login", "/set-password", "/static/", "/healthz", "/readyz", "/metrics", "/fhir/R4/")
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "frame-ancestors 'none'; form-action 'self'; base-uri 'none'")

Publish = Callable[[str, Event], Awaitable[None]]  # (topic key, event) on cyclecare.alert-actions
SESSION_KEY = web.RequestKey("session", Session)


class Portal:
    def __init__(self, model: ReadModel, accounts: Accounts, publish: Publish, clinics: Directory, clock: Clock,
                 *, secure_cookies: bool = False, action_wait: float = 3.0) -> None:
        self.model, self.accounts, self.publish, self.clinics, self.clock = model, accounts, publish, clinics, clock
        self.secure_cookies = secure_cookies
        self.action_wait = action_wait
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True, undefined=jinja2.StrictUndefined)
        self.templates.filters |= {"when": _when, "ago": self._ago, "label": lambda c: str(c).replace("_", " ")}
        self.templates.globals |= {"htmx": HTMX, "outcomes": OUTCOMES, "clinic_name": self._clinic_name}

    # --- the aiohttp application ----------------------------------------------------

    def routes(self) -> list[web.AbstractRouteDef]:
        return [
            web.get("/login", self.login_page), web.post("/login", self.login),
            web.post("/logout", self.logout),
            web.get("/set-password", self.set_password_page), web.post("/set-password", self.set_password),
            web.get("/", self.inbox), web.get("/inbox/list", self.inbox_list),
            web.post("/alerts/{alert_id}/ack", self.acknowledge), web.post("/alerts/{alert_id}/resolve", self.resolve),
            web.get("/patients", self.patients), web.get("/patients/{patient_id}", self.patient),
            web.get("/clinics/{clinic_id}", self.clinic),
            web.static("/static", HERE / "static", append_version=False),
        ]

    @web.middleware
    async def middleware(self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        try:
            response = await self._guarded(request, handler)
        except web.HTTPException as exc:
            _harden(request, exc.headers)
            raise
        _harden(request, response.headers)
        return response

    async def _guarded(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith(PUBLIC_PATHS):
            return await handler(request)
        # the inbox's polling must not keep an unattended session alive
        session = await self.accounts.session(request.cookies.get(SESSION_COOKIE), touch=request.path != "/inbox/list")
        if session is None:
            if request.headers.get("HX-Request"):
                return web.Response(status=401, headers={"HX-Redirect": "/login"})
            raise web.HTTPSeeOther("/login")
        if request.method == "POST":
            form = await request.post()
            sent = form.get("csrf_token") or request.headers.get("X-CSRF-Token", "")
            if not isinstance(sent, str) or not _same(sent, session.csrf_token):
                return self._error(request, 403, "This form has expired or did not come from this site. Go back, reload and try again.", session)
        request[SESSION_KEY] = session
        try:
            return await handler(request)
        except web.HTTPNotFound:
            return self._error(request, 404, "Not found.", session)

    def render(self, name: str, session: Session | None, status: int = 200, **context: Any) -> web.Response:
        html = self.templates.get_template(name).render(session=session, **context)
        return web.Response(text=html, content_type="text/html", status=status)

    def page(self, name: str, request: web.Request, **context: Any) -> web.Response:
        return self.render(name, request[SESSION_KEY], **context)

    def _error(self, request: web.Request, status: int, message: str, session: Session | None) -> web.Response:
        return self.render("error.html", session, status=status, message=message, status_code=status)

    # --- sign-in ----------------------------------------------------------------------

    async def login_page(self, request: web.Request, message: str | None = None, status: int = 200) -> web.Response:
        # kept while the browser has one: a second tab (or a favicon request sent to sign in) must not void the first form
        token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
        response = self.render("login.html", None, status=status, csrf_token=token, message=message)
        response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="Strict", secure=self._secure(request), path="/login")
        return response

    async def login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not cookie or not _same(str(form.get("csrf_token", "")), cookie):
            return self._error(request, 403, "This form has expired. Reload the sign-in page and try again.", None)
        email = str(form.get("email", "")).strip().lower()
        try:
            session = await self.accounts.login(email, str(form.get("password", "")))
        except LoginRefused as refused:
            await self.accounts.audit("login_failed", user_email=email or None, remote=request.remote)
            return await self.login_page(request, str(refused), status=401)
        await self.accounts.audit("login", user_email=session.email, remote=request.remote)
        response = web.HTTPSeeOther("/")
        response.set_cookie(SESSION_COOKIE, session.token, httponly=True, samesite="Lax", secure=self._secure(request), path="/")
        response.del_cookie(LOGIN_CSRF_COOKIE, path="/login")
        raise response

    async def logout(self, request: web.Request) -> web.StreamResponse:
        session = request[SESSION_KEY]
        await self.accounts.logout(session.token)
        await self.accounts.audit("logout", user_email=session.email, remote=request.remote)
        response = web.HTTPSeeOther("/login")
        response.del_cookie(SESSION_COOKIE, path="/")
        raise response

    async def set_password_page(self, request: web.Request) -> web.Response:
        token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
        response = self.render("set_password.html", None, token=request.query.get("token", ""), csrf_token=token,
                               message=None)
        response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="Strict", secure=self._secure(request), path="/set-password")
        return response

    async def set_password(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not cookie or not _same(str(form.get("csrf_token", "")), cookie):
            return self._error(request, 403, "This form has expired. Open the link again.", None)
        password = str(form.get("password", ""))
        if password != str(form.get("confirm", "")):
            message = "The two passwords differ."
        else:
            try:
                email = await self.accounts.set_password(str(form.get("token", "")), password)
            except AccountError as exc:
                message = str(exc)
            else:
                await self.accounts.audit("set_password", user_email=email, remote=request.remote)
                return await self.login_page(request, "Password set: sign in.")
        return self.render("set_password.html", None, status=400, token=str(form.get("token", "")),
                           csrf_token=cookie, message=message)

    # --- inbox ------------------------------------------------------------------------

    async def inbox(self, request: web.Request) -> web.Response:
        session = request[SESSION_KEY]
        return self.page("inbox.html", request, **await self._inbox(session),
                         resolved=await self.model.recently_resolved(session.clinics), notice=request.query.get("notice"))

    async def inbox_list(self, request: web.Request) -> web.Response:
        return self.page("_alerts.html", request, **await self._inbox(request[SESSION_KEY]))

    async def _inbox(self, session: Session) -> dict[str, Any]:
        alerts = await self.model.inbox(session.clinics)
        total = len(alerts) if len(alerts) < INBOX_PAGE else await self.model.open_count(session.clinics)
        return {"alerts": alerts, "pages": await self._pages(alerts), "open_total": total}

    async def _pages(self, alerts: list[Any]) -> dict[str, list[str]]:
        """Who has been paged about each alert, and when: the on-call clinicians (the
        notifier pages them for urgent and high alerts) with the messages it reported, then
        each escalation level with the clinicians it notified."""
        messages = await self.model.alert_messages([a for a in alerts if a.severity in ("urgent", "high")])
        pages: dict[str, list[str]] = {}
        for alert in alerts:
            lines = []
            if alert.alert_id in messages:
                clinic = self.clinics.get(alert.clinic_id)
                on_call = ", ".join(c.name for c in clinic.on_call) if clinic else "on-call clinicians"
                sent = "; ".join(f"{m.title.split(':')[0]} {_when(m.at)}" for m in messages[alert.alert_id])
                lines.append(f"level 1 → {on_call}: {sent or 'no message reported yet'}")
            lines += [f"level {p['level']} → {', '.join(p['notified']) or 'nobody'} at {p['at'][:16].replace('T', ' ')} UTC"
                      for p in alert.paged]
            pages[alert.alert_id] = lines
        return pages

    async def acknowledge(self, request: web.Request) -> web.StreamResponse:
        session, alert = await self._open_alert(request)
        if alert.status != "open":
            raise web.HTTPSeeOther(f"/?notice=already-{alert.status}#alert-{alert.alert_id}")
        now = self.clock.now()
        await self.publish(alert.patient_id, AlertAcknowledged(
            event_id=deterministic_id("ack", alert.alert_id, session.clinician_id), alert_id=alert.alert_id,
            patient_id=alert.patient_id, clinic_id=alert.clinic_id, by=session.clinician_id, via="web", acknowledged_at=now))
        await self.accounts.audit("acknowledge", user_email=session.email, clinic_id=alert.clinic_id,
                                  target=alert.alert_id, remote=request.remote)
        await self._until_status(session, alert.alert_id, {"acknowledged", "resolved"})
        raise web.HTTPSeeOther(f"/#alert-{alert.alert_id}")

    async def resolve(self, request: web.Request) -> web.StreamResponse:
        session, alert = await self._open_alert(request)
        form = await request.post()
        outcome = str(form.get("outcome", ""))
        if outcome not in OUTCOMES:
            return self._error(request, 422, "Choose what was done for this alert.", session)
        if alert.status == "resolved":
            raise web.HTTPSeeOther("/?notice=already-resolved")
        note = str(form.get("note", "")).strip() or None
        await self.publish(alert.patient_id, AlertResolved(
            event_id=deterministic_id("resolve", alert.alert_id, session.clinician_id), alert_id=alert.alert_id,
            patient_id=alert.patient_id, clinic_id=alert.clinic_id, by=session.clinician_id, via="web",
            outcome=outcome, note=note, resolved_at=self.clock.now()))  # type: ignore[arg-type]
        await self.accounts.audit("resolve", user_email=session.email, clinic_id=alert.clinic_id,
                                  target=alert.alert_id, remote=request.remote)
        await self._until_status(session, alert.alert_id, {"resolved"})
        raise web.HTTPSeeOther("/?notice=resolved")

    async def _open_alert(self, request: web.Request) -> tuple[Session, Any]:
        session = request[SESSION_KEY]
        alert = await self.model.alert(session.clinics, request.match_info["alert_id"])
        if alert is None:
            raise web.HTTPNotFound()
        return session, alert

    async def _until_status(self, session: Session, alert_id: str, statuses: set[str]) -> None:
        """Wait (briefly) until the projection has read the action back, so the page shows it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.action_wait
        while loop.time() < deadline:
            alert = await self.model.alert(session.clinics, alert_id)
            if alert is not None and alert.status in statuses:
                return
            await asyncio.sleep(0.05)

    # --- patients ---------------------------------------------------------------------

    async def patients(self, request: web.Request) -> web.Response:
        session = request[SESSION_KEY]
        query = request.query.get("q", "")
        return self.page("patients.html", request, q=query, found=await self.model.search(session.clinics, query))

    async def patient(self, request: web.Request) -> web.Response:
        session = request[SESSION_KEY]
        patient_id = request.match_info["patient_id"]
        patient = await self.model.patient(session.clinics, patient_id)
        if patient is None:
            raise web.HTTPNotFound()
        await self.accounts.audit("view_patient", user_email=session.email, clinic_id=patient.clinic_id,
                                  target=patient_id, remote=request.remote)
        treatments = await self.model.treatments(patient_id)
        checkins = await self.model.checkins(patient_id)
        last = max((t.administered_on for t in treatments), default=None)
        today = self.clock.now().date()
        points = domain.chart_points(checkins)
        effects = domain.side_effects_by_cycle(checkins, lambda c: effects_text(json.loads(c.effects)) + (" · RED FLAGS" if c.red_flags else ""))
        return self.page(
            "patient.html", request, patient=patient, treatments=treatments, cycle=len(treatments),
            day=domain.cycle_day(last, today) if last else None, moments=domain.next_moments(last, today),
            timeline=await self.model.timeline(patient_id), alerts=await self.model.patient_alerts(session.clinics, patient_id),
            chart=domain.headache_chart(points, patient.baseline_headache_days), points=points, effects=effects,
            headache_checkins=[c for c in checkins if c.kind == "headache_frequency"], answers_text=_headache_text,
        )

    async def clinic(self, request: web.Request) -> web.Response:
        session = request[SESSION_KEY]
        clinic_id = request.match_info["clinic_id"]
        if clinic_id not in session.clinics:
            raise web.HTTPNotFound()
        summary = domain.clinic_summary(await self.model.clinic_patients(clinic_id), self.clock.now().date(),
                                        await self.model.urgent_ack_minutes(clinic_id))
        return self.page("clinic.html", request, clinic_id=clinic_id, summary=summary, today=self.clock.now().date(),
                           cycle_day=domain.cycle_day)

    # --- helpers ----------------------------------------------------------------------

    def _secure(self, request: web.Request) -> bool:
        return self.secure_cookies or request.secure or request.headers.get("X-Forwarded-Proto") == "https"

    def _clinic_name(self, clinic_id: str) -> str:
        clinic = self.clinics.get(clinic_id)
        return clinic.name if clinic else clinic_id

    def _ago(self, moment: datetime | None) -> str:
        if moment is None:
            return ""
        minutes = int((self.clock.now() - moment).total_seconds() // 60)
        if minutes < 1:
            return "just now"
        if minutes < 120:
            return f"{minutes} min ago"
        if minutes < 48 * 60:
            return f"{minutes // 60} h ago"
        return f"{minutes // 1440} days ago"


def _same(sent: str, expected: str) -> bool:
    """Constant-time comparison of tokens (bytes: a non-ASCII forgery must not raise)."""
    return secrets.compare_digest(sent.encode(), expected.encode())


def _harden(request: web.Request, headers: Any) -> None:
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    if not request.path.startswith("/static/"):
        headers.setdefault("Cache-Control", "no-store")


def _when(moment: datetime | None) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if moment else ""


def _headache_text(checkin: Any) -> str:
    parts = [f"{checkin.headache_days} headache days" if checkin.headache_days is not None else "headache days not given"]
    if checkin.medication_days is not None:
        parts.append(f"{checkin.medication_days} days with acute medicine")
    return ", ".join(parts)


def make_app(portal: Portal, extra_routes: list[web.AbstractRouteDef] | None = None) -> web.Application:
    app = web.Application(middlewares=[portal.middleware])
    app.add_routes(portal.routes() + (extra_routes or []))
    return app


