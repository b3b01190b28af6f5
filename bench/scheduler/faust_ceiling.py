"""The Faust ceiling for the scheduler's work: a bare agent that, per record, reads one table
entry, writes it back and publishes one event, with the project's consumer and producer
settings (the same :class:`shared.streaming.Runtime`). Run as a worker by ``bench.scheduler``:

    python -m bench.scheduler.faust_ceiling   (configured by the usual CYCLECARE_* variables)

It forwards to the ``bench-ceiling`` topic of the namespace.
"""

from __future__ import annotations

import faust

from shared.config import load_settings
from shared.streaming import Runtime


def build() -> Runtime:
    rt = Runtime("benchceiling", load_settings())
    table = rt.table("counts")
    sink = rt.topic(rt.topics.name("bench-ceiling"))

    async def forward(stream: faust.StreamT) -> None:
        manual = stream.noack()
        async for record in manual.events():
            key = record.key.decode()
            table[key] = (table.get(key) or 0) + 1
            await sink.send(key=record.key, value=record.value)
            await manual.ack(record)

    rt.app.agent(rt.app.topic(rt.topics.patients, rt.topics.treatments, key_type=bytes, value_type=bytes,
                              key_serializer="raw", value_serializer="raw"),
                 name="ceiling", concurrency=1)(forward)
    return rt


if __name__ == "__main__":
    build().run_worker()
