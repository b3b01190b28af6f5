"""The scheduler worker, killed by itself (SIGKILL: no goodbye) in the middle of its first
batch that fires moments: after the broker acknowledged the batch's due events, before any
of its schedules is written or its records acknowledged. For the mid-batch test in
``tests/integration/test_scheduler_batches.py``: since a flush hands its records to the
producer in whole batches, that window lasts milliseconds, too short to catch from outside.

    python -m tests.support.scheduler_killed_mid_batch   (configured by the usual CYCLECARE_* variables)
"""

from __future__ import annotations

import os
import signal

from shared.config import load_settings
from services.bootstrap import run_worker
from services.scheduler.batch import Batch

_published = Batch.published


def published_then_killed(batch: Batch) -> None:
    if any(event.type != "timer.skipped" for _, event in batch.emit):  # due events on the broker, nothing stored
        os.kill(os.getpid(), signal.SIGKILL)
    _published(batch)


if __name__ == "__main__":
    Batch.published = published_then_killed  # type: ignore[method-assign]
    run_worker("scheduler", load_settings())
