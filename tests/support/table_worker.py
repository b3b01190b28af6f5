"""A worker with one Faust table, for table-recovery tests, built like the services' workers
(``shared.streaming.Runtime``):

    python -m tests.support.table_worker   (configured by the usual CYCLECARE_* variables)

Each record on the namespace's ``table-writes`` topic is a JSON list of keys, all written to
the table in one go: several changelog records that the producer sends as one batch.
``GET /table`` answers the keys the table holds, sorted.
"""

from __future__ import annotations

import json

import faust
from aiohttp import web

from shared.config import load_settings
from shared.streaming import Runtime

SERVICE = "tabletest"
WRITES = "table-writes"
TABLE = "keys"


def changelog(namespace: str) -> str:
    return f"{namespace}-{SERVICE}-{TABLE}-changelog"


def build() -> Runtime:
    rt = Runtime(SERVICE, load_settings())
    table = rt.table(TABLE)
    writes = rt.app.topic(rt.topics.name(WRITES), key_type=bytes, value_type=bytes, key_serializer="raw",
                          value_serializer="raw", partitions=rt.settings.partitions)

    async def write(stream: faust.StreamT) -> None:
        async for value in stream:
            for key in json.loads(value):
                table[key] = True

    rt.app.agent(writes, name="writes", concurrency=1)(write)

    @rt.routes.get("/table")
    async def keys(request: web.Request) -> web.Response:
        return web.json_response(sorted(table.keys()))

    return rt


if __name__ == "__main__":
    build().run_worker()
