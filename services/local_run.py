"""What ``cyclecare run`` tells the person who started it, and how other commands on the
same machine find its embedded broker (a port file under the data directory)."""

from __future__ import annotations

import socket
from pathlib import Path

from shared.endpoints import COMMON, SERVICES, endpoints_of

BROKER_FILE = "embedded-broker"  # under CYCLECARE_DATA_DIR: "127.0.0.1:PORT" while `cyclecare run` is up


def startup_lines(urls: dict[str, str], public_url: str, api_token_set: bool, twilio_token_set: bool) -> list[str]:
    """One line per worker naming its URL and what it serves, then what the webhooks need."""
    lines = []
    for name in SERVICES:
        served = ", ".join(str(e) for e in endpoints_of(name))
        lines.append(f"  {name:<9} {urls[name]:<24} {served}")
    lines.append(f"  every worker also serves {', '.join(COMMON)}")
    lines.append(f"  Twilio signatures are checked against {public_url} (CYCLECARE_PUBLIC_URL)"
                 + ("" if twilio_token_set else "; webhooks answer 503 until TWILIO_AUTH_TOKEN is set"))
    if not api_token_set:
        lines.append("  the ingest API answers 503 until CYCLECARE_API_TOKEN is set")
    return lines


def broker_file(data_dir: Path) -> Path:
    return data_dir / BROKER_FILE


def write_broker_file(data_dir: Path, bootstrap_servers: str) -> Path:
    path = broker_file(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(bootstrap_servers + "\n")
    return path


def remove_broker_file(data_dir: Path, bootstrap_servers: str) -> None:
    """Remove the file only if it is still ours (a second `cyclecare run` may have replaced it)."""
    path = broker_file(data_dir)
    try:
        if path.read_text().strip() == bootstrap_servers:
            path.unlink()
    except OSError:
        pass


def running_broker(data_dir: Path) -> str | None:
    """The embedded broker of a `cyclecare run` on this machine, if its port file names one
    that accepts connections (a file left by a killed run is ignored)."""
    try:
        address = broker_file(data_dir).read_text().strip()
    except OSError:
        return None
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return None
    try:
        with socket.create_connection((host, int(port)), timeout=0.5):
            return address
    except OSError:
        return None
