"""Reading a request body at an HTTP edge within the limits (README, "Limits").

The body is read in chunks and refused with 413 as soon as it passes the limit, so a huge
or endless upload costs at most the limit; the answer for anything refused here is a 4xx
that says why, never a 5xx.
"""

from __future__ import annotations

from aiohttp import web

CHUNK_BYTES = 16 * 1024


class Refused(Exception):
    """A request refused before its handler runs: ``status`` and a short ``reason``."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body, or :class:`Refused` (413) once it is longer than ``limit`` bytes."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise Refused(413, f"body of {declared} bytes exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(CHUNK_BYTES):
        size += len(chunk)
        if size > limit:
            raise Refused(413, f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
