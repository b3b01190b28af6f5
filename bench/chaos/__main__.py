"""Chaos benchmark: ``python -m bench.chaos --trials N`` (default 5).

Each trial starts the three workers against the embedded broker (behind a TCP fault proxy),
the fake Twilio and aiosmtpd, enrols patients owed their first check-in (some answer with
a red flag), and injects faults at moments drawn from a seeded RNG: SIGKILL of a worker,
SIGTERM during a rebalance, two workers of a service with one killed, the broker cut off
for 10-30 s, Twilio answering 500/429 and SMTP refusing for 20 s, poison records on every
input topic, a topic pre-created with a wrong partition count. It prints a line per trial
and ends with one line of JSON: trials, lost, duplicates (outside the send->ledger window),
duplicates_in_window, urgent_undelivered, max_recovery_s (and a few more).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from tests.chaos.trial import BENCH, TrialResult, run_trials, totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--keep", type=Path, default=None, help="Keep the workers' logs in this directory.")
    args = parser.parse_args()
    work_dir = args.keep or Path(tempfile.mkdtemp(prefix="cyclecare-chaos-"))
    began = time.monotonic()

    def report(result: TrialResult) -> None:
        print(result.line(), flush=True)
        for repeat in result.repeats:
            print(f"    repeat {repeat}", flush=True)

    results = asyncio.run(run_trials(args.trials, args.seed, BENCH, work_dir, report))
    print(f"{len(results)} trials in {time.monotonic() - began:.0f}s; logs in {work_dir}", flush=True)
    print(json.dumps(totals(results) | {"seed": args.seed}))


if __name__ == "__main__":
    main()
