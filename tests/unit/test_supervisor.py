"""`cyclecare run`'s children: they die with their parent, and stopping never hangs."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from services.supervisor import Restarts, stop_all

ROOT = Path(__file__).parents[2]
PARENT = """
import subprocess, sys, time
from services.supervisor import die_with_parent
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], preexec_fn=die_with_parent())
print(child.pid, flush=True)
time.sleep(60)
"""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_until(predicate, timeout: float) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_a_child_exits_by_itself_when_its_parent_is_sigkilled() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        assert alive(child)
        parent.kill()
        parent.wait()
        assert wait_until(lambda: not alive(child), 10), "the child outlived its SIGKILLed parent"
    finally:
        parent.kill()


def test_stopping_kills_a_child_that_ignores_sigterm_at_the_deadline() -> None:
    stubborn = subprocess.Popen([sys.executable, "-c",
                                 "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                                 "print('ready', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    polite = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    assert stubborn.stdout.readline().strip() == "ready"
    stop_all([stubborn, polite], within=2.0)
    assert polite.returncode == -signal.SIGTERM
    assert stubborn.returncode == -signal.SIGKILL
    assert not alive(stubborn.pid)


def test_sigint_stops_a_run_started_in_the_background_with_sigint_ignored() -> None:
    script = ("import time\nfrom services.supervisor import stop_signals\nwith stop_signals():\n"
              "    try:\n        print('ready', flush=True); time.sleep(60)\n"
              "    except KeyboardInterrupt:\n        print('stopping', flush=True)\n")
    ignored = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    assert ignored.stdout.readline().strip() == "ready"
    ignored.send_signal(signal.SIGINT)
    try:
        assert ignored.wait(timeout=10) == 0
    finally:
        ignored.kill()
    assert ignored.stdout.read().strip() == "stopping"


def test_a_worker_that_crashes_while_running_is_started_again_with_growing_backoff() -> None:
    restarts = Restarts(settle=10, limit=3, window=600, backoff=1, cap=30)
    assert restarts.delay("survey", started_at=0, now=60) == 1
    assert restarts.delay("survey", started_at=61, now=120) == 2
    assert restarts.delay("notifier", started_at=0, now=120) == 1  # each worker has its own count
    assert restarts.delay("survey", started_at=122, now=180) == 4


def test_a_worker_that_fails_at_start_up_or_keeps_crashing_stops_the_run() -> None:
    restarts = Restarts(settle=10, limit=2, window=600)
    assert restarts.delay("scheduler", started_at=0, now=3) is None  # a configuration problem: say it, once
    assert restarts.delay("survey", started_at=0, now=60) is not None
    assert restarts.delay("survey", started_at=61, now=120) is not None
    assert restarts.delay("survey", started_at=121, now=180) is None
    assert Restarts(limit=2, window=600).delay("survey", started_at=0, now=60) is not None
    late = Restarts(limit=1, window=100)
    assert late.delay("survey", started_at=0, now=60) is not None
    assert late.delay("survey", started_at=61, now=500) is not None  # the earlier crash is out of the window
