"""The ``cyclecare`` command."""

from __future__ import annotations

from pathlib import Path

import click

from services.envhelp import environment_epilog
from shared.config import load_settings
from shared.endpoints import SERVICES


@click.group()
def main() -> None:
    """cyclecare: reminders, side-effect check-ins and clinician alerts for treatment cycles."""


@main.command(epilog=environment_epilog("worker"))
@click.argument("service", type=click.Choice(SERVICES))
def worker(service: str) -> None:
    """Run one service (as a container does)."""
    if service == "portal":
        from services.portal.cli import run_worker as run_portal

        return run_portal()
    from services.bootstrap import run_worker

    run_worker(service, load_settings())


@main.command(epilog=environment_epilog("run"))
@click.option("--demo", is_flag=True, help="Enroll a sample clinic and replay patients' replies on a simulated clock.")
@click.option("--speed", default=70000.0, show_default=True,
              help="How much faster than real time the demo clock runs (70000: a day in 1.2 s, the 98-day cycle in about 2 minutes).")
@click.option("--exit-after", type=float, default=None, help="Stop after this many seconds (default: run until Ctrl-C).")
def run(demo: bool, speed: float, exit_after: float | None) -> None:
    """Run the whole pipeline on this machine (embedded broker unless KAFKA_BOOTSTRAP_SERVERS is set)."""
    from services.supervisor import run_pipeline

    run_pipeline(demo, speed, exit_after)


@main.group()
def templates() -> None:
    """Message templates."""


@templates.command("check")
@click.option("--max-segments", default=3, show_default=True, help="Longest SMS allowed, in segments.")
def templates_check(max_segments: int) -> None:
    """Render every template with sample data; fail on an error or an over-long SMS."""
    from services.notifier.rendering import check_all

    problems = check_all(max_segments)
    for problem in problems:
        click.echo(f"FAIL {problem}", err=True)
    if problems:
        raise SystemExit(1)
    click.echo("all templates render and fit")



@main.command("import", epilog=environment_epilog("import"))
@click.argument("kind", type=click.Choice(("patients", "treatments")))
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Validate and report the rows; publish nothing.")
@click.option("--encoding", default=None, help="The file's encoding (default: UTF-8, with or without BOM, else Windows-1252/Latin-1).")
def import_file(kind: str, file: Path, dry_run: bool, encoding: str | None) -> None:
    """Load a clinic's CSV export (columns: see README) with a per-row error report.

    Without KAFKA_BOOTSTRAP_SERVERS it publishes to the embedded broker of a `cyclecare run`
    started in this directory (found through CYCLECARE_DATA_DIR/embedded-broker)."""
    from services.local_run import running_broker
    from services.importer import run_import
    from shared.clinics import ClinicsFileError, load_clinics

    settings = load_settings()
    try:
        clinics = load_clinics(settings.clinics_file)
    except ClinicsFileError as exc:
        raise SystemExit(f"cyclecare: CYCLECARE_CLINICS: {exc}") from None
    bootstrap = settings.kafka_bootstrap_servers or (None if dry_run else running_broker(settings.data_dir))
    raise SystemExit(run_import(kind, file, settings, clinics, dry_run=dry_run, bootstrap=bootstrap, encoding=encoding))


@main.command("example-data")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=Path("var/examples"))
def example_data(directory: Path) -> None:
    """Write patients.csv, treatments.csv and treatments-with-errors.csv dated relative to today."""
    from datetime import date

    from services.example_data import write_examples

    for path in write_examples(directory, date.today()):
        click.echo(f"wrote {path}")


@main.group()
def twilio() -> None:
    """Try the Twilio webhooks by hand."""


@twilio.command("sign", epilog=environment_epilog("twilio sign"))
@click.argument("url")
@click.argument("params", nargs=-1)
@click.option("--send", is_flag=True, help="POST the signed request and print the answer instead of a curl command.")
def twilio_sign(url: str, params: tuple[str, ...], send: bool) -> None:
    """Sign a webhook request as Twilio does: URL is the full public URL
    (CYCLECARE_PUBLIC_URL + /twilio/sms), PARAMS the form fields as key=value."""
    from services import twilio_tools

    token = load_settings().twilio_auth_token
    if not token:
        raise SystemExit("cyclecare twilio sign: TWILIO_AUTH_TOKEN is not set (use the token the worker checks with)")
    try:
        request = twilio_tools.sign(url, twilio_tools.parse_pairs(params), token)
    except twilio_tools.BadParameter as exc:
        raise SystemExit(f"cyclecare twilio sign: {exc}") from None
    if not send:
        click.echo(request.curl())
        return
    status, body = twilio_tools.send(request)
    click.echo(f"HTTP {status} {body}")
    raise SystemExit(0 if status < 400 else 1)


@main.command()
@click.option("--write", "mode", flag_value="write", help="Write docs/contract.md.")
@click.option("--check", "mode", flag_value="check", default=True, help="Exit 1 when docs/contract.md is stale (default).")
def contract(mode: str) -> None:
    """Generate docs/contract.md from the event models and the settings."""
    from services import contract_doc

    raise SystemExit(contract_doc.main(["--" + mode]))


from services.dlq_cli import dlq  # noqa: E402 - `cyclecare dlq list|replay`

main.add_command(dlq)


from services.portal.cli import audit, export, portal, users  # noqa: E402  (the portal's commands)

main.add_command(portal)
main.add_command(export)  # `cyclecare export fhir`
main.add_command(users)
main.add_command(audit)

if __name__ == "__main__":
    main()
