"""The ``cyclecare`` command."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import click

from shared.config import load_settings
from shared.streaming import create_topics

SERVICES = ("scheduler", "notifier", "survey", "portal")
# `cyclecare run` gives each worker its own port: survey (webhooks) gets CYCLECARE_HTTP_PORT.
PORT_OFFSET = {"survey": 0, "notifier": 1, "scheduler": 2, "portal": 3}


@click.group()
def main() -> None:
    """cyclecare: reminders, side-effect check-ins and clinician alerts for treatment cycles."""


@main.command()
@click.argument("service", type=click.Choice(SERVICES))
def worker(service: str) -> None:
    """Run one service (as a container does)."""
    if service == "portal":
        from services.portal.cli import run_worker

        return run_worker()
    from services.bootstrap import build_service

    settings = load_settings()
    build_service(service, settings).run_worker()


@main.command()
@click.option("--demo", is_flag=True, help="Enroll a sample clinic and replay patients' replies on a simulated clock.")
@click.option("--speed", default=20000.0, show_default=True, help="How much faster than real time the demo clock runs.")
@click.option("--exit-after", type=float, default=None, help="Stop after this many seconds (default: run until Ctrl-C).")
def run(demo: bool, speed: float, exit_after: float | None) -> None:
    """Run the whole pipeline on this machine (embedded broker unless KAFKA_BOOTSTRAP_SERVERS is set)."""
    settings = load_settings()
    env = dict(os.environ)
    broker = None
    if not settings.kafka_bootstrap_servers:
        from shared.broker import EmbeddedBroker

        broker = EmbeddedBroker().start()
        env["KAFKA_BOOTSTRAP_SERVERS"] = broker.bootstrap_servers
        asyncio.run(create_topics(load_settings(env)))
        env.setdefault("CYCLECARE_REBALANCE_TIMEOUT", "2")
        if not settings.database_url:
            from services.portal.cli import fresh_read_model

            asyncio.run(fresh_read_model(settings))
        click.echo(f"embedded Kafka-protocol broker on {broker.bootstrap_servers}")
    env.setdefault("CYCLECARE_HTTP_HOST", "127.0.0.1")
    base_port = settings.http_port
    env.setdefault("CYCLECARE_PUBLIC_URL", f"http://127.0.0.1:{base_port}")
    env.setdefault("CYCLECARE_PORTAL_URL", f"http://127.0.0.1:{base_port + PORT_OFFSET['portal']}")
    if demo:
        env["CYCLECARE_CLOCK_START"] = env.get("CYCLECARE_CLOCK_START") or "2026-03-02T15:00:00+00:00"
        env["CYCLECARE_CLOCK_SPEED"] = str(speed)
        env["CYCLECARE_CLOCK_ANCHOR"] = str(time.time())
        env.setdefault("TWILIO_AUTH_TOKEN", secrets.token_hex(16))  # signs the demo's replies
        env.setdefault("CYCLECARE_TICK_SECONDS", "0.5")
    workers = {name: _spawn(name, env, base_port + PORT_OFFSET[name]) for name in SERVICES}
    click.echo("workers: " + ", ".join(f"{n} http://127.0.0.1:{base_port + PORT_OFFSET[n]}" for n in SERVICES))
    try:
        if demo:
            from services.demo import run_demo

            asyncio.run(run_demo(env, {n: base_port + PORT_OFFSET[n] for n in SERVICES}, exit_after))
        else:
            _wait(workers, exit_after)
    except KeyboardInterrupt:
        pass
    finally:
        _stop(workers)
        if broker:
            broker.stop()


def _spawn(name: str, env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    worker_env = env | {"CYCLECARE_HTTP_PORT": str(port), "CYCLECARE_DATA_DIR": env.get("CYCLECARE_DATA_DIR", "var")}
    return subprocess.Popen([sys.executable, "-m", "services.cli", "worker", name], env=worker_env)


def _wait(workers: dict[str, subprocess.Popen[bytes]], exit_after: float | None) -> None:
    deadline = time.monotonic() + exit_after if exit_after else None
    while deadline is None or time.monotonic() < deadline:
        for name, process in workers.items():
            if process.poll() is not None:
                raise SystemExit(f"cyclecare: the {name} worker exited with {process.returncode}")
        time.sleep(0.5)


def _stop(workers: dict[str, subprocess.Popen[bytes]]) -> None:
    for process in workers.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in workers.values():
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


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


from services.portal.cli import audit, portal, users  # noqa: E402  (the portal's commands)

main.add_command(portal)
main.add_command(users)
main.add_command(audit)


if __name__ == "__main__":
    main()
