"""The reliability alerts: each watches a metric the workers really expose, and
`promtool test rules` (when installed; `.ci/run` installs it) shows them firing."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

import shared.metrics  # noqa: F401 - registers the metrics

RULES = Path(__file__).parents[2] / "deploy" / "prometheus"
RELIABILITY = {
    "CyclecarePartitionStuck": "cyclecare_partition_stuck",
    "CyclecareKafkaUnreachable": "cyclecare_broker_reachable",
    "CyclecareHandlerRetrying": "cyclecare_handler_retries_total",
    "CyclecareDeadLetters": "cyclecare_dlq_records_total",
    "CyclecareUrgentAlertUnacknowledged": "cyclecare_urgent_alert_oldest_open_seconds",
}


def exposed() -> set[str]:
    return {sample.name for metric in REGISTRY.collect() for sample in metric.samples} | {
        metric.name for metric in REGISTRY.collect()}


def test_each_reliability_alert_watches_a_metric_the_workers_expose() -> None:
    rules = {r["alert"]: r for g in yaml.safe_load((RULES / "cyclecare-alerts.yaml").read_text())["groups"]
             for r in g["rules"]}
    for alert, metric in RELIABILITY.items():
        assert metric in rules[alert]["expr"]
        assert metric in exposed() or metric.removesuffix("_total") in exposed(), metric


def test_the_dlq_counter_is_labelled_by_reason_only() -> None:
    shared.metrics.DLQ_RECORDS.labels("UnknownClinic")  # one label, the reason
    with pytest.raises(ValueError):
        shared.metrics.DLQ_RECORDS.labels("scheduler", "UnknownClinic")


def with_annotations(tests: dict, rules: dict[str, dict]) -> dict:
    """The promtool test cases with each expected alert's annotations rendered from the
    rules (``{{ $labels.x }}`` only), as promtool compares them verbatim."""
    for case in tests["tests"]:
        for check in case.get("alert_rule_test", []):
            rule = rules[check["alertname"]]
            for expected in check.get("exp_alerts", []):
                labels = expected["exp_labels"]
                expected["exp_annotations"] = {
                    key: re.sub(r"{{ \$labels\.(\w+) }}", lambda m: str(labels[m.group(1)]), text)
                    for key, text in rule["annotations"].items()}
    return tests


def test_promtool_unit_tests_of_the_rules_pass(tmp_path: Path) -> None:
    if shutil.which("promtool") is None:
        pytest.skip("promtool is not installed (.ci/run installs it)")
    rules = {r["alert"]: r for g in yaml.safe_load((RULES / "cyclecare-alerts.yaml").read_text())["groups"]
             for r in g["rules"]}
    tests = with_annotations(yaml.safe_load((RULES / "cyclecare-alerts.test.yaml").read_text()), rules)
    tests["rule_files"] = [str(RULES / "cyclecare-alerts.yaml")]
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests, width=1000))
    out = subprocess.run(["promtool", "test", "rules", "tests.yaml"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
