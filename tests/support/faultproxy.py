"""A TCP fault proxy between the workers and the broker.

Start the broker advertising the proxy's port (``EmbeddedBroker(advertised_port=proxy.port)``)
so that every client connection, not only the bootstrap one, goes through it. Then take the
broker away without losing its in-memory data:

- ``cut()``: close every connection and refuse new ones (they are accepted and closed at once)
- ``blackhole()``: keep connections open but drop every byte, both ways (a silent network)
- ``delay(seconds)``: forward everything late
- ``heal()``: forward normally again
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from shared.broker import free_port

log = logging.getLogger(__name__)
CHUNK = 65536


class FaultProxy:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1", port: int | None = None) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = port or free_port()
        self.mode = "pass"  # pass | cut | blackhole
        self.latency = 0.0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> "FaultProxy":
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port, reuse_address=True)
        return self

    async def stop(self) -> None:
        if self._server:
            self._server.close()
        self._close_all()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    # --- faults --------------------------------------------------------------------

    def cut(self) -> None:
        self.mode = "cut"
        self._close_all()

    def blackhole(self) -> None:
        self.mode = "blackhole"

    def delay(self, seconds: float) -> None:
        self.latency = seconds

    def heal(self) -> None:
        self.mode = "pass"
        self.latency = 0.0

    # --- forwarding ------------------------------------------------------------------

    def _close_all(self) -> None:
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "cut":
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))
        pumps = [self._spawn(self._pump(reader, up_writer)), self._spawn(self._pump(up_reader, writer))]
        await asyncio.gather(*pumps, return_exceptions=True)

    def _spawn(self, coro) -> asyncio.Task[None]:  # noqa: ANN001
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(CHUNK):
                if self.mode == "cut":
                    break
                if self.mode == "blackhole":
                    continue
                if self.latency:
                    await asyncio.sleep(self.latency)
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            sink.close()
            self._writers.discard(sink)
