"""The test fault proxy forwards, cuts, black-holes and heals (loopback echo server only)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.support.faultproxy import FaultProxy


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1024):
        writer.write(data)
        await writer.drain()
    writer.close()


@pytest.fixture
async def proxy() -> AsyncIterator[FaultProxy]:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    running = await FaultProxy(server.sockets[0].getsockname()[1]).start()
    yield running
    await running.stop()
    server.close()


async def roundtrip(port: int, payload: bytes = b"ping", timeout: float = 2.0) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(payload)
        await writer.drain()
        return await asyncio.wait_for(reader.read(1024), timeout)
    finally:
        writer.close()


async def closed(reader: asyncio.StreamReader) -> bool:
    """End of stream or a reset: either way the peer closed the connection."""
    try:
        return await asyncio.wait_for(reader.read(10), 2) == b""
    except ConnectionResetError:
        return True


async def test_it_forwards_both_ways(proxy: FaultProxy) -> None:
    assert await roundtrip(proxy.port) == b"ping"


async def test_a_cut_closes_open_connections_and_new_ones_until_healed(proxy: FaultProxy) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(b"a")
    assert await reader.read(10) == b"a"
    proxy.cut()
    assert await closed(reader)  # closed under the client
    new_reader, new_writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    assert await closed(new_reader)  # and refused while cut
    new_writer.close()
    proxy.heal()
    assert await roundtrip(proxy.port) == b"ping"
    writer.close()


async def test_a_blackhole_keeps_the_connection_but_answers_nothing(proxy: FaultProxy) -> None:
    proxy.blackhole()
    with pytest.raises(asyncio.TimeoutError):
        await roundtrip(proxy.port, timeout=0.3)
    proxy.heal()
    assert await roundtrip(proxy.port) == b"ping"
