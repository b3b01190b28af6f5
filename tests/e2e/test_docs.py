"""The README's commands work as written, from a fresh copy of the repository.

Every fenced ``sh`` block of README.md runs verbatim, in order, with ``bash -e`` in a copy
of the working tree (the tracked and new files; the existing ``.venv`` is linked, so
``./dev`` finds it installed). An HTML comment just above a block may say
``<!-- docs-test: {...} -->`` with ``skip`` (the reason), ``background`` (keep it running
until the end, as in a second terminal), ``exit`` (the expected exit code, default 0),
``expect`` (texts its output must show) and ``absent`` (texts it must not show); a background
block's output is checked once it has been stopped. ``export`` lines of earlier blocks apply to later
ones, as in one terminal.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
BLOCK = re.compile(r"(?:<!-- docs-test: (?P<directive>\{.*?\}) -->\n)?```(?:sh|bash)\n(?P<body>.*?)```", re.S)
PORTS = (6066, 6067, 6068)  # `cyclecare run`'s defaults, which the README uses
SCRUBBED = ("CYCLECARE_", "KAFKA_", "TWILIO_", "SMTP_")  # a new user's shell has none of these


@dataclass
class Block:
    line: int
    body: str
    skip: str | None = None
    background: bool = False
    exit: int = 0
    expect: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)

    def check(self, output: str, exit_code: int | None) -> None:
        where = f"README line {self.line}:\n{self.body}\n--- output ---\n{output[-3000:]}"
        if exit_code is not None:
            assert exit_code == self.exit, where
        for text in self.expect:
            assert text in output, f"{text!r} not shown\n{where}"
        for text in self.absent:
            assert text not in output, f"{text!r} shown\n{where}"

    @property
    def exports(self) -> list[str]:
        return [line for line in self.body.splitlines() if line.startswith("export ")]


def readme_blocks(text: str | None = None) -> list[Block]:
    text = README.read_text(encoding="utf-8") if text is None else text
    found = []
    for match in BLOCK.finditer(text):
        directive = json.loads(match["directive"]) if match["directive"] else {}
        found.append(Block(line=text.count("\n", 0, match.start("body")) + 1, body=match["body"], **directive))
    return found


def fresh_copy(target: Path) -> Path:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    (target / ".venv").symlink_to(ROOT / ".venv")
    return target


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_every_readme_command_block_runs_or_says_why_not():
    blocks = readme_blocks()
    assert len(blocks) >= 8, "the README's fenced sh blocks were not found"
    for block in blocks:
        assert block.skip is None or len(block.skip) > 10, f"README line {block.line}: skip needs a written reason"


def test_a_directive_is_read_from_the_comment_above_its_block():
    text = 'x\n<!-- docs-test: {"exit": 1, "expect": ["row 2"]} -->\n```sh\nfalse\n```\n```sh\ntrue\n```\n'
    assert [(b.line, b.exit, b.expect, b.body) for b in readme_blocks(text)] == [
        (4, 1, ["row 2"], "false\n"), (7, 0, [], "true\n")]


@pytest.mark.e2e
@pytest.mark.timeout(420)
def test_the_readme_commands_work_as_written_from_a_fresh_copy(tmp_path):
    busy = [port for port in PORTS if port_in_use(port)]
    if busy:
        pytest.skip(f"port(s) {busy} are taken by another process; the README's commands use 6066-6068")
    copy = fresh_copy(tmp_path / "cyclecare")
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED)}
    exports: list[str] = []
    background: list[tuple[Block, subprocess.Popen[bytes], Path]] = []
    try:
        for block in readme_blocks():
            if block.skip:
                continue
            script = "\n".join([*exports, block.body])
            exports += block.exports
            if block.background:
                log = tmp_path / f"background-{block.line}.log"
                with open(log, "wb") as out:
                    process = subprocess.Popen(["bash", "-e", "-c", script], cwd=copy, env=env, stdout=out,
                                               stderr=subprocess.STDOUT, start_new_session=True)
                background.append((block, process, log))
                continue
            result = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=copy, env=env,
                                    capture_output=True, text=True, timeout=240)
            for process_block, process, log in background:
                assert process.poll() is None, f"the background block at README line {process_block.line} " \
                                               f"exited:\n{log.read_text()[-3000:]}"
            block.check(result.stdout + result.stderr, result.returncode)
    finally:
        for _, process, _ in background:
            stop(process)
    for process_block, _, log in background:  # stopped first: its output is flushed at exit
        process_block.check(log.read_text(errors="replace"), None)


def stop(process: subprocess.Popen[bytes]) -> None:
    """Ctrl-C, as a user stops `./dev run`; then make sure nothing it started is left."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
