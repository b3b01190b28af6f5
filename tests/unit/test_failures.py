"""Handler failures by kind: what is dead-lettered, what is retried without acknowledging."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka.errors import KafkaTimeoutError, NotLeaderForPartitionError
from faust.exceptions import PartitionsMismatch
from pydantic import BaseModel, ValidationError

from services.scheduler.domain import InvalidTreatment
from shared.clinics import UnknownClinic
from shared.codec import DecodeError, encode
from shared.config import load_settings
from shared.events import PatientDischarged
from shared.failures import (
    Backoff,
    ContractViolation,
    Stalls,
    dlq_reason,
    is_poison,
    until_handled,
)
from shared.streaming import Runtime


class _Strict(BaseModel):
    n: int


def _validation_error() -> ValidationError:
    try:
        _Strict(n="many")  # type: ignore[arg-type]
    except ValidationError as exc:
        return exc
    raise AssertionError("no error")


POISON = {
    "undecodable record": DecodeError("not JSON"),
    "contract validation": _validation_error(),
    "unknown clinic": UnknownClinic("clinic 'nowhere' is not in the clinics file"),
    "impossible date": InvalidTreatment("administered_on 2999-01-01 is in the future"),
    "declared contract violation": ContractViolation("no such check-in kind"),
}
TRANSIENT = {
    "Kafka timeout while publishing": KafkaTimeoutError(),
    "leader moved": NotLeaderForPartitionError(),
    "partition count mismatch": PartitionsMismatch("changelog has 8 partitions, source 3"),
    "table not ready": RuntimeError("Cannot modify table key from outside of stream iteration"),
    "a bug": KeyError("pending"),
    "connection lost": ConnectionResetError(),
    "timeout": asyncio.TimeoutError(),
}


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Flaky:
    """Fails with ``error`` ``times`` times, then succeeds; sleeping advances the clock."""

    def __init__(self, error: BaseException, times: int, clock: FakeClock) -> None:
        self.error, self.left, self.clock, self.calls, self.slept = error, times, clock, 0, []

    async def __call__(self) -> None:
        self.calls += 1
        if self.left:
            self.left -= 1
            raise self.error

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.clock.now += seconds


@pytest.mark.parametrize("kind", list(POISON))
def test_a_record_that_can_never_be_processed_is_poison(kind: str) -> None:
    assert is_poison(POISON[kind])


@pytest.mark.parametrize("kind", list(TRANSIENT))
def test_an_infrastructure_fault_or_a_bug_is_not_poison(kind: str) -> None:
    assert not is_poison(TRANSIENT[kind])


@pytest.mark.parametrize("kind", list(POISON))
async def test_poison_is_returned_for_the_dead_letter_topic_after_one_attempt(kind: str) -> None:
    clock = FakeClock()
    attempt = Flaky(POISON[kind], times=99, clock=clock)
    outcome = await until_handled(attempt, ("cyclecare.patients", 2, 40), Stalls(clock=clock), sleep=attempt.sleep)
    assert outcome is POISON[kind]
    assert attempt.calls == 1


@pytest.mark.parametrize("kind", list(TRANSIENT))
async def test_a_transient_failure_is_retried_until_it_succeeds_and_never_dead_lettered(kind: str) -> None:
    clock = FakeClock()
    attempt = Flaky(TRANSIENT[kind], times=5, clock=clock)
    stalls = Stalls(clock=clock)
    outcome = await until_handled(attempt, ("cyclecare.due", 1, 7), stalls, sleep=attempt.sleep)
    assert outcome is None
    assert attempt.calls == 6
    assert stalls.cause() is None


def test_backoff_doubles_from_a_tenth_of_a_second_up_to_its_cap() -> None:
    backoff = Backoff(initial=0.1, factor=2, cap=5)
    assert [backoff.delay(n) for n in (1, 2, 3, 4)] == [0.1, 0.2, 0.4, 0.8]
    assert backoff.delay(30) == 5


async def test_a_partition_failing_longer_than_the_bound_is_stuck_naming_the_cause_then_resumes() -> None:
    clock = FakeClock()
    stalls = Stalls(stuck_after=30, clock=clock)
    seen: list[str | None] = []
    stuck_events: list[str] = []
    cleared_events: list[str] = []

    class Observed(Flaky):
        async def sleep(self, seconds: float) -> None:
            seen.append(stalls.cause())
            await super().sleep(seconds)

    from shared.failures import RetryHooks

    hooks = RetryHooks(on_stuck=lambda s: stuck_events.append(s.topic), on_cleared=lambda s: cleared_events.append(s.topic))
    attempt = Observed(KafkaTimeoutError(), times=20, clock=clock)
    outcome = await until_handled(attempt, ("cyclecare.due", 3, 99), stalls, hooks=hooks, sleep=attempt.sleep)

    assert outcome is None
    assert seen[0] is None  # not stuck at first: a short hiccup does not make a worker unready
    causes = [c for c in seen if c]
    assert causes and "cyclecare.due[3]@99" in causes[0] and "KafkaTimeoutError" in causes[0]
    assert stuck_events == ["cyclecare.due"]  # reported once, not on every attempt
    assert cleared_events == ["cyclecare.due"]
    assert stalls.cause() is None


async def test_cancelling_a_retry_leaves_the_record_unacknowledged_and_clears_its_stall() -> None:
    stalls = Stalls(stuck_after=0)

    async def always_fails() -> None:
        raise KafkaTimeoutError()

    task = asyncio.ensure_future(until_handled(always_fails, ("t", 0, 1), stalls))
    await asyncio.sleep(0.05)
    assert stalls.cause() is not None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert stalls.cause() is None


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        ("UnknownClinic: clinic 'x' is not in the clinics file", "UnknownClinic"),
        ("InvalidTreatment: administered_on 2999-01-01 is in the future", "InvalidTreatment"),
        ("not JSON: Expecting value: line 1 column 1 (char 0)", "invalid_event"),
        ("phone: value is not a valid phone number", "invalid_event"),
        ("empty record (tombstone)", "invalid_event"),
    ],
)
def test_the_dlq_reason_is_a_short_label_never_the_detail(error: str, reason: str) -> None:
    assert dlq_reason(error) == reason


# --- the runtime's handle path -----------------------------------------------------


@dataclass
class _Message:
    topic: str
    partition: int
    offset: int


@dataclass
class _Record:
    key: bytes
    value: bytes
    message: _Message


def _runtime(tmp_path: Path) -> tuple[Runtime, list[str]]:
    rt = Runtime("scheduler", load_settings({}, CYCLECARE_DATA_DIR=str(tmp_path), CYCLECARE_TOPIC_NAMESPACE="unit"))
    dead: list[str] = []

    async def dead_letter(record: object, error: str) -> None:  # the DLQ port, without a broker
        dead.append(error)

    rt.dead_letter = dead_letter  # type: ignore[method-assign]
    return rt, dead


def _record() -> _Record:
    event = PatientDischarged(patient_id="p1", clinic_id="rocklin")
    return _Record(b"p1", encode(event), _Message("unit.patients", 0, 12))


async def test_the_runtime_dead_letters_an_unknown_clinic_once(tmp_path: Path) -> None:
    rt, dead = _runtime(tmp_path)
    calls = []

    async def handler(key: str, event: object) -> None:
        calls.append(key)
        raise UnknownClinic("clinic 'nowhere' is not in the clinics file")

    await rt.handle(_record(), handler, "on_patient")
    assert calls == ["p1"]
    assert dead == ["UnknownClinic: clinic 'nowhere' is not in the clinics file"]


async def test_the_runtime_retries_a_kafka_timeout_and_dead_letters_nothing(tmp_path: Path) -> None:
    rt, dead = _runtime(tmp_path)
    failures = [KafkaTimeoutError(), KafkaTimeoutError()]
    calls = []

    async def handler(key: str, event: object) -> None:
        calls.append(key)
        if failures:
            raise failures.pop()

    await rt.handle(_record(), handler, "on_patient")
    assert calls == ["p1", "p1", "p1"]
    assert dead == []


# --- readiness ----------------------------------------------------------------------


async def readyz(rt: Runtime) -> tuple[int, dict]:
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    app = web.Application()
    app.add_routes(rt.routes)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/readyz")
        return response.status, await response.json()


async def test_readyz_answers_503_naming_a_stuck_partition_and_200_once_it_moves(tmp_path: Path) -> None:
    rt, _ = _runtime(tmp_path)
    rt._assignment_cause = lambda: None  # type: ignore[method-assign] # assigned and recovered
    clock = FakeClock()
    rt.stalls = Stalls(stuck_after=30, clock=clock)
    rt.stalls.failed("unit.due", 3, 812, "KafkaTimeoutError: ")
    assert (await readyz(rt))[0] == 200  # failing, not yet stuck
    clock.now = 31
    status, body = await readyz(rt)
    assert status == 503 and body["cause"].startswith("stuck: unit.due[3]@812") and "KafkaTimeoutError" in body["cause"]
    assert rt.ready()  # the scheduler's own work (its tick) goes on for the partitions that move
    rt.stalls.cleared("unit.due", 3, 812)
    assert await readyz(rt) == (200, {"ready": True, "service": "scheduler"})


async def test_readyz_names_an_unreachable_broker_first(tmp_path: Path) -> None:
    rt, _ = _runtime(tmp_path)
    rt.broker_error = "KafkaConnectionError"
    status, body = await readyz(rt)
    assert status == 503 and body["cause"] == "Kafka unreachable: KafkaConnectionError"
