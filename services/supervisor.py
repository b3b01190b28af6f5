"""`cyclecare run` owns its children: the embedded broker and the workers.

- SIGTERM, SIGINT or SIGHUP to `cyclecare run` stops every child within ``STOP_WITHIN``
  seconds (a graceful SIGTERM first, SIGKILL for whatever is left at the deadline).
- A child exits by itself when the parent dies without a chance to clean up (SIGKILL, OOM):
  on Linux the kernel sends it SIGTERM (``PR_SET_PDEATHSIG``); everywhere, a worker's
  watchdog thread notices its parent is gone and stops, forcibly after a grace period.
- A worker that was running and exits by itself (a crash, the OOM killer) is started again
  with backoff, as Kubernetes would restart its pod: its records were not acknowledged, so
  the new one takes them over. One that fails at start-up (a configuration problem, topics
  that cannot be co-partitioned), or keeps crashing, stops the run with the reason.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import ctypes.util
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import click

from services import local_run
from shared.broker import EmbeddedBroker
from shared.config import load_settings
from shared.endpoints import RUN_PORT_OFFSET as PORT_OFFSET
from shared.endpoints import SERVICES, run_urls
from shared.streaming import create_topics

log = logging.getLogger(__name__)

STOP_WITHIN = 10.0
PR_SET_PDEATHSIG = 1


class Stop(BaseException):
    """Raised in the main thread by SIGTERM/SIGHUP, like KeyboardInterrupt for SIGINT."""


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None]:
    """A ``preexec_fn``: the child gets ``sig`` when the process that started it dies."""
    parent = os.getpid()

    def preexec() -> None:
        if sys.platform.startswith("linux"):
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl: nobody would tell us
            os._exit(1)

    return preexec


def watch_parent(parent_pid: int, grace: float = 8.0, interval: float = 1.0) -> threading.Thread:
    """In a child: once ``parent_pid`` is no longer our parent, SIGTERM ourselves (a graceful
    stop), and exit hard if that has not finished within ``grace`` seconds."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(interval)
        log.warning("the parent process %s is gone: stopping", parent_pid)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(grace)
        os._exit(70)

    thread = threading.Thread(target=watch, name="parent-watch", daemon=True)
    thread.start()
    return thread


@contextmanager
def stop_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP raise :class:`Stop` in the main thread, SIGINT raises
    KeyboardInterrupt (even when started ignored), so ``finally`` blocks stop the children."""

    def raise_stop(signum: int, frame: object) -> None:
        raise Stop(signal.Signals(signum).name)

    previous = {s: signal.signal(s, raise_stop) for s in (signal.SIGTERM, signal.SIGHUP)}
    # A shell starts background jobs with SIGINT ignored, and Python then keeps ignoring it:
    # `cyclecare run &` followed by `kill -INT` must stop it all the same.
    previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def ignore_stop_signals() -> None:
    """While stopping the children, a second Ctrl-C or SIGTERM must not abandon them."""
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)


def spawn_worker(name: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    env = env | {"CYCLECARE_PARENT_PID": str(os.getpid())}
    return subprocess.Popen([sys.executable, "-m", "services.cli", "worker", name], env=env,
                            preexec_fn=die_with_parent())


def stop_all(processes: list[subprocess.Popen[bytes]], within: float = STOP_WITHIN) -> None:
    """SIGTERM every live process, wait until ``within`` seconds have passed (less one for
    the stragglers), then SIGKILL what is left."""
    deadline = time.monotonic() + within - 1.0
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("pid %s did not stop within %.0fs: killing it", process.pid, within)
            process.kill()
            process.wait()


# --- cyclecare run ------------------------------------------------------------------------


@dataclass
class Restarts:
    """When to start a worker again after it exited by itself: ``delay`` seconds later, or
    never (None) when it failed at start-up or crashed ``limit`` times within ``window``."""

    settle: float = 10.0  # a worker that exits sooner after its start never got going
    limit: int = 5
    window: float = 600.0
    backoff: float = 1.0
    cap: float = 30.0
    crashes: dict[str, list[float]] = field(default_factory=dict)

    def delay(self, name: str, started_at: float, now: float) -> float | None:
        if now - started_at < self.settle:
            return None
        recent = [t for t in self.crashes.get(name, []) if now - t < self.window] + [now]
        self.crashes[name] = recent
        if len(recent) > self.limit:
            return None
        return min(self.cap, self.backoff * 2 ** (len(recent) - 1))


class Pipeline:
    """The children of one `cyclecare run`: the embedded broker (unless Kafka is configured)
    and one worker per service."""

    def __init__(self) -> None:
        self.broker: EmbeddedBroker | None = None
        self.broker_file_dir: Path | None = None
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self.envs: dict[str, dict[str, str]] = {}
        self.started_at: dict[str, float] = {}
        self.restarts = Restarts()

    def start_broker(self, env: dict[str, str], data_dir: Path) -> None:
        self.broker = EmbeddedBroker(preexec_fn=die_with_parent())
        self.broker.start()
        env["KAFKA_BOOTSTRAP_SERVERS"] = self.broker.bootstrap_servers
        asyncio.run(create_topics(load_settings(env)))
        env.setdefault("CYCLECARE_REBALANCE_TIMEOUT", "2")
        port_file = local_run.write_broker_file(data_dir, self.broker.bootstrap_servers)
        self.broker_file_dir = data_dir
        click.echo(f"embedded Kafka-protocol broker on {self.broker.bootstrap_servers} (named in {port_file} "
                   "for `cyclecare import`)")

    def start_workers(self, env: dict[str, str], base_port: int, quiet: bool = False) -> None:
        for name in SERVICES:
            worker_env = env | {"CYCLECARE_HTTP_PORT": str(base_port + PORT_OFFSET[name]),
                                "CYCLECARE_DATA_DIR": env.get("CYCLECARE_DATA_DIR", "var")}
            if quiet:  # the demo's console is for clinic staff: messages and alerts, not the workers' start-up log
                worker_env.setdefault("CYCLECARE_LOG_LEVEL", "WARNING")
            self.envs[name] = worker_env
            self.start_worker(name)

    def start_worker(self, name: str) -> None:
        self.workers[name] = spawn_worker(name, self.envs[name])
        self.started_at[name] = time.monotonic()

    def wait(self, exit_after: float | None) -> None:
        deadline = time.monotonic() + exit_after if exit_after else None
        restart_at: dict[str, float] = {}
        while deadline is None or time.monotonic() < deadline:
            now = time.monotonic()
            for name, process in self.workers.items():
                if process.poll() is not None and name not in restart_at:
                    restart_at[name] = now + self._restart_delay(name, process.returncode, now)
            for name in [n for n, at in restart_at.items() if at <= now]:
                del restart_at[name]
                self.start_worker(name)
            time.sleep(0.5)

    def _restart_delay(self, name: str, code: int, now: float) -> float:
        delay = self.restarts.delay(name, self.started_at[name], now)
        if delay is None:
            raise SystemExit(f"cyclecare: the {name} worker exited with {code}"
                             + (" and keeps crashing" if now - self.started_at[name] >= self.restarts.settle else ""))
        click.echo(f"cyclecare: the {name} worker exited with {code}; starting it again in {delay:.0f}s "
                   "(its unacknowledged records are redelivered to the new one)", err=True)
        return delay

    def stop(self) -> None:
        """Workers first (they leave their groups while the broker is up), then the broker;
        all within ``STOP_WITHIN`` seconds."""
        stop_all(list(self.workers.values()), within=STOP_WITHIN - 2.0)
        if self.broker is not None:
            self.broker.stop(timeout=1.5)
            if self.broker_file_dir is not None:
                local_run.remove_broker_file(self.broker_file_dir, self.broker.bootstrap_servers)


def run_pipeline(demo: bool, speed: float, exit_after: float | None) -> None:
    """`cyclecare run`: start the children, wait, and stop every one of them however it ends
    (Ctrl-C, SIGTERM, SIGHUP, a worker exiting, ``--exit-after``)."""
    pipeline = Pipeline()
    with stop_signals():
        try:
            _run(pipeline, demo, speed, exit_after)
        except (KeyboardInterrupt, Stop):
            pass
        finally:
            ignore_stop_signals()
            pipeline.stop()


def _run(pipeline: Pipeline, demo: bool, speed: float, exit_after: float | None) -> None:
    settings = load_settings()
    env = dict(os.environ)
    if not settings.kafka_bootstrap_servers:
        pipeline.start_broker(env, settings.data_dir)
        if not settings.database_url:  # the embedded broker starts empty: so does the portal's read model
            from services.portal.cli import fresh_read_model

            asyncio.run(fresh_read_model(settings))
    env.setdefault("CYCLECARE_HTTP_HOST", "127.0.0.1")
    base_port = settings.http_port
    urls = run_urls(base_port)
    env.setdefault("CYCLECARE_SERVICE_URLS", json.dumps(urls))
    env.setdefault("CYCLECARE_PORTAL_URL", urls["portal"])
    if demo:
        env["CYCLECARE_CLOCK_START"] = env.get("CYCLECARE_CLOCK_START") or "2026-03-02T15:00:00+00:00"
        env["CYCLECARE_CLOCK_SPEED"] = str(speed)
        env["CYCLECARE_CLOCK_ANCHOR"] = str(time.time())
        env.setdefault("TWILIO_AUTH_TOKEN", secrets.token_hex(16))  # signs the demo's replies
        env.setdefault("CYCLECARE_TICK_SECONDS", "0.5")
    pipeline.start_workers(env, base_port, quiet=demo)
    survey = load_settings(env | {"CYCLECARE_HTTP_PORT": str(base_port)})
    click.echo("workers:\n" + "\n".join(local_run.startup_lines(
        urls, survey.public_url, bool(survey.api_token), bool(survey.twilio_auth_token))))
    if demo:
        from services.demo import run_demo

        asyncio.run(run_demo(env, {n: base_port + PORT_OFFSET[n] for n in SERVICES}, exit_after))
    else:
        pipeline.wait(exit_after)
