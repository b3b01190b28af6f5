"""The start-up check: tables and internal topics follow the source topics' partition count,
or the worker refuses to start with one line naming the topics, their counts and the fix."""

from __future__ import annotations

import pytest

from shared.broker import TopicsDisagree, plan_partitions

SOURCES = ["cyclecare.patients", "cyclecare.treatments", "cyclecare.consent", "cyclecare.scheduler-commands"]
CHANGELOGS = ["cyclecare-scheduler-schedules-changelog"]
SIBLINGS = SOURCES + ["cyclecare.due", "cyclecare.dlq"]


def test_nothing_existing_means_the_configured_count() -> None:
    plan = plan_partitions("scheduler", 8, SOURCES, CHANGELOGS, {}, SIBLINGS)
    assert plan.partitions == 8 and plan.note is None


def test_a_source_pre_created_with_another_count_sizes_the_tables_to_it() -> None:
    plan = plan_partitions("scheduler", 8, SOURCES, CHANGELOGS, {"cyclecare.patients": 3}, SIBLINGS)
    assert plan.partitions == 3
    assert plan.note and "3 partitions" in plan.note and "CYCLECARE_PARTITIONS=8" in plan.note


def test_a_service_without_existing_sources_follows_the_other_cyclecare_topics() -> None:
    plan = plan_partitions("survey", 8, ["cyclecare.inbound"], [], {"cyclecare.patients": 3}, ["cyclecare.patients", "cyclecare.inbound"])
    assert plan.partitions == 3


def test_sources_that_disagree_refuse_to_start_naming_topics_counts_and_fix() -> None:
    existing = {"cyclecare.patients": 3, "cyclecare.treatments": 8, "cyclecare.consent": 8}
    with pytest.raises(TopicsDisagree) as refused:
        plan_partitions("scheduler", 8, SOURCES, CHANGELOGS, existing, SIBLINGS)
    line = str(refused.value)
    assert "\n" not in line
    assert "cyclecare.patients=3" in line and "cyclecare.treatments=8" in line
    assert "fix: recreate (or alter) cyclecare.patients with 8 partitions" in line


def test_an_existing_changelog_with_another_count_than_its_sources_refuses_to_start() -> None:
    existing = {"cyclecare.patients": 3, "cyclecare-scheduler-schedules-changelog": 8}
    with pytest.raises(TopicsDisagree) as refused:
        plan_partitions("scheduler", 8, SOURCES, CHANGELOGS, existing, SIBLINGS)
    line = str(refused.value)
    assert "cyclecare-scheduler-schedules-changelog=8" in line and "cyclecare.patients=3" in line and "fix:" in line
