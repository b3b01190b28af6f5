"""The chaos suite: seeded trials of faults against the three workers (see trial.py).
Nothing a patient is owed is lost, no urgent alert fails to reach the on-call clinician,
a message is repeated only inside the send->ledger window, only poison is dead-lettered,
and every worker is ready again within 60 s of each fault."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.chaos.trial import CI, TrialResult, run_trials, totals

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(900)]
TRIALS = int(os.environ.get("CYCLECARE_CHAOS_TRIALS", "3"))
SEED = int(os.environ.get("CYCLECARE_CHAOS_SEED", "11"))


async def test_seeded_fault_trials_lose_nothing_and_recover(tmp_path: Path) -> None:
    def report(result: TrialResult) -> None:
        print(result.line(), flush=True)

    results = await run_trials(TRIALS, SEED, CI, tmp_path, report)
    summary = totals(results)
    print(json.dumps(summary))
    assert all(r.refused_to_start is None for r in results), [r.refused_to_start for r in results]
    assert summary["lost"] == 0, summary
    assert summary["urgent_undelivered"] == 0, summary
    assert summary["duplicates"] == 0, summary
    assert summary["wrongly_dead_lettered"] == 0, summary
    assert summary["not_ready_within_60s"] == 0, summary
