"""The portal's commands (registered in :mod:`services.cli`): ``worker portal``,
``portal rebuild``, ``users add``, ``audit export``."""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime
from pathlib import Path

import click

from shared.config import Settings, load_settings


def _clinics(settings: Settings):  # noqa: ANN202
    from shared.clinics import ClinicsFileError, load_clinics

    try:
        return load_clinics(settings.clinics_file)
    except ClinicsFileError as exc:
        raise SystemExit(f"cyclecare: CYCLECARE_CLINICS: {exc}") from None


def run_worker() -> None:
    from services.portal.app import run_worker as run
    from shared.clock import clock_from

    settings = load_settings()
    run(settings, _clinics(settings), clock_from(settings))


@click.group()
def portal() -> None:
    """The clinician portal's read model."""


@portal.command()
@click.option("--idle", default=5.0, show_default=True, help="Stop replaying once no record came for this many seconds.")
def rebuild(idle: float) -> None:
    """Empty the read model and replay every contract topic from the beginning.
    Stop the portal workers first; start them again afterwards."""
    asyncio.run(_rebuild(load_settings(), idle))


async def _rebuild(settings: Settings, idle: float) -> None:
    from aiokafka import AIOKafkaProducer

    from services.portal.consumer import ProjectionConsumer, group_id
    from services.portal.db import database_url, make_engine, migrate
    from services.portal.store import Projection, ReadModel, empty_projection, get_meta, set_meta
    from shared.topics import Topics

    engine = make_engine(database_url(settings))
    await migrate(engine)
    generation = str(int(await get_meta(engine, "generation", "1")) + 1)
    await empty_projection(engine)
    await set_meta(engine, "generation", generation)
    topics = Topics(settings.topic_namespace)
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    await producer.start()
    consumer = ProjectionConsumer(settings.bootstrap_servers, topics, group_id(topics, generation),
                                  Projection(engine), producer, settings.fetch_max_wait_ms)
    await consumer.start()
    try:
        await consumer.run(idle_exit=idle)
    finally:
        await consumer.stop()
        await producer.stop()
    counts = await ReadModel(engine).counts()
    await engine.dispose()
    click.echo(f"rebuilt the read model (generation {generation}): {consumer.projected} events; "
               + ", ".join(f"{n} {t}" for t, n in counts.items() if t != "projected_events"))


@click.group()
def users() -> None:
    """Portal accounts."""


@users.command("add")
@click.option("--clinic", "clinics", multiple=True, required=True, help="A clinic this person belongs to (repeat for several).")
@click.option("--email", required=True)
@click.option("--clinician-id", default=None, help="Their id in the clinics file (default: the part of the email before @).")
def users_add(clinics: tuple[str, ...], email: str, clinician_id: str | None) -> None:
    """Create an account and print a one-time link to set its password."""
    settings = load_settings()
    directory = _clinics(settings)
    unknown = [c for c in clinics if directory and c not in directory]
    if unknown and list(directory):
        raise SystemExit(f"cyclecare: unknown clinic {', '.join(unknown)} (not in CYCLECARE_CLINICS)")
    link = asyncio.run(add_user(settings, list(clinics), email, clinician_id))
    click.echo(f"account ready for {', '.join(clinics)}; the password link (valid 3 days, once):\n{link}")


async def add_user(settings: Settings, clinics: list[str], email: str, clinician_id: str | None = None) -> str:
    from services.portal.auth import Accounts
    from services.portal.db import database_url, make_engine, migrate

    engine = make_engine(database_url(settings))
    await migrate(engine)
    token = await Accounts(engine).add_user(email, clinics, clinician_id)
    await engine.dispose()
    return f"{settings.portal_url.rstrip('/')}/set-password?token={token}"


@click.group()
def audit() -> None:
    """The portal's audit log."""


@audit.command("export")
@click.option("--since", type=click.DateTime(), default=None, help="Only entries from this moment (UTC).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None, help="File to write (default: stdout).")
def audit_export(since: datetime | None, output: Path | None) -> None:
    """Every view of a patient page and every action, as CSV: at, user, clinic, action, target, from."""
    from datetime import timezone

    csv_text = asyncio.run(_audit_csv(load_settings(), since.replace(tzinfo=timezone.utc) if since else None))
    if output:
        output.write_text(csv_text)
    else:
        sys.stdout.write(csv_text)


async def _audit_csv(settings: Settings, since: datetime | None) -> str:
    from services.portal.auth import Accounts
    from services.portal.db import database_url, make_engine, migrate

    engine = make_engine(database_url(settings))
    await migrate(engine)
    text = await Accounts(engine).audit_csv(since)
    await engine.dispose()
    return text


DEMO_EMAIL = "demo@cyclecare.example"
DEMO_PASSWORD = "cyclecare-demo"


async def fresh_read_model(settings: Settings) -> None:
    """Before `cyclecare run` starts an embedded broker (whose topics start empty), empty a
    read model left by an earlier run so that it shows only what this run publishes."""
    from services.portal.db import database_url, make_engine, migrate
    from services.portal.store import empty_projection

    engine = make_engine(database_url(settings))
    await migrate(engine)
    await empty_projection(engine)
    await engine.dispose()


async def demo_user(settings: Settings, clinics: list[str]) -> tuple[str, str]:
    """The demo's account (all the demo's clinics), with a known password; returns the login."""
    from services.portal.auth import Accounts
    from services.portal.db import database_url, make_engine, migrate

    engine = make_engine(database_url(settings))
    await migrate(engine)
    accounts = Accounts(engine)
    await accounts.set_password(await accounts.add_user(DEMO_EMAIL, clinics, "demo"), DEMO_PASSWORD)
    await engine.dispose()
    return DEMO_EMAIL, DEMO_PASSWORD


@click.group("export")
def export() -> None:
    """Export results for other systems."""


@export.command("fhir")
@click.option("--since", default=None, metavar="DATE",
              help="Only resources changed from this date or moment on (FHIR date, e.g. 2026-03-01 or 2026-03-01T09:00:00Z).")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Directory for the NDJSON files (created if missing).")
def export_fhir(since: str | None, out: Path) -> None:
    """Write one NDJSON file per FHIR resource type from the portal's read model, as the
    FHIR Bulk Data export does (Flag.ndjson, Observation.ndjson, …)."""
    from services.portal.fhir.search import Bound, Search, SearchError, parse_bound

    try:
        search = Search(last_updated=[Bound(start=parse_bound(since, "--since").start)] if since else [])
    except SearchError as exc:
        raise click.BadParameter(str(exc).removeprefix("--since: "), param_hint="--since") from None
    written = asyncio.run(_export_fhir(load_settings(), search, out))
    for resource_type, count in written.items():
        click.echo(f"{out / (resource_type + '.ndjson')}: {count}")


async def _export_fhir(settings: Settings, search: object, out: Path) -> dict[str, int]:
    from services.portal.db import database_url, make_engine, migrate
    from services.portal.fhir.export import export_ndjson, source_rows

    engine = make_engine(database_url(settings))
    await migrate(engine)
    try:
        total = await source_rows(engine, search)  # type: ignore[arg-type]
        with click.progressbar(length=total, label="exporting FHIR resources", file=sys.stderr) as bar:
            return await export_ndjson(engine, search, out, bar.update)  # type: ignore[arg-type]
    finally:
        await engine.dispose()


@portal.command("fhir-outbox")
@click.option("--retry-failed", is_flag=True, help="Queue the resources the EHR refused again (after fixing the cause).")
def fhir_outbox(retry_failed: bool) -> None:
    """How many FHIR resources the push sink has pushed, has pending and had refused (4xx);
    each refused one with the EHR's OperationOutcome issue codes."""
    asyncio.run(_fhir_outbox(load_settings(), retry_failed))


async def _fhir_outbox(settings: Settings, retry: bool) -> None:
    from sqlalchemy import select

    from services.portal import schema as s
    from services.portal.db import database_url, make_engine, migrate
    from services.portal.fhir.sink import issue_codes, outbox_states, retry_failed
    from shared.events import utcnow

    engine = make_engine(database_url(settings))
    await migrate(engine)
    try:
        async with engine.connect() as conn:
            failed = list(await conn.execute(select(s.fhir_outbox).where(s.fhir_outbox.c.state == "failed").order_by(s.fhir_outbox.c.id)))
        for row in failed:
            click.echo(f"failed  {row.resource_type}/{row.resource_id} ({row.change}): {issue_codes(row.error or '')}")
        if retry:
            click.echo(f"queued again: {await retry_failed(engine, utcnow())}")
        states = await outbox_states(engine)
        click.echo(", ".join(f"{n} {state}" for state, n in sorted(states.items())) or "nothing queued")
    finally:
        await engine.dispose()
