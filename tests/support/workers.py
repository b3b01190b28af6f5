"""Worker processes started exactly as operators start them: ``cyclecare worker NAME``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from shared.broker import free_port
from shared.readiness import NotReady, wait_until_ready

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process ``pid`` so far (NaN once it has gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / TICK


class WorkerProcess:
    """A worker process; ``module`` runs another worker module (``python -m MODULE``) instead."""

    def __init__(self, service: str, env: dict[str, str], log_dir: Path, *, module: str | None = None) -> None:
        self.service = service
        self.argv = ["-m", module] if module else ["-m", "services.cli", "worker", service]
        self.port = free_port()
        self.env = os.environ | env | {"CYCLECARE_HTTP_PORT": str(self.port), "CYCLECARE_HTTP_HOST": "127.0.0.1"}
        self.log_path = log_dir / f"{service}-{self.port}.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "WorkerProcess":
        log = open(self.log_path, "ab")
        self._process = subprocess.Popen(
            [sys.executable, *self.argv],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=Path(__file__).parents[2],
        )
        return self

    async def wait_ready(self, timeout: float = 60.0) -> None:
        def exited() -> str | None:
            if self._process and self._process.poll() is not None:
                return f"{self.service} exited:\n{self.output()[-3000:]}"
            return None

        try:
            await wait_until_ready(self.url, timeout, exited)
        except NotReady as exc:
            raise AssertionError(f"{exc}\n{self.output()[-3000:]}") from None

    def stop(self, timeout: float = 20.0) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def cpu_seconds(self) -> float:
        return cpu_seconds(self._process.pid) if self._process else float("nan")

    def returncode(self) -> int | None:
        """How the process ended (a signal as minus its number), or None while it runs."""
        return self._process.poll() if self._process else None

    def kill(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.kill()
            self._process.wait()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")
