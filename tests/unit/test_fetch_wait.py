"""A quiet consumer fetches less often on a broker that answers a waiting fetch at once; the
first record brings back the short wait; a broker that holds fetches keeps the short wait."""

from __future__ import annotations

import asyncio

from shared.broker import EMBEDDED_CLUSTER_ID
from shared.config import load_settings
from shared.fetch_wait import FetchWait, adapt


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_consumer_receiving_records_keeps_the_short_wait():
    clock = Clock()
    wait = FetchWait(busy_ms=100, idle_ms=500, idle_after_s=2, answered_at_once=True, clock=clock)
    for _ in range(10):
        clock.now += 1
        assert wait.after_fetch(got_records=True) == 100


def test_empty_fetches_for_less_than_the_quiet_time_keep_the_short_wait():
    clock = Clock()
    wait = FetchWait(busy_ms=100, idle_ms=500, idle_after_s=2, answered_at_once=True, clock=clock)
    clock.now = 1.9
    assert wait.after_fetch(got_records=False) == 100


def test_a_consumer_without_records_for_the_quiet_time_waits_longer_until_records_come():
    clock = Clock()
    wait = FetchWait(busy_ms=100, idle_ms=500, idle_after_s=2, answered_at_once=True, clock=clock)
    clock.now = 2.0
    assert wait.after_fetch(got_records=False) == 500
    clock.now = 60.0
    assert wait.after_fetch(got_records=False) == 500
    assert wait.after_fetch(got_records=True) == 100


def test_an_idle_wait_set_below_the_busy_one_never_shortens_the_wait():
    clock = Clock()
    wait = FetchWait(busy_ms=300, idle_ms=50, idle_after_s=0, answered_at_once=True, clock=clock)
    assert wait.after_fetch(got_records=False) == 300


def wait_after_a_minute_of_quiet(answered_at_once: bool | None) -> int:
    clock = Clock()
    wait = FetchWait(busy_ms=100, idle_ms=500, idle_after_s=2, answered_at_once=answered_at_once, clock=clock)
    clock.now = 60.0
    return wait.after_fetch(got_records=False)


def test_a_broker_that_holds_waiting_fetches_keeps_the_short_wait_however_quiet():
    assert wait_after_a_minute_of_quiet(answered_at_once=False) == 100


def test_until_the_broker_has_said_what_it_is_the_wait_stays_short():
    assert wait_after_a_minute_of_quiet(answered_at_once=None) == 100


def test_the_setting_says_auto_yes_or_no_and_auto_leaves_it_to_the_broker():
    def policy(value: str | None) -> FetchWait:
        return FetchWait.from_settings(load_settings({} if value is None else {"CYCLECARE_FETCH_ANSWERED_AT_ONCE": value}))

    assert policy(None).answered_at_once is None
    assert policy("auto").answered_at_once is None
    assert policy("true").answered_at_once is True
    assert policy("false").answered_at_once is False
    assert (policy(None).busy_ms, policy(None).idle_ms) == (100, 1000)


class FakeClient:
    """The part of aiokafka's client that ``auto`` uses: one Metadata request to any broker."""

    def __init__(self, cluster_id: str | None = None, fails: bool = False) -> None:
        self.cluster_id = cluster_id
        self.fails = fails
        self.asked = 0

    @property
    def cluster(self) -> object:
        broker = type("BrokerMetadata", (), {"nodeId": 0})()
        return type("ClusterMetadata", (), {"brokers": lambda _self: {broker}})()

    async def send(self, node_id: int, request: object) -> object:
        self.asked += 1
        if self.fails:
            raise ConnectionError("broker gone")
        return type("MetadataResponse", (), {"cluster_id": self.cluster_id})()


class FakeFetcher:
    """What ``adapt`` relies on in aiokafka's Fetcher: the wait attribute read for each
    request, the coroutine that sends one and says whether records came, and its client."""

    def __init__(self, answers: list[bool], client: FakeClient | None = None) -> None:
        self._fetch_max_wait_ms = 1500
        self.answers = answers
        self.waits: list[int] = []
        self._client = client or FakeClient()

    async def _proc_fetch_request(self, assignment: object, node_id: int, request: object) -> bool:
        self.waits.append(self._fetch_max_wait_ms)
        return self.answers.pop(0)


def fetched(answers: list[bool], client: FakeClient | None = None, answered_at_once: bool | None = None) -> FakeFetcher:
    """A fetcher adapted for ``client``'s broker after fetches 1.5 s apart, one per answer
    (``True``: that fetch brought records)."""
    clock = Clock()
    fetcher = FakeFetcher(list(answers), client)
    adapt(fetcher, FetchWait(busy_ms=100, idle_ms=500, idle_after_s=2, answered_at_once=answered_at_once, clock=clock))

    async def fetch_all() -> None:
        for _ in answers:
            clock.now += 1.5
            await fetcher._proc_fetch_request(None, 0, None)

    asyncio.run(fetch_all())
    return fetcher


def test_the_fetcher_sends_each_next_request_with_the_wait_the_last_answer_calls_for():
    fetcher = fetched([False, False, True, False], answered_at_once=True)
    assert fetcher.waits == [100, 100, 500, 100]
    assert fetcher._fetch_max_wait_ms == 100  # the last empty fetch came 1.5 s after records


def quiet_waits(client: FakeClient, answered_at_once: bool | None = None) -> list[int]:
    """The waits of four empty fetches, 1.5 s apart, of a consumer adapted for ``client``'s broker."""
    return fetched([False] * 4, client, answered_at_once).waits


def test_auto_asks_the_broker_once_and_waits_longer_on_any_cluster_but_the_embedded_one():
    kafka = FakeClient(cluster_id="5L6g3nShT-eMCtK--X86sw")
    assert quiet_waits(kafka) == [100, 100, 500, 500]
    assert kafka.asked == 1


def test_auto_keeps_the_short_wait_on_the_embedded_broker():
    embedded = FakeClient(cluster_id=EMBEDDED_CLUSTER_ID)
    assert quiet_waits(embedded) == [100, 100, 100, 100]
    assert embedded.asked == 1


def test_auto_keeps_the_short_wait_when_the_broker_cannot_be_asked_or_names_no_cluster():
    assert quiet_waits(FakeClient(fails=True)) == [100, 100, 100, 100]
    assert quiet_waits(FakeClient(cluster_id=None)) == [100, 100, 100, 100]


def test_a_setting_of_true_or_false_is_taken_without_asking_the_broker():
    embedded = FakeClient(cluster_id=EMBEDDED_CLUSTER_ID)
    assert quiet_waits(embedded, answered_at_once=True) == [100, 100, 500, 500]
    kafka = FakeClient(cluster_id="kafka")
    assert quiet_waits(kafka, answered_at_once=False) == [100, 100, 100, 100]
    assert embedded.asked == kafka.asked == 0


def test_aiokafkas_fetcher_still_has_what_adapt_relies_on():
    import inspect

    from aiokafka.consumer.fetcher import Fetcher

    assert list(inspect.signature(Fetcher._proc_fetch_request).parameters) == ["self", "assignment", "node_id", "request"]
    assert "self._fetch_max_wait_ms," in inspect.getsource(Fetcher._get_actions_per_node)
    assert "self._proc_fetch_request(" in inspect.getsource(Fetcher._fetch_requests_routine)
    assert "self._client = client" in inspect.getsource(Fetcher.__init__)
