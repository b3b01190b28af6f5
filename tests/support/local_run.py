"""`cyclecare run` started exactly as an operator starts it (its own embedded broker and
every worker, on free ports), for the tests and benchmarks that need the whole pipeline,
and what they look at in it: its children, found in /proc."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from services.supervisor import stop_all
from shared.endpoints import RUN_PORT_OFFSET, run_urls
from shared.readiness import NotReady, wait_until_ready

ROOT = Path(__file__).parents[2]
# variables of the caller's own environment that would point the run elsewhere
FOREIGN = ("KAFKA_", "CYCLECARE_", "TWILIO_", "SMTP_")


def free_base_port(count: int = len(RUN_PORT_OFFSET)) -> int:
    """The first of ``count`` consecutive free loopback ports (one per worker)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + count > 65535:
            continue
        socks = [socket.socket() for _ in range(count)]
        try:
            for offset, sock in enumerate(socks):
                sock.bind(("127.0.0.1", base + offset))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise AssertionError(f"no {count} consecutive free ports")


def children_of(pid: int) -> set[int]:
    """The processes whose parent is ``pid`` (read from /proc, so exited ones drop out)."""
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


def role(pid: int) -> str | None:
    """``broker`` or the service a child of `cyclecare run` is the worker of."""
    try:
        argv = [part.decode(errors="replace") for part in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")]
    except OSError:
        return None
    if argv[-3:-2] == ["worker"]:
        return argv[-2]
    return "broker" if "tansu" in Path(argv[0]).name else None


class LocalRun:
    """One `cyclecare run` with a clean environment (no broker, provider or cyclecare
    settings of the caller's) plus ``env``, writing its output to ``data_dir/run.log``."""

    def __init__(self, data_dir: Path, env: Mapping[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.base_port = free_base_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN)} | dict(env or {}) | {
            "CYCLECARE_HTTP_PORT": str(self.base_port), "CYCLECARE_DATA_DIR": str(data_dir)}
        self.log_path = data_dir / "run.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    def url(self, service: str) -> str:
        return run_urls(self.base_port, "127.0.0.1")[service]

    def start(self) -> "LocalRun":
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "services.cli", "run"], env=self.env, cwd=ROOT,
                                            stdout=log, stderr=subprocess.STDOUT)
        return self

    def exited(self) -> str | None:
        return "cyclecare run exited" if self.process is None or self.process.poll() is not None else None

    async def every_worker_ready(self, timeout: float = 90.0) -> None:
        for service in RUN_PORT_OFFSET:
            await self.worker_ready(service, timeout)

    async def worker_ready(self, service: str, timeout: float = 90.0) -> None:
        try:
            await wait_until_ready(self.url(service), timeout, self.exited)
        except NotReady as exc:
            raise AssertionError(f"the {service} worker of cyclecare run is not ready: {exc}\n"
                                 f"{self.log_path.read_text(errors='replace')[-3000:]}") from None

    def children(self) -> dict[str, int]:
        """The living children by role: ``broker`` and one per service."""
        return {name: pid for pid in children_of(self.pid) if alive(pid) and (name := role(pid))}

    def signal(self, how: signal.Signals) -> None:
        os.kill(self.pid, how)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM, as an operator stops it; SIGKILL if it has not exited within ``timeout``."""
        if self.process is not None:
            stop_all([self.process], within=timeout + 1.0)
