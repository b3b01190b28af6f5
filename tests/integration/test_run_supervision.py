"""`cyclecare run` owns its children: SIGTERM or SIGINT stops the embedded broker and every
worker, and they exit by themselves when the parent is SIGKILLed (nothing keeps the ports)."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import pytest

from services.supervisor import Restarts
from shared.endpoints import SERVICES
from tests.support.kafka import eventually
from tests.support.local_run import LocalRun, alive

pytestmark = pytest.mark.integration


def start_run(tmp_path: Path) -> LocalRun:
    """`cyclecare run` as an operator starts it (embedded broker), on four free ports."""
    return LocalRun(tmp_path, {"CYCLECARE_PARTITIONS": "2"}).start()


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT", "SIGKILL"])
async def test_stopping_cyclecare_run_stops_the_broker_and_every_worker(how: str, tmp_path: Path) -> None:
    run = start_run(tmp_path)
    children: set[int] = set()
    try:
        await run.every_worker_ready()
        found = run.children()
        children = set(found.values())
        assert sorted(found) == sorted(["broker", *SERVICES]), "the broker and four workers"

        run.signal(getattr(signal, how))

        await eventually(lambda: not any(alive(pid) for pid in children), 12,
                         f"every child of cyclecare run to exit after {how}")
        if how != "SIGKILL":
            await eventually(lambda: run.process.poll() is not None, 5, "cyclecare run to exit")
    finally:
        run.stop(timeout=0.0)
        for pid in children:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    with socket.socket() as sock:  # the next run does not collide
        sock.bind(("127.0.0.1", run.base_port))


async def test_a_worker_that_crashes_in_cyclecare_run_is_started_again_and_ready(tmp_path: Path) -> None:
    run = start_run(tmp_path)
    try:
        await run.every_worker_ready()
        first = run.children().get("scheduler")
        assert first is not None
        # a worker that dies within its first seconds failed to start (and stops the run): this one had got going
        started = Path(f"/proc/{first}").stat().st_mtime
        await eventually(lambda: time.time() - started > Restarts().settle + 1, 30, "the scheduler to be settled")

        os.kill(first, signal.SIGKILL)  # what the OOM killer does

        replacement = await eventually(lambda: (p := run.children().get("scheduler")) not in (None, first) and p,
                                       30, "a new scheduler worker")
        await run.worker_ready("scheduler")
        assert run.process.poll() is None and alive(replacement)
        assert b"the scheduler worker exited with -9; starting it again" in run.log_path.read_bytes()
    finally:
        run.stop(timeout=15)
