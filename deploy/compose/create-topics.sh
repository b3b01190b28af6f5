#!/bin/bash
# Creates cyclecare's topics on the single-node compose broker with the settings the
# Strimzi KafkaTopics in deploy/k8s/topics/ give them in a cluster (replication factor 1
# here). Idempotent: an existing topic is left as it is.
set -euo pipefail

BOOTSTRAP="${BOOTSTRAP:-kafka:9092}"
PARTITIONS="${CYCLECARE_PARTITIONS:-8}"
DAY_MS=86400000

create() {
  local topic="$1"; shift
  /opt/kafka/bin/kafka-topics.sh --bootstrap-server "$BOOTSTRAP" --create --if-not-exists \
    --topic "$topic" --partitions "$PARTITIONS" --replication-factor 1 "$@"
}

# contract topics
create cyclecare.patients   --config cleanup.policy=compact
create cyclecare.treatments --config retention.ms=$((365 * DAY_MS))
create cyclecare.due        --config retention.ms=$((7 * DAY_MS))
create cyclecare.consent    --config retention.ms=-1
create cyclecare.checkins   --config retention.ms=$((30 * DAY_MS))
create cyclecare.alerts     --config retention.ms=$((30 * DAY_MS))
create cyclecare.deliveries --config retention.ms=$((30 * DAY_MS))
create cyclecare.dlq        --config retention.ms=$((90 * DAY_MS))
create cyclecare.alert-actions --config retention.ms=$((365 * DAY_MS))
# internal topics
create cyclecare.inbound            --config retention.ms=$((7 * DAY_MS))
create cyclecare.outbound           --config retention.ms=$((7 * DAY_MS))
create cyclecare.scheduler-commands --config retention.ms=$((7 * DAY_MS))
create cyclecare.notifier-retry     --config retention.ms=$((7 * DAY_MS))
create cyclecare.survey-phones      --config retention.ms=$((7 * DAY_MS))
create cyclecare.survey-replies     --config retention.ms=$((7 * DAY_MS))
create cyclecare.survey-clinician-alerts --config retention.ms=$((7 * DAY_MS))
create cyclecare.scheduler-alerts   --config retention.ms=$((7 * DAY_MS))
echo "cyclecare topics are in place"
