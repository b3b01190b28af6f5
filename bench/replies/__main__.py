"""``python -m bench.replies [--part dev|test|holdout|blind|all]``: the reply reader against the labelled
corpus. Prints per reason code precision and recall, urgent recall, severity accuracy,
headache-number accuracy, the confusion table, every miss, and the reader's latency per
reply (p50/p99) next to a baseline measured in the same run (normalising and tokenising
the same replies, the floor any reading pays). Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from bench.replies.scoring import OUTCOMES, Score, load, score
from services.survey.parsing import RED_FLAG_CODES, parse_reply, tokenise

ROUNDS = 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["dev", "test", "holdout", "blind", "all"], default="all")
    args = parser.parse_args()
    parts = ["dev", "test", "holdout", "blind"] if args.part == "all" else [args.part]
    summary: dict = {"benchmark": "replies"}
    for part in parts:
        rows = load(part)
        result = score(rows)
        report(part, result)
        summary[part] = figures(result)
    latency, baseline = measure([row for part in parts for row in load(part)])
    print(f"\nreader latency per reply over {len(latency)} readings: p50 {pct(latency, 50):.3f} ms, "
          f"p99 {pct(latency, 99):.3f} ms, max {max(latency):.3f} ms "
          f"(baseline, tokenising only: p50 {pct(baseline, 50):.3f} ms, p99 {pct(baseline, 99):.3f} ms)")
    summary |= {"latency_p50_ms": round(pct(latency, 50), 3), "latency_p99_ms": round(pct(latency, 99), 3),
                "baseline_p50_ms": round(pct(baseline, 50), 3), "baseline_p99_ms": round(pct(baseline, 99), 3)}
    print(json.dumps(summary))


def figures(result: Score) -> dict:
    return {"replies": result.replies, "urgent_recall": round(result.urgent_recall, 4),
            "urgent": f"{result.urgent_caught}/{result.urgent_expected}", "false_urgent": result.false_urgent,
            "severity_accuracy": round(result.severity_accuracy, 4), "number_accuracy": round(result.number_accuracy, 4),
            "misses": len(result.misses)}


def report(part: str, result: Score) -> None:
    print(f"\n=== {part}: {result.replies} replies ({result.side_effect_replies} side-effect, {result.number_replies} headache) ===")
    print(f"urgent recall {result.urgent_recall:.3f} ({result.urgent_caught}/{result.urgent_expected}), "
          f"false urgent {result.false_urgent}, severity accuracy {result.severity_accuracy:.3f}, "
          f"headache numbers {result.number_accuracy:.3f} ({result.numbers_right}/{result.number_replies})")
    print(f"{'reason code':<22}{'precision':>10}{'recall':>8}")
    for code in RED_FLAG_CODES:
        precision, recall = result.precision_recall(code)
        print(f"{code:<22}{precision:>10.3f}{recall:>8.3f}")
    print("confusion (rows expected, columns read):")
    print(f"{'':<10}" + "".join(f"{o:>10}" for o in OUTCOMES))
    for expected in OUTCOMES:
        print(f"{expected:<10}" + "".join(f"{result.confusion[(expected, got)]:>10}" for got in OUTCOMES))
    print(f"misses ({len(result.misses)}):")
    for miss in result.misses:
        print(f"  {miss.id} [{miss.question}] {miss.text!r}: expected {miss.expected}, read {miss.got}")


def measure(rows: list[dict]) -> tuple[list[float], list[float]]:
    latency: list[float] = []
    baseline: list[float] = []
    for _ in range(ROUNDS):
        for row in rows:
            started = time.perf_counter()
            tokenise(row["text"])
            baseline.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            parse_reply(row["text"], row["question"])
            latency.append((time.perf_counter() - started) * 1000)
    return latency, baseline


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if q < 100 else max(values)


if __name__ == "__main__":
    main()
