"""The end offsets a table's recovery reads: ListOffsets raised to the high watermark a Fetch
reports, the listed end kept wherever no watermark came back, one Fetch per leader."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from aiokafka.errors import NodeNotReadyError
from faust.types import TP

from shared.end_offsets import by_leader, fetch_at, trusted, trusted_end_offsets, watermarks_of

A0, A1, B0 = TP("a", 0), TP("a", 1), TP("b", 0)


def test_a_fetched_watermark_above_the_listed_end_offset_raises_it():
    assert trusted({A0: 15}, {("a", 0): 21}) == {A0: 21}


def test_a_listed_end_offset_above_the_fetched_watermark_stands():
    """Kafka: both are the high watermark, read at two moments; the later reading is larger."""
    assert trusted({A0: 30}, {("a", 0): 21}) == {A0: 30}


def test_a_partition_without_a_fetched_watermark_keeps_its_listed_end_offset():
    assert trusted({A0: 15, A1: None}, {}) == {A0: 15, A1: None}


def test_a_partition_listed_without_an_end_offset_takes_the_fetched_watermark():
    assert trusted({A1: None}, {("a", 1): 4}) == {A1: 4}


def test_partitions_are_grouped_by_their_leader_and_those_without_one_are_left_out():
    leaders = {A0: 1, A1: 2, B0: 1, TP("c", 0): None, TP("d", 0): -1}
    assert by_leader(leaders, leaders.get) == {1: [A0, B0], 2: [A1]}


def test_the_fetch_asks_each_partition_at_its_listed_end_and_waits_for_almost_nothing():
    request = fetch_at({A0: 15, A1: None, B0: 3})
    assert request.topics == [("a", [(0, 15, 1024), (1, 0, 1024)]), ("b", [(0, 3, 1024)])]
    assert request._max_wait_ms <= 1 and request._min_bytes == 0  # noqa: SLF001


def partition(number: int, error_code: int, high_watermark: int) -> tuple:
    return (number, error_code, high_watermark, high_watermark, 0, [], -1, b"")


def test_only_partitions_answered_without_an_error_give_a_watermark():
    response = SimpleNamespace(topics=[("a", [partition(0, 0, 21), partition(1, 6, -1)]), ("b", [partition(0, 0, 0)])])
    assert watermarks_of(response) == {("a", 0): 21, ("b", 0): 0}


class FakeClient:
    """An aiokafka client whose node 2 does not answer."""

    def __init__(self, watermarks: dict[TP, int], leaders: dict[TP, int]) -> None:
        self.watermarks, self.cluster, self.sent = watermarks, SimpleNamespace(leader_for_partition=leaders.get), []

    async def send(self, node: int, request) -> SimpleNamespace:
        self.sent.append(node)
        if node == 2:
            raise NodeNotReadyError("node 2")
        answered = [(topic, [partition(p, 0, self.watermarks[TP(topic, p)]) for p, *_ in parts])
                    for topic, parts in request.topics]
        return SimpleNamespace(topics=answered)


def test_a_leader_that_fails_to_answer_leaves_its_partitions_at_their_listed_end():
    client = FakeClient({A0: 21, B0: 9, A1: 50}, {A0: 1, B0: 1, A1: 2})
    ends = asyncio.run(trusted_end_offsets(client, {A0: 15, B0: 9, A1: 40}))
    assert ends == {A0: 21, B0: 9, A1: 40}
    assert sorted(client.sent) == [1, 2]
