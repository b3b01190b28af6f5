"""Hostile and sloppy input at every edge of a running pipeline (README, "Limits").

1. text functions: time per KB of each function that reads untrusted text, on its
   worst-case input at growing sizes; the smallest size is the baseline, and a flat
   µs/KB (ratio ≈ 1) is linear time;
2. HTTP edges: N inputs each to ``POST /v1/patients`` and ``/v1/treatments`` (scheduler),
   ``/twilio/sms`` (survey) and ``/twilio/status`` (notifier), run by real workers on the
   embedded broker: answers by status, 5xx, requests with no answer in 10 s (hung), and the
   latency of valid requests (the baseline) next to hostile ones;
3. Kafka edges: N records each on ``patients``, ``treatments`` and ``inbound``: every record
   the codec refuses must reach the DLQ from every service that reads the topic, and every
   record must be consumed (missing = neither);
4. throughout 2 and 3, ``/healthz`` of every worker every 100 ms: slowest answer, failures.

Prints a readable report and, last, one line of JSON. Run it under the shared lock:
``flock /tmp/cyclecare-heavy.lock .venv/bin/python -m bench.fuzz``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaProducer

from bench.fuzz.inputs import (
    PATIENT, SMS, SMS_FORM, STATUS_FORM, TREATMENT, ingest_request, kafka_key, mutated_json, webhook_request,
)
from shared.broker import EmbeddedBroker, ensure_topics
from shared.codec import DecodeError, decode, decode_record
from shared.logs import redact
from shared.topics import Topics
from shared.twilio_signature import parse_form
from services.survey.adapters.webhook import normalise_phone
from tests.support.fake_twilio import FakeTwilio
from tests.support.kafka import TopicWatcher
from tests.support.workers import WorkerProcess

PARTITIONS = 4
PUBLIC_URL = "https://cyclecare.clinic.test/hooks"
API_TOKEN = "bench-api-token"
HUNG_SECONDS = 10.0
MAX_SENT_BYTES = 1_000_000  # what a Kafka producer sends by default (message.max.bytes)
CONSUMERS = {"patients": ("scheduler", "survey", "notifier"), "treatments": ("scheduler",), "inbound": ("survey",)}


# --- 1. text functions ------------------------------------------------------------------

def text_functions() -> dict[str, tuple[Callable[[str], object], list[str], list[int]]]:
    """name -> (function, worst-case units, sizes in characters)."""
    from services.survey.parsing import detect_red_flags, parse_reply

    big = [1024, 16 * 1024, 256 * 1024, 1024 * 1024]
    parser = [256, 1024, 1600]  # the survey parses at most SMS_PARSE_CHARS of a body
    units = ["x", "1", "+1", "+1 ", ".", "-", "(123) ", "a@", "a@b.", " ", "a.+-_1", "can't swallow ", "no no ", "❾"]
    functions: dict[str, tuple[Callable[[str], object], list[str], list[int]]] = {
        "logs.redact (before the line cut)": (_redact_uncut, units, big),
        "logs.redact": (redact, units, big),
        "codec.decode": (_decode_text, ["[", "{\"a\":", "\"x", "9", "\\u00e9"], big),
        "twilio_signature.parse_form": (_form, ["Body=", "%FF", "&", "x", "=%", "+"], big),
        "webhook.normalise_phone": (normalise_phone, ["+1", "9", " "], [1024, 16 * 1024]),
        "parsing.detect_red_flags": (detect_red_flags, units, parser),
    }
    for question in ("q1_red_flags", "q2_common_effects", "q3a_headache_days", "q3b_medication_days"):
        functions[f"parsing.parse_reply({question})"] = (
            lambda text, q=question: _never_raises(parse_reply, text, q), units, parser)
    return functions


def _redact_uncut(text: str) -> str:
    from shared.logs import _EMAIL, _PHONE

    return _PHONE.sub("[phone]", _EMAIL.sub("[email]", text))


def _decode_text(text: str) -> object:
    try:
        return decode(text.encode())
    except DecodeError:
        return None


def _form(text: str) -> object:
    try:
        return parse_form(text.encode("utf-8", "replace"), "application/x-www-form-urlencoded", None)
    except Exception:  # noqa: BLE001 - Refused is the expected outcome
        return None


def _never_raises(function: Callable, text: str, question: str) -> object:
    try:
        return function(text, question)
    except Exception as exc:  # noqa: BLE001 - reported, not hidden
        return exc


def measure_text() -> dict[str, dict]:
    results = {}
    for name, (function, units, sizes) in text_functions().items():
        per_size = {}
        for size in sizes:
            worst = 0.0
            for unit in units:
                text = (unit * (size // len(unit) + 1))[:size]
                started = time.perf_counter()
                function(text)
                worst = max(worst, time.perf_counter() - started)
            per_size[size] = worst * 1e6 / (size / 1024)
        baseline = per_size[sizes[0]]
        results[name] = {"us_per_kb": {str(k): round(v, 1) for k, v in per_size.items()},
                         "worst_us_per_kb": round(max(per_size.values()), 1),
                         "ratio_largest_to_smallest": round(per_size[sizes[-1]] / baseline, 2) if baseline else None}
    return results


def _size(characters: int) -> str:
    return f"{characters // 1024} K" if characters % 1024 == 0 else f"{characters} ch"


# --- 2. HTTP edges ----------------------------------------------------------------------

async def fuzz_http(name: str, url: str, make: Callable[[random.Random], tuple[bytes, dict[str, str]]], count: int,
                    seed: int, valid_latency: list[float], hostile_latency: list[float]) -> dict:
    rng = random.Random(f"{seed}-{name}")
    statuses: Counter[str] = Counter()
    requests = [make(rng) for _ in range(count)]
    queue: asyncio.Queue = asyncio.Queue()
    for request in requests:
        queue.put_nowait(request)
    timeout = aiohttp.ClientTimeout(total=HUNG_SECONDS)

    async def client() -> None:
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while not queue.empty():
                body, headers = queue.get_nowait()
                started = time.perf_counter()
                try:
                    async with http.post(url, data=body, headers=headers) as response:
                        await response.read()
                        statuses[str(response.status)] += 1
                        ok = response.status < 300
                except asyncio.TimeoutError:
                    statuses["hung"] += 1
                    continue
                except aiohttp.ClientError as exc:
                    statuses[type(exc).__name__] += 1
                    continue
                (valid_latency if ok else hostile_latency).append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(8)))
    elapsed = time.perf_counter() - started
    fivexx = sum(n for status, n in statuses.items() if status.startswith("5"))
    return {"inputs": count, "statuses": dict(sorted(statuses.items())), "5xx": fivexx, "hung": statuses["hung"],
            "per_second": round(count / elapsed)}


# --- 3. Kafka edges ---------------------------------------------------------------------

async def fuzz_kafka(bootstrap: str, topics: Topics, count: int, seed: int) -> tuple[dict, set, Counter]:
    """Sends ``count`` records to each input topic; returns what was sent, the dead letters
    each reader owes, and the records each (service, topic) must consume."""
    bases = {"patients": PATIENT, "treatments": TREATMENT, "inbound": SMS}
    owed: set[tuple[str, str, int, int]] = set()
    must_consume: Counter[tuple[str, str]] = Counter()
    sent: dict[str, dict[str, int]] = {}
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=2_000_000, linger_ms=5)
    await producer.start()
    try:
        for short, base in bases.items():
            rng = random.Random(f"{seed}-kafka-{short}")
            topic = topics.name(short)
            refused = 0
            pending = []
            for _ in range(count):
                key, value = kafka_key(rng), mutated_json(rng, base)[:MAX_SENT_BYTES]
                try:
                    decode_record(key, value)
                    bad = False
                except DecodeError:
                    bad = True
                    refused += 1
                pending.append((await producer.send(topic, value, key=key), bad))
            for future, bad in pending:
                meta = await future
                for service in CONSUMERS[short]:
                    must_consume[(service, topic)] += 1
                    if bad:
                        owed.add((service, topic, meta.partition, meta.offset))
            sent[short] = {"records": count, "refused_by_codec": refused}
    finally:
        await producer.stop()
    return sent, owed, must_consume


async def consumed(workers: dict[str, WorkerProcess]) -> Counter[tuple[str, str]]:
    counts: Counter[tuple[str, str]] = Counter()
    pattern = re.compile(r'^cyclecare_events_consumed_total\{service="([^"]+)",topic="([^"]+)"\} (\S+)$')
    async with aiohttp.ClientSession() as http:
        for worker in workers.values():
            try:
                async with http.get(f"{worker.url}/metrics") as response:
                    text = await response.text()
            except aiohttp.ClientError:
                continue
            for line in text.splitlines():
                match = pattern.match(line)
                if match:
                    counts[(match[1], match[2])] += int(float(match[3]))
    return counts


# --- 4. health ----------------------------------------------------------------------------

async def probe_health(workers: dict[str, WorkerProcess], stop: asyncio.Event) -> dict:
    latencies: list[float] = []
    slowest: dict[str, float] = dict.fromkeys(workers, 0.0)
    failures: Counter[str] = Counter()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
        while not stop.is_set():
            for name, worker in workers.items():
                started = time.perf_counter()
                try:
                    async with http.get(f"{worker.url}/healthz") as response:
                        await response.read()
                        if response.status != 200:
                            failures[name] += 1
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    failures[name] += 1
                latencies.append(time.perf_counter() - started)
                slowest[name] = max(slowest[name], latencies[-1])
            await asyncio.sleep(0.1)
    latencies.sort()
    return {"probes": len(latencies), "failed": sum(failures.values()),
            "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1) if latencies else None,
            "max_ms": round(latencies[-1] * 1000, 1) if latencies else None,
            "over_100ms": sum(1 for t in latencies if t > 0.1),
            "max_ms_by_worker": {name: round(t * 1000, 1) for name, t in slowest.items()}}


# --- the run ------------------------------------------------------------------------------

async def run(count: int, seed: int, kafka_wait: float) -> dict:
    report: dict = {"inputs_per_edge": count, "seed": seed}
    print("1. text functions, worst case (µs per KB at each size; ratio > 1 grows faster than linear)")
    report["text"] = measure_text()
    for name, figures in report["text"].items():
        sizes = ", ".join(f"{_size(int(k))}: {v}" for k, v in figures["us_per_kb"].items())
        print(f"   {name:36} {sizes}   ratio {figures['ratio_largest_to_smallest']}")

    scratch = Path(tempfile.mkdtemp(prefix="cyclecare-fuzz-"))
    with EmbeddedBroker(log_path=scratch / "tansu.log") as broker:
        topics = Topics(f"fuzz{uuid.uuid4().hex[:8]}")
        await ensure_topics(broker.bootstrap_servers, topics.all(), PARTITIONS)
        twilio = await FakeTwilio().start()
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers, "CYCLECARE_TOPIC_NAMESPACE": topics.namespace,
            "CYCLECARE_PARTITIONS": str(PARTITIONS), "CYCLECARE_REBALANCE_TIMEOUT": "2",
            "CYCLECARE_DATA_DIR": str(scratch / "data"), "CYCLECARE_LOG_LEVEL": "WARNING",
            "CYCLECARE_LOG_FORMAT": "json", "TWILIO_ACCOUNT_SID": twilio.account_sid,
            "TWILIO_AUTH_TOKEN": twilio.auth_token, "TWILIO_FROM": "+19165550100", "TWILIO_API_BASE": twilio.url,
            "CYCLECARE_PUBLIC_URL": PUBLIC_URL, "CYCLECARE_API_TOKEN": API_TOKEN,
        }
        workers = {name: WorkerProcess(name, os.environ | env, scratch).start()
                   for name in ("scheduler", "survey", "notifier")}
        watcher = None
        try:
            for worker in workers.values():
                await worker.wait_ready(120)
            watcher = await TopicWatcher(broker.bootstrap_servers, topics.dlq).start()
            stop = asyncio.Event()
            probing = asyncio.create_task(probe_health(workers, stop))

            print(f"\n2. HTTP edges, {count} inputs each (8 clients)")
            valid_latency: list[float] = []
            hostile_latency: list[float] = []
            token = twilio.auth_token
            edges = {
                "/v1/patients": (workers["scheduler"], lambda r: ingest_request(r, PATIENT, API_TOKEN)),
                "/v1/treatments": (workers["scheduler"], lambda r: ingest_request(r, TREATMENT, API_TOKEN)),
                "/twilio/sms": (workers["survey"],
                                lambda r: webhook_request(r, SMS_FORM, "/twilio/sms", PUBLIC_URL, token)),
                "/twilio/status": (workers["notifier"],
                                   lambda r: webhook_request(r, STATUS_FORM, "/twilio/status", PUBLIC_URL, token)),
            }
            report["http"] = {}
            for path, (worker, make) in edges.items():
                figures = await fuzz_http(path, worker.url + path, make, count, seed, valid_latency, hostile_latency)
                report["http"][path] = figures
                print(f"   {path:16} {figures['per_second']:>5}/s  5xx {figures['5xx']}  hung {figures['hung']}  "
                      f"{figures['statuses']}")
            report["http_latency_ms"] = {
                "valid_median": round(statistics.median(valid_latency) * 1000, 2) if valid_latency else None,
                "hostile_median": round(statistics.median(hostile_latency) * 1000, 2) if hostile_latency else None,
                "hostile_max": round(max(hostile_latency) * 1000, 1) if hostile_latency else None,
            }
            print(f"   answer time: valid (baseline) median {report['http_latency_ms']['valid_median']} ms, "
                  f"refused median {report['http_latency_ms']['hostile_median']} ms, "
                  f"refused max {report['http_latency_ms']['hostile_max']} ms")

            print(f"\n3. Kafka edges, {count} records each on {', '.join(CONSUMERS)}")
            baseline = await consumed(workers)
            started = time.perf_counter()
            sent, owed, must = await fuzz_kafka(broker.bootstrap_servers, topics, count, seed)

            def outstanding() -> set:
                letters = {(r["service"], r["topic"], r["partition"], r["offset"]) for r in watcher.raw(topics.dlq)}
                return owed - letters

            deadline = time.monotonic() + kafka_wait
            while True:
                missing_letters = outstanding()
                now = await consumed(workers)
                short = {k: n - (now[k] - baseline[k]) for k, n in must.items() if now[k] - baseline[k] < n}
                if (not missing_letters and not short) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
            drained = time.perf_counter() - started
            report["kafka"] = {"sent": sent, "dead_letters_owed": len(owed), "missing_dead_letters": len(missing_letters),
                               "not_consumed": sum(short.values()), "seconds_to_drain": round(drained, 1)}
            report["kafka"]["missing"] = len(missing_letters) + sum(short.values())
            for name, figures in sent.items():
                print(f"   {name:12} {figures['records']} records, {figures['refused_by_codec']} refused by the codec")
            print(f"   dead letters owed {len(owed)}, missing {len(missing_letters)}; records not consumed "
                  f"{sum(short.values())}; drained in {drained:.1f} s")

            stop.set()
            report["healthz"] = await probing
            report["workers_alive"] = all(w._process.poll() is None for w in workers.values())  # noqa: SLF001
            print(f"\n4. /healthz: {report['healthz']['probes']} probes, {report['healthz']['failed']} failed, "
                  f"p99 {report['healthz']['p99_ms']} ms, max {report['healthz']['max_ms']} ms, "
                  f"{report['healthz']['over_100ms']} over 100 ms (slowest by worker: {report['healthz']['max_ms_by_worker']}); "
                  f"every worker alive: {report['workers_alive']}")
            tracebacks = sum(w.output().count("Traceback") for w in workers.values())
            report["worker_tracebacks"] = tracebacks
        finally:
            if watcher is not None:
                await watcher.stop()
            for worker in workers.values():
                worker.stop()
            await twilio.stop()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=10_000, help="inputs per edge (default 10,000)")
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--kafka-wait", type=float, default=600.0, help="seconds to wait for the DLQ and consumers")
    args = parser.parse_args()
    report = asyncio.run(run(args.inputs, args.seed, args.kafka_wait))
    http_5xx = sum(e["5xx"] for e in report["http"].values())
    hung = sum(e["hung"] for e in report["http"].values()) + (0 if report["workers_alive"] else 1)
    summary = {"bench": "fuzz", "inputs_per_edge": report["inputs_per_edge"], "http_5xx": http_5xx, "hung": hung,
               "kafka_missing": report["kafka"]["missing"], "healthz_failed": report["healthz"]["failed"],
               "healthz_max_ms": report["healthz"]["max_ms"],
               "text_worst_us_per_kb": {k: v["worst_us_per_kb"] for k, v in report["text"].items()},
               "text_ratio": {k: v["ratio_largest_to_smallest"] for k, v in report["text"].items()},
               "detail": report}
    print(f"\nresult: {http_5xx} 5xx, {hung} hung, {report['kafka']['missing']} records missing")
    print(json.dumps(summary))
    sys.exit(0 if http_5xx == 0 and hung == 0 and report["kafka"]["missing"] == 0 else 1)


if __name__ == "__main__":
    main()
