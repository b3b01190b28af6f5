"""The ``cyclecare`` command."""

from __future__ import annotations

from pathlib import Path

import click

from shared.config import load_settings

SERVICES = ("scheduler", "notifier", "survey")


@click.group()
def main() -> None:
    """cyclecare: reminders, side-effect check-ins and clinician alerts for treatment cycles."""


@main.command()
@click.argument("service", type=click.Choice(SERVICES))
def worker(service: str) -> None:
    """Run one service (as a container does)."""
    from services.bootstrap import run_worker

    run_worker(service, load_settings())


@main.command()
@click.option("--demo", is_flag=True, help="Enroll a sample clinic and replay patients' replies on a simulated clock.")
@click.option("--speed", default=20000.0, show_default=True, help="How much faster than real time the demo clock runs.")
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



@main.command("import")
@click.argument("kind", type=click.Choice(("patients", "treatments")))
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Validate and report the rows; publish nothing.")
def import_file(kind: str, file: Path, dry_run: bool) -> None:
    """Load a clinic's CSV export (columns: see README) with a per-row error report."""
    from services.scheduler.importer import run_import
    from shared.clinics import ClinicsFileError, load_clinics

    settings = load_settings()
    try:
        clinics = load_clinics(settings.clinics_file)
    except ClinicsFileError as exc:
        raise SystemExit(f"cyclecare: CYCLECARE_CLINICS: {exc}") from None
    raise SystemExit(run_import(kind, file, settings, clinics, dry_run=dry_run))


from services.dlq_cli import dlq  # noqa: E402 - `cyclecare dlq list|replay`

main.add_command(dlq)

if __name__ == "__main__":
    main()
