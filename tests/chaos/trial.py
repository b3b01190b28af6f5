"""One chaos trial: the three workers against the embedded broker (through the fault proxy),
the fake Twilio and aiosmtpd; patients owed their first check-in; faults at moments drawn
from a seeded RNG; then what patients and clinicians actually received is counted.

Used by the chaos suite (``tests/chaos/``, short fault windows) and by ``python -m bench.chaos``
(longer ones). A trial never asserts; it returns a :class:`TrialResult`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
import random
import re
import signal
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from email.message import Message
from pathlib import Path

import aiohttp
from aiohttp import web
from aiokafka import AIOKafkaConsumer
from twilio.request_validator import RequestValidator

from shared.broker import EmbeddedBroker, ensure_topics
from shared.codec import DecodeError, decode
from shared.events import MessageSent, PatientEnrolled, TreatmentRecorded
from shared.topics import Topics
from tests.support.faultproxy import FaultProxy
from tests.support.fake_twilio import ERRORS, FakeTwilio, _error
from tests.support.kafka import Publisher
from tests.support.smtp import SmtpServer, _Inbox
from tests.support.workers import WorkerProcess

# the harness's own Kafka clients complain on every reconnect while the broker is cut off
logging.getLogger("aiokafka").setLevel(logging.CRITICAL)

PUBLIC_URL = "https://cyclecare.clinic.test/hooks"
CLOCK_START = "2026-03-12T22:00:00+00:00"  # mid-afternoon in California, two days after the treatment
TREATED_ON = date(2026, 3, 10)
ON_CALL_EMAIL, ON_CALL_PHONE = "lee@example.org", "+19165550101"
SERVICES = ("scheduler", "notifier", "survey")
INPUT_TOPICS = ("patients", "treatments", "consent", "due", "checkins", "alerts", "deliveries")
POISON = (b"\xff\xfe not json", b'{"type": "patient.enrolled", "version": 1}')
READY_WITHIN = 60.0
WRONG_PARTITIONS = "wrong_partitions"
KILLS = ("kill_worker", "sigterm_during_rebalance", "two_workers_one_killed", "broker_cut")
SESSION_SETTLE = 12.0  # the workers' session timeout is 10 s: a lost member is noticed after it


@dataclass(frozen=True)
class ChaosConfig:
    patients: int = 12
    urgent: int = 4  # patients who answer the check-in with a red flag
    faults: int = 3  # per trial, dealt from shuffled decks of Trial.FAULTS
    fault_window: float = 20.0  # faults start within this many seconds of the enrolment
    broker_cut: tuple[float, float] = (10.0, 10.0)
    provider_outage: float = 10.0
    drain: float = 120.0  # after the last fault, how long deliveries may take
    partitions: int = 4


CI = ChaosConfig()
BENCH = ChaosConfig(patients=20, urgent=6, faults=6, fault_window=40.0, broker_cut=(10.0, 30.0),
                    provider_outage=20.0, drain=180.0)


@dataclass
class TrialResult:
    trial: int
    seed: int
    faults: list[str]
    patients: int
    lost: int = 0
    duplicates: int = 0
    duplicates_in_window: int = 0
    urgent: int = 0
    urgent_undelivered: int = 0
    wrongly_dead_lettered: int = 0
    poison_dead_lettered: int = 0
    max_recovery_s: float = 0.0
    not_ready_within_60s: int = 0
    window_max_s: float = 0.0  # the longest send -> message.sent (ledger) time seen
    elapsed_s: float = 0.0
    max_cpu_during_cut: float = 0.0  # CPU share of the busiest worker while the broker was cut off
    refused_to_start: str | None = None
    crashes: list[str] = field(default_factory=list)  # workers that exited by themselves (restarted, as Kubernetes would)
    repeats: list[str] = field(default_factory=list)  # each repeat: window, number's last digits, delay, body start

    def line(self) -> str:
        return (f"trial {self.trial} seed {self.seed}: lost {self.lost}/{self.patients}, duplicates {self.duplicates} "
                f"(+{self.duplicates_in_window} in the send->ledger window, max {self.window_max_s:.2f}s), "
                f"urgent undelivered {self.urgent_undelivered}/{self.urgent}, wrongly dead-lettered "
                f"{self.wrongly_dead_lettered} (poison {self.poison_dead_lettered}), max recovery {self.max_recovery_s:.1f}s, "
                f"worker CPU during a cut {self.max_cpu_during_cut:.0%}, {self.elapsed_s:.0f}s; faults: {', '.join(self.faults)}"
                + (f"; workers that exited by themselves (restarted): {', '.join(self.crashes)}" if self.crashes else ""))


def totals(results: list[TrialResult]) -> dict[str, object]:
    return {
        "trials": len(results),
        "lost": sum(r.lost for r in results),
        "duplicates": sum(r.duplicates for r in results),
        "duplicates_in_window": sum(r.duplicates_in_window for r in results),
        "urgent_undelivered": sum(r.urgent_undelivered for r in results),
        "max_recovery_s": round(max((r.max_recovery_s for r in results), default=0.0), 1),
        "not_ready_within_60s": sum(r.not_ready_within_60s for r in results),
        "wrongly_dead_lettered": sum(r.wrongly_dead_lettered for r in results),
        "window_max_s": round(max((r.window_max_s for r in results), default=0.0), 2),
        "max_cpu_during_cut": max((r.max_cpu_during_cut for r in results), default=0.0),
        "worker_crashes": sum(len(r.crashes) for r in results),
    }


# --- providers that can be made to fail for a while -----------------------------------------


class OutageTwilio(FakeTwilio):
    """The fake Twilio, answering 500 and 429 in turn until ``outage_until``."""

    outage_until: float = 0.0

    async def _create_message(self, request: web.Request) -> web.Response:
        if time.monotonic() < self.outage_until:
            self.requests += 1
            status, code, text = ERRORS["500" if self.requests % 2 else "429"]
            return _error(status, code, text)
        return await super()._create_message(request)


class _RefusingInbox(_Inbox):
    refuse_until = 0.0

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, N802
        if time.monotonic() < self.refuse_until:
            return "451 4.3.0 Try again later"
        return await super().handle_DATA(server, session, envelope)


class RefusingSmtp(SmtpServer):
    def __init__(self) -> None:
        super().__init__()
        self.inbox = _RefusingInbox()
        self._controller.handler = self.inbox

    def refuse_for(self, seconds: float) -> None:
        self.inbox.refuse_until = time.monotonic() + seconds


# --- the shared environment of all trials -------------------------------------------------


class Environment:
    """One broker behind one fault proxy, one fake Twilio and one SMTP server for all trials
    (each trial has its own topic namespace, so trials never see each other's records)."""

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self.proxy: FaultProxy | None = None
        self.broker: EmbeddedBroker | None = None
        self.twilio = OutageTwilio()
        self.smtp = RefusingSmtp()

    @property
    def bootstrap(self) -> str:
        assert self.proxy
        return f"127.0.0.1:{self.proxy.port}"

    async def __aenter__(self) -> "Environment":
        self.work_dir.mkdir(parents=True, exist_ok=True)
        broker = EmbeddedBroker(log_path=self.work_dir / "tansu.log")
        self.proxy = await FaultProxy(broker.port).start()
        broker.advertised_port = self.proxy.port
        self.broker = await asyncio.to_thread(broker.start)
        await self.twilio.start()
        self.smtp.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.smtp.stop()
        await self.twilio.stop()
        if self.proxy:
            await self.proxy.stop()
        if self.broker:
            self.broker.stop()


# --- observing ----------------------------------------------------------------------------


class Recorder:
    """Every record of some topics, with the time it was read (tolerates a cut broker)."""

    def __init__(self, bootstrap: str, *topics: str) -> None:
        self.consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                         enable_auto_commit=False, metadata_max_age_ms=1000)
        self.records: list[tuple[float, str, bytes | None, bytes | None]] = []
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> "Recorder":
        await self.consumer.start()
        self.task = asyncio.create_task(self._collect())
        return self

    async def _collect(self) -> None:
        async for record in self.consumer:
            self.records.append((time.time(), record.topic, record.key, record.value))

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
        await self.consumer.stop()

    def values(self, topic: str) -> list[tuple[float, bytes | None, bytes | None]]:
        return [(at, key, value) for at, name, key, value in self.records if name == topic]


# --- a trial ---------------------------------------------------------------------------------


@dataclass
class Trial:
    env: Environment
    index: int
    seed: int
    config: ChaosConfig
    topics: Topics = field(default_factory=lambda: Topics(f"c{uuid.uuid4().hex[:10]}"))
    workers: dict[str, list[WorkerProcess]] = field(default_factory=lambda: defaultdict(list))
    recoveries: list[float] = field(default_factory=list)
    killed_at: list[float] = field(default_factory=list)  # when a notifier stopped uncleanly or lost Kafka
    cut_cpu: list[float] = field(default_factory=list)  # busiest worker's CPU share while the broker was cut
    stopped: set[int] = field(default_factory=set)  # ids of the workers this trial killed or stopped on purpose
    crashes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.log_dir = self.env.work_dir / f"trial-{self.index}"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.anchor = time.time()

    # --- workers ---

    def worker_env(self) -> dict[str, str]:
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.env.bootstrap,
            "CYCLECARE_TOPIC_NAMESPACE": self.topics.namespace,
            "CYCLECARE_PARTITIONS": str(self.config.partitions),
            "CYCLECARE_REBALANCE_TIMEOUT": "1",
            "CYCLECARE_TICK_SECONDS": "0.2",
            "CYCLECARE_STUCK_AFTER_SECONDS": "5",
            "CYCLECARE_DATA_DIR": str(self.log_dir / "data"),
            "CYCLECARE_CLOCK_START": CLOCK_START,
            "CYCLECARE_CLOCK_ANCHOR": str(self.anchor),
            "TWILIO_ACCOUNT_SID": self.env.twilio.account_sid,
            "TWILIO_AUTH_TOKEN": self.env.twilio.auth_token,
            "TWILIO_FROM": "+19165550100",
            "TWILIO_API_BASE": self.env.twilio.url,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.env.smtp.port),
            "SMTP_FROM": "cyclecare@clinic.test",
            "CYCLECARE_PUBLIC_URL": PUBLIC_URL,
            "CYCLECARE_LOG_FORMAT": "json",
        }

    def start(self, service: str) -> WorkerProcess:
        process = WorkerProcess(service, self.worker_env(), self.log_dir).start()
        self.workers[service].append(process)
        return process

    def stop_workers(self) -> None:
        live = [w for s in SERVICES for w in self.live(s)]
        for worker in live:
            worker._process.send_signal(signal.SIGTERM)  # noqa: SLF001 - all at once, then wait
        for worker in live:
            worker.stop(timeout=10)

    def live(self, service: str) -> list[WorkerProcess]:
        return [w for w in self.workers[service] if w._process and w._process.poll() is None]  # noqa: SLF001

    def end(self, worker: WorkerProcess) -> WorkerProcess:
        """Mark a worker as stopped on purpose by a fault (not a crash)."""
        self.stopped.add(id(worker))
        return worker

    def restart_crashed(self) -> None:
        """A worker that exited by itself is a finding: note why, and start another in its place,
        as the platform (Kubernetes' restartPolicy, a supervisor) would."""
        for service in SERVICES:
            for worker in list(self.workers[service]):
                if id(worker) in self.stopped or worker._process is None or worker._process.poll() is None:  # noqa: SLF001
                    continue
                self.stopped.add(id(worker))
                self.crashes.append(f"{service} ({crash_reason(worker.output())})")
                self.start(service)

    async def all_ready(self, timeout: float = READY_WITHIN, stable: float = 0.0) -> float | None:
        """Seconds until every live worker answers 200 on /readyz and keeps doing so for
        ``stable`` seconds (None: not within ``timeout``). A killed group member is noticed
        only after the session timeout (10 s), so a kill needs ``stable`` longer than that."""
        started = time.monotonic()
        streak: float | None = None
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
            while time.monotonic() - started < timeout + stable:
                self.restart_crashed()
                now = time.monotonic()
                if all([await _ready(http, w.url) for s in SERVICES for w in self.live(s)]):
                    streak = now if streak is None else streak
                    if now - streak >= stable:
                        took = streak - started
                        return took if took <= timeout else None
                else:
                    streak = None
                await asyncio.sleep(0.2)
        return None

    async def recovered(self, stable: float) -> None:
        took = await self.all_ready(stable=stable)
        self.recoveries.append(READY_WITHIN if took is None else took)

    # --- faults: each returns once the fault has ended ---

    async def kill_worker(self) -> str:
        self.restart_crashed()
        service = self.rng.choice(SERVICES)
        victim = self.end(self.rng.choice(self.live(service)))
        self._note_notifier_loss(service)
        victim.kill()
        await asyncio.sleep(self.rng.uniform(0.5, 3))
        self.start(service)
        return f"SIGKILL {service}"

    async def sigterm_during_rebalance(self) -> str:
        self.restart_crashed()
        service = self.rng.choice(SERVICES)
        old = self.end(self.rng.choice(self.live(service)))
        self.start(service)  # joining makes the group rebalance
        await asyncio.sleep(self.rng.uniform(3, 8))  # the newcomer's start-up and the rebalance
        self._note_notifier_loss(service)
        old._process.send_signal(signal.SIGTERM)  # noqa: SLF001
        await asyncio.to_thread(old._process.wait, 30)  # noqa: SLF001
        return f"SIGTERM {service} in a rebalance"

    async def two_workers_one_killed(self) -> str:
        service = self.rng.choice(SERVICES)
        self.start(service)
        await self.all_ready()
        victim = self.end(self.rng.choice(self.live(service)))
        self._note_notifier_loss(service)
        victim.kill()
        return f"two {service} workers, one SIGKILLed"

    async def broker_cut(self) -> str:
        seconds = self.rng.uniform(*self.config.broker_cut)
        assert self.env.proxy
        self.killed_at.append(time.time())
        workers = [w for s in SERVICES for w in self.live(s)]
        before = [cpu_seconds(w) for w in workers]
        self.env.proxy.cut()
        await asyncio.sleep(seconds)
        used = [cpu_seconds(w) - b for w, b in zip(workers, before)]
        self.env.proxy.heal()
        self.killed_at.append(time.time())
        self.cut_cpu.append(max(used, default=0.0) / seconds)  # a worker that spins would show ~1.0
        return f"broker cut {seconds:.0f}s"

    async def twilio_outage(self) -> str:
        self.env.twilio.outage_until = time.monotonic() + self.config.provider_outage
        await asyncio.sleep(self.config.provider_outage)
        return f"Twilio 500/429 {self.config.provider_outage:.0f}s"

    async def smtp_refusing(self) -> str:
        self.env.smtp.refuse_for(self.config.provider_outage)
        await asyncio.sleep(self.config.provider_outage)
        return f"SMTP 451 {self.config.provider_outage:.0f}s"

    async def poison(self) -> str:
        publisher = await Publisher(self.env.bootstrap).start()
        try:
            for short in INPUT_TOPICS:
                for raw in POISON:
                    await publisher.send(self.topics.name(short), "poison", raw)
        finally:
            await publisher.stop()
        return "poison on every input topic"

    def _note_notifier_loss(self, service: str) -> None:
        if service == "notifier":
            self.killed_at.append(time.time())

    FAULTS = ("kill_worker", "kill_worker", "sigterm_during_rebalance", "two_workers_one_killed", "broker_cut",
              "twilio_outage", "smtp_refusing", "poison", WRONG_PARTITIONS)

    # --- the trial ---

    async def run(self, faults: list[str]) -> TrialResult:
        """``faults``: names of the fault methods to inject, in any order (``WRONG_PARTITIONS``
        is a condition at start-up rather than a moment)."""
        began = time.monotonic()
        chosen = [f for f in faults if f != WRONG_PARTITIONS]
        names = ["patients pre-created with 2 partitions"] if WRONG_PARTITIONS in faults else []
        result = TrialResult(self.index, self.seed, names, self.config.patients, urgent=self.config.urgent)
        if WRONG_PARTITIONS in faults:
            await ensure_topics(self.env.bootstrap, [self.topics.patients], 2)
        for service in SERVICES:
            self.start(service)
        if await self.all_ready(90) is None:
            result.refused_to_start = "workers not ready within 90s"
        recorder = await Recorder(self.env.bootstrap, self.topics.deliveries, self.topics.dlq,
                                  f"{self.topics.namespace}-survey-phones-changelog").start()
        try:
            patients = await self.enrol()
            urgent = patients[: self.config.urgent]
            replies = [asyncio.create_task(self.reply_red_flag(p, recorder)) for p in urgent]
            moments = sorted(self.rng.uniform(0, self.config.fault_window) for _ in chosen)
            started = time.monotonic()
            for moment, fault in zip(moments, chosen):
                await asyncio.sleep(max(0.0, moment - (time.monotonic() - started)))
                names.append(await getattr(self, fault)())
                await self.recovered(stable=SESSION_SETTLE if fault in KILLS else 3.0)
            await self.drain(patients, urgent)
            for task in replies:
                task.cancel()
            self.count(result, patients, urgent, recorder)
        finally:
            await recorder.stop()
            await asyncio.to_thread(self.stop_workers)
        result.faults = names
        result.crashes = self.crashes
        result.max_recovery_s = round(max(self.recoveries, default=0.0), 1)
        result.not_ready_within_60s = sum(1 for r in self.recoveries if r >= READY_WITHIN)
        result.elapsed_s = time.monotonic() - began
        result.max_cpu_during_cut = round(max(self.cut_cpu, default=0.0), 3)
        return result

    def phone(self, n: int) -> str:
        return f"+1916{200 + (self.seed * 7 + self.index) % 700:03d}{n:04d}"  # one fake Twilio for all trials

    async def enrol(self) -> list[tuple[str, str]]:
        publisher = await Publisher(self.env.bootstrap).start()
        patients = []
        try:
            for n in range(self.config.patients):
                pid, phone = f"p{self.index}-{n}", self.phone(n)
                await publisher.send(self.topics.patients, pid, PatientEnrolled(
                    patient_id=pid, clinic_id="rocklin", first_name="Ana", phone=phone,
                    timezone="America/Los_Angeles", language="en", sms_consent=True))
                await publisher.send(self.topics.treatments, pid, TreatmentRecorded(
                    treatment_id=f"t{self.index}-{n}", patient_id=pid, clinic_id="rocklin", administered_on=TREATED_ON))
                patients.append((pid, phone))
        finally:
            await publisher.stop()
        return patients

    async def reply_red_flag(self, patient: tuple[str, str], recorder: Recorder) -> None:
        """Once the patient has the check-in and the survey knows the number: a red-flag
        reply, sent again (like a worried patient) until a survey worker takes it (200)."""
        pid, phone = patient
        while not (self.env.twilio.to(phone) and any(phone.encode() in (k or b"") for _, k, _ in
                                                   recorder.values(f"{self.topics.namespace}-survey-phones-changelog"))):
            await asyncio.sleep(0.2)
        form = {"MessageSid": f"SM{uuid.uuid4().hex}", "AccountSid": self.env.twilio.account_sid, "From": phone,
                "To": "+19165550100", "Body": "YES, I have trouble swallowing since yesterday"}
        signature = RequestValidator(self.env.twilio.auth_token).compute_signature(PUBLIC_URL + "/twilio/sms", form)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            while True:
                for survey in self.live("survey"):
                    try:
                        async with http.post(f"{survey.url}/twilio/sms", data=form,
                                             headers={"X-Twilio-Signature": signature}) as response:
                            if response.status == 200:
                                return
                    except (aiohttp.ClientError, asyncio.TimeoutError):
                        pass
                await asyncio.sleep(0.5)

    def urgent_delivered(self, pid: str) -> bool:
        names = re.compile(rf"\b{re.escape(pid)}\b")
        by_sms = any(names.search(m.body) and "URGENT" in m.body for m in self.env.twilio.to(ON_CALL_PHONE))
        by_mail = any(names.search(mail_text(m)) for m in self.env.smtp.to(ON_CALL_EMAIL))
        return by_sms or by_mail

    async def drain(self, patients: list[tuple[str, str]], urgent: list[tuple[str, str]]) -> None:
        deadline = time.monotonic() + self.config.drain
        while time.monotonic() < deadline:
            if all(self.env.twilio.to(phone) for _, phone in patients) and all(
                    self.urgent_delivered(pid) for pid, _ in urgent):
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(2.0)  # a late duplicate still in flight gets counted too

    def count(self, result: TrialResult, patients: list[tuple[str, str]], urgent: list[tuple[str, str]],
              recorder: Recorder) -> None:
        result.lost = sum(1 for _, phone in patients if not self.env.twilio.to(phone))
        result.urgent_undelivered = sum(1 for pid, _ in urgent if not self.urgent_delivered(pid))
        ledger_at = {}
        for at, _, value in recorder.values(self.topics.deliveries):
            try:
                event = decode(value)
            except DecodeError:
                continue
            if isinstance(event, MessageSent) and event.provider_id:
                ledger_at.setdefault(event.provider_id, at)
        phones = {phone for _, phone in patients} | {ON_CALL_PHONE}
        # the on-call clinician's number is the same in every trial: this trial's messages only
        sms = [m for m in self.env.twilio.messages if m.to in phones and m.received_at >= self.anchor]
        windows = [ledger_at[m.sid] - m.received_at for m in sms if m.sid in ledger_at]
        result.window_max_s = round(max(windows, default=0.0), 2)
        first: dict[tuple[str, str], object] = {}
        for message in sorted(sms, key=lambda m: m.received_at):
            earlier = first.setdefault((message.to, message.body), message)
            if earlier is message:
                continue
            # a repeat is inside the window when the first send was not yet on the ledger
            # (no message.sent on Kafka) by the time the repeat went out
            recorded = ledger_at.get(earlier.sid)
            inside = recorded is None or recorded > message.received_at
            if inside:
                result.duplicates_in_window += 1
            else:
                result.duplicates += 1
            result.repeats.append(f"{'in' if inside else 'OUT'} {message.to[-4:]} +{message.received_at - earlier.received_at:.2f}s "
                                  f"{message.body[:24]!r}")
        for _, _, value in recorder.values(self.topics.dlq):
            record = json.loads(value or b"{}")
            original = base64.b64decode(record.get("original_base64", ""))
            if original in POISON:
                result.poison_dead_lettered += 1
            else:
                result.wrongly_dead_lettered += 1


def mail_text(message: Message) -> str:
    """Subject and decoded text parts of an email."""
    parts = [str(message["Subject"] or "")]
    for part in message.walk():
        if part.get_content_maintype() == "text":
            parts.append((part.get_payload(decode=True) or b"").decode(errors="replace"))
    return "\n".join(parts)


def crash_reason(log: str) -> str:
    """The exception a crashed worker named last (class name only: a log line may quote data)."""
    found = re.findall(r"\b([A-Z][A-Za-z]*(?:Error|Exception))\b", log)
    return found[-1] if found else "no exception logged"


def cpu_seconds(worker: WorkerProcess) -> float:
    """User + system CPU time of a worker process so far (0 for one not running)."""
    used = worker.cpu_seconds()
    return 0.0 if math.isnan(used) else used


async def _ready(http: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with http.get(f"{url}/readyz") as response:
            return response.status == 200
    except (aiohttp.ClientError, asyncio.TimeoutError):
        return False


def deal(trials: int, per_trial: int, rng: random.Random) -> list[list[str]]:
    """Each trial's faults, dealt from shuffled decks of every kind: a few trials already
    cover every kind of fault, and a seed gives the same deal again."""
    cards: list[str] = []
    while len(cards) < trials * per_trial:
        deck = list(Trial.FAULTS)
        rng.shuffle(deck)
        cards += deck
    return [cards[i * per_trial:(i + 1) * per_trial] for i in range(trials)]


async def run_trials(trials: int, seed: int, config: ChaosConfig, work_dir: Path,
                     report: Callable[[TrialResult], Awaitable[None] | None] = print) -> list[TrialResult]:
    results = []
    deck = deal(trials, config.faults, random.Random(seed))
    async with Environment(work_dir) as env:
        for index in range(trials):
            result = await Trial(env, index, seed + index, config).run(deck[index])
            results.append(result)
            outcome = report(result)
            if asyncio.iscoroutine(outcome):
                await outcome
    return results


