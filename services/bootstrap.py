"""The one place that wires settings, clock, clinics and adapters into a service."""

from __future__ import annotations

import asyncio
import logging

from shared.broker import BrokerUnavailable, PartitionPlan, partition_counts, plan_partitions
from shared.clinics import ClinicsFileError, load_clinics
from shared.clock import clock_from
from shared.config import Settings
from shared.endpoints import SERVICES
from shared.logs import configure_logging
from shared.streaming import Runtime
from shared.topics import Topics

log = logging.getLogger(__name__)


def sms_sender(settings: Settings):  # noqa: ANN201
    from services.notifier.adapters.sms import ConsoleSmsSender, TwilioSmsSender

    if not settings.twilio_configured:
        return ConsoleSmsSender()
    return TwilioSmsSender(
        settings.twilio_account_sid or "",
        settings.twilio_auth_token or "",
        from_number=settings.twilio_from,
        messaging_service_sid=settings.twilio_messaging_service_sid,
        api_base=settings.twilio_api_base,
        status_callback=settings.public_url.rstrip("/") + "/twilio/status",
    )


def email_sender(settings: Settings):  # noqa: ANN201
    from services.notifier.adapters.email import ConsoleEmailSender, SmtpEmailSender

    if not settings.smtp_configured:
        return ConsoleEmailSender()
    return SmtpEmailSender(
        settings.smtp_host or "",
        settings.smtp_port,
        sender=settings.smtp_from,
        username=settings.smtp_username,
        password=settings.smtp_password,
        starttls=settings.smtp_starttls,
    )


def build_service(name: str, settings: Settings) -> Runtime:
    try:
        clinics = load_clinics(settings.clinics_file)
    except ClinicsFileError as exc:
        raise SystemExit(f"cyclecare: CYCLECARE_CLINICS: {exc}") from None
    clock = clock_from(settings)
    if name == "scheduler":
        from services.scheduler.app import build

        return build(settings, clock, clinics)
    if name == "notifier":
        from services.notifier.app import build as build_notifier

        return build_notifier(settings, clinics, sms_sender(settings), email_sender(settings), clock)
    if name == "survey":
        from services.survey.app import build as build_survey

        return build_survey(settings, clock, clinics)
    raise SystemExit(f"cyclecare: unknown service {name!r}; choose one of {', '.join(SERVICES)}")


def run_worker(name: str, settings: Settings) -> None:
    """``cyclecare worker NAME``: check the topics before subscribing, then run.

    A service whose source topics already exist with another partition count than the
    configured one is rebuilt with that count (its tables and changelogs follow the sources,
    as in Kafka Streams); sources that disagree stop it here with one line, never later by
    dead-lettering every record."""
    configure_logging(settings.log_format, settings.log_level)
    if settings.parent_pid:
        from services.supervisor import watch_parent

        watch_parent(settings.parent_pid)
    runtime = build_service(name, settings)
    try:
        plan = asyncio.run(check_partitions(runtime))
    except BrokerUnavailable as exc:
        raise SystemExit(f"cyclecare {name}: {exc}") from None
    if plan.note:
        log.warning(plan.note)
    if plan.partitions != settings.partitions:
        runtime = build_service(name, settings.model_copy(update={"partitions": plan.partitions}))
    runtime.run_worker()


async def check_partitions(runtime: Runtime) -> PartitionPlan:
    app = runtime.app
    sources = {topic for agent in app.agents.values() for topic in agent.channel.topics}
    changelogs = {table.changelog_topic_name for table in app.tables.values()}
    existing = await partition_counts(runtime.settings.bootstrap_servers)
    siblings = Topics(runtime.settings.topic_namespace).all()
    return plan_partitions(runtime.service, runtime.settings.partitions, sources, changelogs, existing, siblings)
