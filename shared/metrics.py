"""Prometheus metrics every worker exposes at ``GET /metrics``."""

from __future__ import annotations

from functools import cache
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

READY = Gauge("cyclecare_ready", "1 when the worker is connected, assigned and recovered", ["service"])
CONSUMED = Counter("cyclecare_events_consumed_total", "Events consumed", ["service", "topic"])
FAILED = Counter("cyclecare_events_failed_total", "Events dead-lettered or failed", ["service", "topic"])
MESSAGES = Counter("cyclecare_messages_total", "Outgoing messages by channel and outcome", ["channel", "outcome"])
ALERTS = Counter("cyclecare_alerts_total", "Clinician alerts raised", ["severity"])
URGENT_UNDELIVERED = Gauge("cyclecare_urgent_alerts_undelivered", "Urgent alerts not yet sent to a clinician")
TIMERS_PENDING = Gauge("cyclecare_timers_pending", "Durable timers waiting to fire on this worker")
TIMERS_OVERDUE = Gauge("cyclecare_timers_overdue", "Timers past their moment and not yet fired")
WEBHOOK_LATENCY = Histogram(
    "cyclecare_webhook_latency_seconds",
    "Time to answer a Twilio webhook",
    ["endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
PROVIDER_LAST_SUCCESS = Gauge(
    "cyclecare_provider_last_success_timestamp_seconds", "Unix time of the last successful provider call", ["provider"]
)
PROVIDER_FAILURES = Counter("cyclecare_provider_failures_total", "Failed provider calls", ["provider", "code"])
PROVIDER_HALTED = Gauge(
    "cyclecare_provider_halted", "1 while sending is stopped because the provider refused our credentials", ["provider"]
)
SMS_WAITING = Gauge("cyclecare_sms_waiting_for_rate_limit", "SMS sends waiting for a token of the rate limit")
DLQ_RECORDS = Counter("cyclecare_dlq_records_total", "Records written to the dead-letter topic", ["reason"])
HANDLER_RETRIES = Counter(
    "cyclecare_handler_retries_total", "Handler failures retried (not dead-lettered): infrastructure faults", ["service", "topic"]
)
PARTITION_STUCK = Gauge(
    "cyclecare_partition_stuck",
    "1 while a partition's record keeps failing past CYCLECARE_STUCK_AFTER_SECONDS (partition paused)",
    ["service", "topic", "partition"],
)
BROKER_REACHABLE = Gauge("cyclecare_broker_reachable", "1 when the worker's last metadata request to Kafka succeeded", ["service"])
# Alert lifecycle (scheduler): each worker reports the alerts of its own partitions; sum or max across workers.
ALERT_TIME_TO_ACK = Histogram(
    "cyclecare_alert_time_to_acknowledge_seconds",
    "From an alert being raised to its first acknowledgement (scheduler's clock)",
    ["severity"],
    buckets=(60, 300, 600, 900, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 24 * 3600),
)
URGENT_ALERTS_OPEN = Gauge("cyclecare_urgent_alerts_open", "Urgent alerts raised and not yet acknowledged or resolved")
URGENT_ALERT_OLDEST_OPEN = Gauge(
    "cyclecare_urgent_alert_oldest_open_seconds", "Age of the oldest urgent alert nobody has acknowledged (0: none)"
)
ALERT_ESCALATIONS = Counter("cyclecare_alert_escalations_total", "Escalation pages sent (alert.escalated)", ["level"])


@cache  # a metric's child per label values, looked up once: labels() takes a lock and builds a tuple
def child(metric: MetricWrapperBase, *labels: str) -> Any:
    """``metric.labels(*labels)``, for paths taken once per record or message."""
    return metric.labels(*labels)
