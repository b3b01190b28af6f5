"""`cyclecare dlq list|replay`: dead letters an operator can act on.

``list`` shows where each dead letter came from and why (never the record's body);
``replay`` republishes the original bytes, with their original key, to the topic they came
from, once the cause is fixed (the clinic added to the clinics file, say). Replaying is
idempotent: the bytes carry the same event ids, and every consumer ignores an event id or
a treatment id it has already handled, so replaying twice changes nothing more.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone

import click
from pydantic import BaseModel, ConfigDict, ValidationError

from shared.config import Settings, load_settings
from shared.failures import dlq_reason
from shared.logs import redact
from shared.topics import Topics

# --- the pure part ----------------------------------------------------------------------


class DeadLetter(BaseModel):
    """One record of ``cyclecare.dlq`` (written by ``shared.codec.dead_letter``)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    service: str = "?"
    topic: str
    partition: int
    offset: int
    error: str
    original_base64: str = ""
    occurred_at: datetime
    key: bytes | None = None  # the DLQ record's key: the original record's key

    @property
    def reason(self) -> str:
        return dlq_reason(self.error)

    @property
    def original(self) -> bytes:
        return base64.b64decode(self.original_base64)

    def line(self) -> str:
        """What ``list`` prints: when, who, where from and why; never the body."""
        detail = redact(self.error.split("\n", 1)[0])[:140]
        return (f"{self.occurred_at.isoformat(timespec='seconds')}  {self.service:<9} "
                f"{self.topic}[{self.partition}]@{self.offset}  {self.reason}  ({detail})")


def parse(value: bytes | None, key: bytes | None) -> DeadLetter | None:
    """A DLQ record, or None for anything else on that topic."""
    try:
        return DeadLetter.model_validate(json.loads(value or b"") | {"key": key})
    except (ValueError, TypeError, ValidationError):
        return None


_DURATION = re.compile(r"^(\d+)\s*([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def since_moment(text: str, now: datetime) -> datetime:
    """``--since``: an RFC 3339 time, or a duration back from now (``30m``, ``2h``, ``7d``)."""
    if match := _DURATION.match(text.strip()):
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        raise click.BadParameter("a time needs its UTC offset, e.g. 2026-11-25T09:00:00+00:00")
    return moment


def select(letters: Iterable[DeadLetter], *, topic: str | None = None, reason: str | None = None,
           since: datetime | None = None) -> list[DeadLetter]:
    return [d for d in letters
            if (topic is None or d.topic == topic)
            and (reason is None or d.reason == reason)
            and (since is None or d.occurred_at >= since)]


def unique_originals(letters: Iterable[DeadLetter]) -> list[DeadLetter]:
    """One replay per original record: the same record dead-lettered twice (by two services,
    or again after an earlier replay) is republished once."""
    seen: set[tuple[str, bytes | None, str]] = set()
    kept = []
    for letter in letters:
        identity = (letter.topic, letter.key, letter.original_base64)
        if identity not in seen and letter.original_base64:
            seen.add(identity)
            kept.append(letter)
    return kept


def summary(letters: list[DeadLetter]) -> str:
    by_reason = Counter(d.reason for d in letters)
    parts = ", ".join(f"{reason} {count}" for reason, count in by_reason.most_common())
    return f"{len(letters)} dead letter(s)" + (f": {parts}" if parts else "")


def full_topic_name(topics: Topics, name: str) -> str:
    """``--topic patients`` and ``--topic cyclecare.patients`` both name the topic."""
    return name if name.startswith(f"{topics.namespace}.") else topics.name(name)


# --- Kafka -------------------------------------------------------------------------------


async def read_dead_letters(settings: Settings, quiet_ms: int = 1000) -> list[DeadLetter]:
    """Every record of the DLQ topic, from the beginning to its end (no consumer group)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    topic = Topics(settings.topic_namespace).dlq
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    letters: list[DeadLetter] = []
    try:
        partitions = [TopicPartition(topic, p) for p in (consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            await consumer.topics()  # metadata for the topic, if it exists
            partitions = [TopicPartition(topic, p) for p in (consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            return []
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        while True:
            batch = await consumer.getmany(*partitions, timeout_ms=quiet_ms)
            for records in batch.values():
                letters.extend(d for r in records if (d := parse(r.value, r.key)) is not None)
            # the end offsets a broker reports can lag under load: stop only when quiet too
            if not batch and all([await consumer.position(tp) >= ends[tp] for tp in partitions]):
                return letters
    finally:
        await consumer.stop()


async def republish(settings: Settings, letters: list[DeadLetter]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    await producer.start()
    try:
        sent = [await producer.send(d.topic, d.original, key=d.key) for d in letters]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


# --- the commands --------------------------------------------------------------------------


@click.group("dlq")
def dlq() -> None:
    """Dead letters: list them; replay them once the cause is fixed."""


@dlq.command("list")
@click.option("--since", "since_text", help="Only those dead-lettered since: a time (RFC 3339) or 30m, 2h, 7d.")
@click.option("--topic", help="Only those from this topic (patients or cyclecare.patients).")
def list_command(since_text: str | None, topic: str | None) -> None:
    """Count the dead letters and show where each came from and why (never the body)."""
    settings = load_settings()
    topics = Topics(settings.topic_namespace)
    since = since_moment(since_text, datetime.now(timezone.utc)) if since_text else None
    letters = select(asyncio.run(read_dead_letters(settings)),
                     topic=full_topic_name(topics, topic) if topic else None, since=since)
    for letter in letters:
        click.echo(letter.line())
    click.echo(summary(letters))


@dlq.command("replay")
@click.option("--topic", required=True, help="Republish the dead letters that came from this topic.")
@click.option("--reason", help="Only those with this reason (as `cyclecare dlq list` shows it).")
@click.option("--since", "since_text", help="Only those dead-lettered since: a time (RFC 3339) or 30m, 2h, 7d.")
@click.option("--dry-run", is_flag=True, help="Say what would be republished; publish nothing.")
def replay_command(topic: str, reason: str | None, since_text: str | None, dry_run: bool) -> None:
    """Republish the original bytes to their topic, after the cause is fixed (idempotent)."""
    settings = load_settings()
    topics = Topics(settings.topic_namespace)
    since = since_moment(since_text, datetime.now(timezone.utc)) if since_text else None
    chosen = unique_originals(select(asyncio.run(read_dead_letters(settings)),
                                     topic=full_topic_name(topics, topic), reason=reason, since=since))
    for letter in chosen:
        click.echo(("would replay " if dry_run else "replay ") + letter.line())
    if not dry_run and chosen:
        asyncio.run(republish(settings, chosen))
    verb = "would republish" if dry_run else "republished"
    click.echo(f"{verb} {len(chosen)} record(s) to {full_topic_name(topics, topic)}")
