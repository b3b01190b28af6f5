"""`cyclecare run` owns its children: SIGTERM or SIGINT stops the embedded broker and every
worker, and they exit by themselves when the parent is SIGKILLed (nothing keeps the ports)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import BinaryIO

import pytest

from services.supervisor import Restarts
from shared.readiness import wait_until_ready
from tests.support.kafka import eventually

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]


def children_of(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def free_base_port() -> int:
    """Four consecutive free ports (survey, notifier, scheduler, portal)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base > 65000:
            continue
        try:
            socks = [socket.socket() for _ in range(4)]
            for offset, sock in enumerate(socks):
                sock.bind(("127.0.0.1", base + offset))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise AssertionError("no four consecutive free ports")


def start_run(tmp_path: Path) -> tuple[int, subprocess.Popen[bytes], BinaryIO]:
    """`cyclecare run` as an operator starts it (embedded broker), on four free ports."""
    base = free_base_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "CYCLECARE_", "TWILIO_", "SMTP_"))}
    env |= {"CYCLECARE_HTTP_PORT": str(base), "CYCLECARE_DATA_DIR": str(tmp_path), "CYCLECARE_PARTITIONS": "2"}
    log = open(tmp_path / "run.log", "wb")
    run = subprocess.Popen([sys.executable, "-m", "services.cli", "run"], env=env, cwd=ROOT, stdout=log,
                           stderr=subprocess.STDOUT)
    return base, run, log


async def every_worker_ready(base: int, run: subprocess.Popen[bytes]) -> None:
    for offset in range(4):
        await wait_until_ready(f"http://127.0.0.1:{base + offset}", 90,
                               lambda: "cyclecare run exited" if run.poll() is not None else None)


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT", "SIGKILL"])
async def test_stopping_cyclecare_run_stops_the_broker_and_every_worker(how: str, tmp_path: Path) -> None:
    base, run, log = start_run(tmp_path)
    children: set[int] = set()
    try:
        await every_worker_ready(base, run)
        children = children_of(run.pid)
        assert len(children) == 5, "the broker and four workers"

        os.kill(run.pid, getattr(signal, how))

        await eventually(lambda: not any(alive(pid) for pid in children), 12,
                         f"every child of cyclecare run to exit after {how}")
        if how != "SIGKILL":
            await eventually(lambda: run.poll() is not None, 5, "cyclecare run to exit")
    finally:
        run.kill()
        run.wait()
        for pid in children:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        log.close()
    with socket.socket() as sock:  # the next run does not collide
        sock.bind(("127.0.0.1", base))


def worker_pid(parent: int, service: str) -> int | None:
    for pid in children_of(parent):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if alive(pid) and argv[-3:-1] == [b"worker", service.encode()]:
            return pid
    return None


async def test_a_worker_that_crashes_in_cyclecare_run_is_started_again_and_ready(tmp_path: Path) -> None:
    base, run, log = start_run(tmp_path)
    scheduler = f"http://127.0.0.1:{base + 2}"
    try:
        await every_worker_ready(base, run)
        first = worker_pid(run.pid, "scheduler")
        assert first is not None
        # a worker that dies within its first seconds failed to start (and stops the run): this one had got going
        started = Path(f"/proc/{first}").stat().st_mtime
        await eventually(lambda: time.time() - started > Restarts().settle + 1, 30, "the scheduler to be settled")

        os.kill(first, signal.SIGKILL)  # what the OOM killer does

        replacement = await eventually(lambda: (p := worker_pid(run.pid, "scheduler")) not in (None, first) and p,
                                       30, "a new scheduler worker")
        await wait_until_ready(scheduler, 90, lambda: "cyclecare run exited" if run.poll() is not None else None)
        assert run.poll() is None and alive(replacement)
        assert b"the scheduler worker exited with -9; starting it again" in (tmp_path / "run.log").read_bytes()
    finally:
        run.send_signal(signal.SIGTERM)
        try:
            run.wait(timeout=15)
        except subprocess.TimeoutExpired:
            run.kill()
            run.wait()
        log.close()
