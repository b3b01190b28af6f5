"""The environment variables each command reads, for ``--help`` and docs/contract.md.
Their meanings are data: ``shared/data/settings.yaml``."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

from shared.config import Settings

SETTINGS_FILE = Path(__file__).parents[1] / "shared" / "data" / "settings.yaml"
READS_EVERYTHING = ("worker", "run")


@cache
def described() -> dict[str, dict[str, Any]]:
    return yaml.safe_load(SETTINGS_FILE.read_text(encoding="utf-8"))


def variables() -> list[str]:
    """Every variable a cyclecare process reads, in the order shared/config.py declares them."""
    return [f.alias for f in Settings.model_fields.values() if f.alias]


def undescribed() -> list[str]:
    return [name for name in variables() if name not in described()]


def read_by(command: str) -> list[str]:
    if command in READS_EVERYTHING:
        return variables()
    return [name for name in variables() if command in described().get(name, {}).get("commands", ())]


def meaning(name: str) -> str:
    entry = described().get(name, {})
    text = str(entry.get("meaning", "(not described yet in shared/data/settings.yaml)")).replace("`", "")
    default = str(entry.get("default", "")).replace("`", "")
    return f"{text} [default: {default}]" if default else text


def environment_epilog(command: str) -> str:
    """A ``--help`` epilog listing the variables ``command`` reads (``\\b`` keeps click from
    re-wrapping the lines)."""
    names = read_by(command)
    if not names:
        return "Environment: none."
    lines = [f"  {name}: {meaning(name)}" for name in names]
    return "\b\nEnvironment:\n" + "\n".join(lines)
