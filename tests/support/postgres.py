"""A throwaway PostgreSQL cluster for the portal's repository tests: Debian's binaries
(/usr/lib/postgresql/*/bin), a temporary data directory, a free port, trust auth on
127.0.0.1, run as a non-root user (PostgreSQL refuses root). Stopped and deleted after."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from shared.broker import free_port


class PostgresUnavailable(RuntimeError):
    pass


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if not found:
        raise PostgresUnavailable("PostgreSQL's initdb is not installed (apt-get install postgresql; .ci/run does)")
    return Path(found[-1]).parent


def _as_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresUnavailable("running as root and there is no 'postgres' user to run the cluster as") from None
    return ["runuser", "-u", "postgres", "--"]


class ThrowawayPostgres:
    def __init__(self) -> None:
        self.bin = _bin_dir()
        self.prefix = _as_user()
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="cyclecare-pg-"))
        self.data = self.root / "data"

    def _run(self, *args: str) -> None:
        result = subprocess.run([*self.prefix, *args], capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise PostgresUnavailable(f"{Path(args[0]).name} failed: {result.stderr[-2000:] or result.stdout[-2000:]}")

    def start(self) -> "ThrowawayPostgres":
        if self.prefix:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "cyclecare", "-E", "UTF8", "--no-sync")
        return self.resume()

    def pause(self) -> None:
        """Take the server away (its data stays): the database is down until :meth:`resume`."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def resume(self) -> "ThrowawayPostgres":
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w", "start")
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://cyclecare@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    """A fixture body: a started cluster, stopped and deleted after; the test is skipped
    where PostgreSQL is not installed."""
    import pytest

    try:
        cluster = ThrowawayPostgres().start()
    except PostgresUnavailable as exc:
        pytest.skip(f"no PostgreSQL: {exc}")
    yield cluster
    cluster.stop()
