"""Waiting for a worker to answer ``GET /readyz`` (used by `cyclecare run --demo`, the
benchmarks and the tests)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp


class NotReady(RuntimeError):
    pass


async def wait_until_ready(base_url: str, timeout: float, gone: Callable[[], str | None] = lambda: None) -> None:
    """Return once ``base_url``/readyz answers 200. ``gone`` says why to stop waiting early
    (the process exited, say); its message, or a timeout, raises :class:`NotReady`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with aiohttp.ClientSession() as http:
        while loop.time() < deadline:
            if reason := gone():
                raise NotReady(reason)
            try:
                async with http.get(f"{base_url}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise NotReady(f"{base_url} was not ready within {timeout:.0f}s")
