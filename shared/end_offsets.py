"""End offsets a table's recovery can trust: the larger of what ListOffsets reports and the
high watermark a Fetch response carries.

Faust recovers a table's changelog partition up to the end offset its consumer reports
(``Recovery._build_highwaters`` -> ``Consumer.highwaters`` -> aiokafka ``end_offsets``: a
ListOffsets(latest) request) and stops there. Apache Kafka answers ListOffsets with the high
watermark, the offset after the last committed record, so nothing changes there: both answers
are the same figure, and the larger of two readings of a growing offset is the later one.

The embedded broker (Tansu 0.6.0, ``tansu-storage/src/dynostore.rs``) answers ListOffsets
(latest) with the base offset of the partition's most recently modified record-batch object
plus one (``list_offsets``, lines 1140-1290: the candidate is picked by ``last_modified``, and
line 1273 returns ``offset + 1``), not base + ``last_offset_delta`` + 1. A produce request
moves the partition's watermark by ``last_offset_delta + 1`` (``produce``, lines 710-760 and
880-885), and that watermark is what a Fetch response reports (``fetch``, lines 986-1000;
``tansu-storage/src/service/fetch.rs`` line 197). So for a changelog whose last produced batch
held several writes, ListOffsets points at the first of them and a restarted worker recovered
only that one: a table lost the rest of each partition's last batch, and a recovery after a
rebalance in the same worker could find its own applied offset above the reported end
(Faust's ConsistencyError). One Fetch per partition leader, at the reported end, waiting for
(almost) nothing, returns the true watermark (and on Kafka no records).

``earliest_offsets`` (ListOffsets(earliest)) is left as it is: Tansu picks the oldest batch
object, whose base offset is the start of the log, so recovery does not start late. The
consumer's own ``highwater(tp)`` (lag, stuck-partition checks) already comes from Fetch
responses.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from aiokafka.errors import KafkaError
from aiokafka.protocol.fetch import FetchRequest

log = logging.getLogger(__name__)

TP = TypeVar("TP", bound=tuple)  # a (topic, partition) named tuple: faust's TP or aiokafka's TopicPartition

READ_UNCOMMITTED = 0
# A fetch at the reported end brings no records from Kafka and one batch at most
# from the embedded broker; the cap keeps it small on a broker that would send more.
PARTITION_MAX_BYTES = 1024
# Kafka answers at once (min bytes 0); the embedded broker answers a fetch allowed no wait at
# all with no partitions, so it is allowed one millisecond.
FETCH_WAIT_MS = 1


def trusted(listed: Mapping[TP, int | None], watermarks: Mapping[tuple[str, int], int]) -> dict[TP, int | None]:
    """Each partition's end offset: the larger of the listed one and the fetched watermark;
    a partition whose fetch failed keeps what was listed."""
    ends: dict[TP, int | None] = {}
    for tp, listed_end in listed.items():
        watermark = watermarks.get((tp[0], tp[1]))
        ends[tp] = listed_end if watermark is None else max(listed_end or 0, watermark)
    return ends


def by_leader(partitions: Iterable[TP], leader_of: Callable[[TP], int | None]) -> dict[int, list[TP]]:
    """Partitions grouped by the node that leads them; a partition without a known leader is left out."""
    groups: dict[int, list[TP]] = defaultdict(list)
    for tp in partitions:
        leader = leader_of(tp)
        if leader is not None and leader >= 0:
            groups[leader].append(tp)
    return dict(groups)


def fetch_at(ends: Mapping[TP, int | None]) -> FetchRequest:
    """A Fetch of each partition at its listed end that waits for (almost) nothing."""
    topics: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
    for tp, end in ends.items():
        topics[tp[0]].append((tp[1], max(end or 0, 0), PARTITION_MAX_BYTES))
    return FetchRequest(FETCH_WAIT_MS, 0, PARTITION_MAX_BYTES * max(len(ends), 1), READ_UNCOMMITTED, list(topics.items()))


def watermarks_of(response: Any) -> dict[tuple[str, int], int]:
    """The high watermark of each partition a Fetch response answered without an error."""
    found: dict[tuple[str, int], int] = {}
    for topic, partitions in response.topics:
        for partition, error_code, high_watermark, *_ in partitions:
            if error_code == 0 and high_watermark >= 0:
                found[(topic, partition)] = high_watermark
    return found


async def fetched_watermarks(client: Any, ends: Mapping[TP, int | None]) -> dict[tuple[str, int], int]:
    """The high watermarks an aiokafka client's brokers report for ``ends``' partitions, one
    Fetch per leader; a leader that fails is left out (its partitions keep the listed end)."""
    found: dict[tuple[str, int], int] = {}
    for node, partitions in by_leader(ends, client.cluster.leader_for_partition).items():
        try:
            response = await client.send(node, fetch_at({tp: ends[tp] for tp in partitions}))
        except KafkaError as exc:
            log.warning("could not fetch the high watermarks of %d partitions from node %s (%s): "
                        "their listed end offsets stand", len(partitions), node, type(exc).__name__)
            continue
        answered = watermarks_of(response)
        if unanswered := [tp for tp in partitions if (tp[0], tp[1]) not in answered]:
            log.debug("no high watermark for %s: their listed end offsets stand", unanswered)
        found |= answered
    return found


async def trusted_end_offsets(client: Any, listed: Mapping[TP, int | None]) -> dict[TP, int | None]:
    """``listed`` (aiokafka ``end_offsets``) raised to the watermarks the brokers fetch."""
    return trusted(listed, await fetched_watermarks(client, listed))
