"""The chaos suite runs only when asked for (``-m chaos``): `.ci/run` runs it after the
normal suite. A plain ``./dev test`` skips it."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "chaos" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="chaos suite: run with -m chaos (.ci/run does)")
    for item in items:
        if "chaos" in item.keywords:
            item.add_marker(skip)
