"""What a clinic's engineer meets in the first hour: URLs, signatures, hints and help."""

from __future__ import annotations

import shlex

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner
from twilio.request_validator import RequestValidator

from services.cli import main
from services.envhelp import undescribed
from services.local_run import startup_lines
from services.twilio_tools import parse_pairs, sign
from shared.config import load_settings
from shared.endpoints import not_found_hint, not_found_middleware, run_urls


def test_the_public_url_defaults_to_the_address_the_process_serves():
    assert load_settings({}).public_url == "http://localhost:6066"
    assert load_settings({"CYCLECARE_HTTP_PORT": "7000"}).public_url == "http://localhost:7000"
    assert load_settings({"CYCLECARE_PUBLIC_URL": "https://x.example"}).public_url == "https://x.example"


def test_the_start_up_lines_name_every_worker_url_and_what_it_serves():
    lines = "\n".join(startup_lines(run_urls(6066), "http://localhost:6066", api_token_set=False, twilio_token_set=True))
    assert "survey    http://localhost:6066" in lines and "POST /twilio/sms" in lines
    assert "notifier  http://localhost:6067" in lines and "POST /twilio/status" in lines
    assert "scheduler http://localhost:6068" in lines and "POST /v1/patients, POST /v1/treatments" in lines
    assert "checked against http://localhost:6066" in lines
    assert "ingest API answers 503 until CYCLECARE_API_TOKEN is set" in lines


def test_a_request_signed_by_twilio_sign_passes_the_webhook_check():
    request = sign("http://localhost:6066/twilio/sms", parse_pairs(("From=+19165550111", "Body=yes = sure")), "secret")
    assert request.form == {"From": "+19165550111", "Body": "yes = sure"}
    assert RequestValidator("secret").validate("http://localhost:6066/twilio/sms", request.form, request.signature)
    assert shlex.split(request.curl())[-1] == "Body=yes = sure"


def test_twilio_sign_prints_a_curl_command_with_the_token_from_the_environment():
    result = CliRunner().invoke(main, ["twilio", "sign", "http://localhost:6066/twilio/sms", "Body=no"],
                                env={"TWILIO_AUTH_TOKEN": "secret"})
    assert result.exit_code == 0 and result.output.startswith("curl ") and "X-Twilio-Signature: " in result.output


def test_twilio_sign_without_a_token_says_which_variable_is_missing():
    result = CliRunner().invoke(main, ["twilio", "sign", "http://localhost:6066/twilio/sms"], env={"TWILIO_AUTH_TOKEN": ""})
    assert result.exit_code == 1 and "TWILIO_AUTH_TOKEN is not set" in result.output


def test_a_path_served_by_another_worker_gets_a_hint_naming_it_and_its_url():
    hint = not_found_hint("survey", "POST", "/v1/patients", run_urls(6066))
    assert hint["hint"] == "POST /v1/patients is served by the scheduler at http://localhost:6068, not by the survey"
    assert hint["url"] == "http://localhost:6068/v1/patients"


def test_an_unknown_path_gets_the_list_of_what_this_worker_serves():
    hint = not_found_hint("notifier", "GET", "/nothing")
    assert hint["hint"] == "the notifier serves POST /twilio/status, GET /healthz, GET /readyz, GET /metrics"


async def test_a_worker_answers_a_wrong_path_with_json_and_keeps_its_own_404s():
    app = web.Application(middlewares=[not_found_middleware("survey", run_urls(6066))])

    async def unknown_alert(request: web.Request) -> web.Response:
        return web.json_response({"error": "unknown alert"}, status=404)

    app.router.add_post("/twilio/sms", unknown_alert)
    async with TestClient(TestServer(app)) as client:
        wrong = await client.post("/v1/treatments", json={})
        assert wrong.status == 404
        assert (await wrong.json())["hint"].startswith("POST /v1/treatments is served by the scheduler")
        wrong_method = await client.get("/twilio/sms")
        assert wrong_method.status == 405 and "use POST, not GET" in (await wrong_method.json())["hint"]
        own = await client.post("/twilio/sms")
        assert own.status == 404 and await own.json() == {"error": "unknown alert"}


def test_every_command_that_reads_the_environment_lists_its_variables_in_help():
    runner = CliRunner()
    assert "KAFKA_BOOTSTRAP_SERVERS" in runner.invoke(main, ["import", "--help"]).output
    assert "CYCLECARE_DATA_DIR" in runner.invoke(main, ["import", "--help"]).output
    assert "TWILIO_AUTH_TOKEN" in runner.invoke(main, ["twilio", "sign", "--help"]).output
    worker_help = runner.invoke(main, ["worker", "--help"]).output
    assert "CYCLECARE_PUBLIC_URL" in worker_help and "CYCLECARE_SMS_RATE" in worker_help


def test_every_setting_is_described_for_help_and_the_contract_document():
    assert undescribed() == [], "add these variables to shared/data/settings.yaml"


def test_a_skipped_line_names_the_patient_and_why_and_nothing_else():
    from datetime import datetime, timezone

    from services.scheduler.app import skipped_line
    from shared.events import TimerSkipped

    event = TimerSkipped(patient_id="p-1001", clinic_id="rocklin", treatment_id="t-1", cycle=1, day=2,
                         due_at=datetime(2026, 3, 4, 18, tzinfo=timezone.utc), skipped_type="checkin.due",
                         kind="side_effects", reason="stale")
    assert skipped_line(event) == ("skipped checkin.due (side_effects) day 2 of cycle 1 for patient p-1001: "
                                   "more than 24 h past when the treatment was recorded")


def test_the_demo_names_each_day_of_the_cycle_once_as_the_clock_passes_it():
    from datetime import date, datetime, timezone

    from services.demo import passed_milestones
    from shared.clock import ManualClock

    shown: set[int] = set()
    clock = ManualClock(datetime(2026, 3, 9, 18, tzinfo=timezone.utc))
    first = passed_milestones(clock, date(2026, 3, 1), shown)
    assert first == [(2, date(2026, 3, 3)), (7, date(2026, 3, 8))]
    shown.update(day for day, _ in first)
    assert passed_milestones(clock, date(2026, 3, 1), shown) == []
