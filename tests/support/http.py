"""HTTP edges served in the test process: the routes a worker serves, on a local test server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer


@asynccontextmanager
async def serving(routes: web.RouteTableDef) -> AsyncIterator[TestClient]:
    """A client of an app serving ``routes``, closed on exit."""
    app = web.Application()
    app.add_routes(routes)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()
