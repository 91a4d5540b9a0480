"""Retries, retry tiers, the DLQ, stale versions and poison records on a real broker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from sync_stream.codec.avro import codec_for
from sync_stream.distribution import headers as h
from sync_stream.dlq.failure import utc_iso
from sync_stream.dlq.inspect import DlqFilter, read_dead_letters, replay
from sync_stream.errors import DistributionFailed
from sync_stream.gate.decode import encode_avro_package
from sync_stream.kafka.clients import create_producer
from sync_stream.kafka.reader import read_topic
from sync_stream.kafka.topics import create_topics
from sync_stream.observability.metrics import Metrics
from sync_stream.publish import publish_package
from sync_stream.runtime.pipeline import Outgoing
from sync_stream.runtime.processor import Processor
from sync_stream.settings import Settings
from tests.integration.conftest import load_example, wait_for, wait_for_count, wait_for_keys
from tests.integration.faults import broker_behind_proxy
from tests.integration.packages import user_key, user_row, users_package

pytestmark = pytest.mark.integration

REQUIRED_FAILURE_HEADERS = (
    h.ERROR_STAGE,
    h.ERROR_CLASS,
    h.ERROR_REASON,
    h.ERROR_MESSAGE,
    h.ATTEMPT,
    h.ORIGINAL_TOPIC,
    h.ORIGINAL_PARTITION,
    h.ORIGINAL_OFFSET,
    h.ORIGINAL_TIMESTAMP,
    h.FIRST_FAILED_AT,
)


def headers_of(record: Any) -> dict[str, str]:
    return {key: value.decode() for key, value in record.headers}


def counter(metric: Any, *labels: str) -> float:
    value: float = (metric.labels(*labels) if labels else metric)._value.get()
    return value


def latest_by_key(records: Sequence[Any]) -> dict[bytes, bytes | None]:
    latest: dict[bytes, bytes | None] = {}
    for record in records:
        latest[record.key] = record.value
    return latest


async def test_poison_records_do_not_stall_partition(
    topics: Settings, producer: AIOKafkaProducer
) -> None:
    settings = topics
    topic = settings.topics.source_topic("init")
    key = b"same-partition"
    avro = encode_avro_package(load_example("sync-generic.json"))
    poison: list[tuple[bytes | None, bytes]] = [
        (b"", b"application/json"),
        (None, b"application/json"),
        (bytes(range(256)) * 4, b"application/json"),
        (b'{"code": "F008", "syncId": "\xc3\x28"}', b"application/json"),
        (b"[" * 10_000 + b"]" * 10_000, b"application/json"),
        (b'{"a": "' + b"x" * (settings.limits.max_package_bytes + 10) + b'"}', b"application/json"),
        (b"\xc3\x01" + b"\xff" * 8 + avro[10:], b"avro/binary"),
        (avro[:40], b"avro/binary"),
    ]
    valid = users_package([user_row("AFTER-POISON")])
    async with Processor(settings, Metrics()):
        for value, content_type in poison:
            future = await producer.send(
                topic, value, key=key, headers=[(h.CONTENT_TYPE, content_type)]
            )
            await future
        future = await producer.send(topic, orjson.dumps(valid), key=key)
        await future
        dead = await wait_for_count(settings, settings.topics.dlq_topic, len(poison))
        users = await wait_for_count(settings, settings.topics.facade_topic("users-pos"), 1)

    assert [r.value for r in dead] == [value for value, _ in poison]
    assert len({r.partition for r in dead}) == 1
    for record in dead:
        headers = headers_of(record)
        assert headers[h.ERROR_STAGE] == "decode"
        for name in REQUIRED_FAILURE_HEADERS:
            assert name in headers, name
    assert users[0].key == user_key(valid["processes"]["users_pos"]["records"][0])


async def test_older_version_from_retry_tier_dropped(
    topics: Settings, producer: AIOKafkaProducer
) -> None:
    settings = topics
    newer = users_package([user_row("V-1", updated_at="2026-11-21T10:00:00Z", first_name="Newer")])
    older = users_package([user_row("V-1", updated_at="2026-11-20T10:00:00Z", first_name="Older")])
    metrics = Metrics()
    facade = settings.topics.facade_topic("users-pos")
    async with Processor(settings, metrics):
        await publish_package(producer, settings.topics.source_topic("http"), newer)
        await wait_for_count(settings, facade, 1)

        due_ms = int(time.time() * 1000) + 700
        forced_at = time.monotonic()
        future = await producer.send(
            settings.topics.retry_topic(1),
            orjson.dumps(older),
            key=older["syncId"].encode(),
            headers=[
                (h.CONTENT_TYPE, b"application/json"),
                (h.ATTEMPT, b"1"),
                (h.RETRY_TIER, b"1"),
                (h.RETRY_DUE_AT, utc_iso(due_ms).encode()),
                (h.ORIGINAL_TOPIC, settings.topics.source_topic("http").encode()),
            ],
        )
        await future

        async def dropped() -> bool:
            return counter(metrics.stale_dropped, "users-pos") == 1

        await wait_for(dropped, 30, "the older version to be dropped")
        waited_s = time.monotonic() - forced_at

    records = await read_topic(settings.kafka, facade)
    assert len(records) == 1
    assert codec_for("UserPos").decode(records[0].value)["fullName"] == "Newer Quispe"
    assert waited_s >= 0.6, "a tier record was processed before it was due"
    overshoot = metrics.retry_overshoot_seconds.labels("1")
    assert overshoot._sum.get() < 1.0


async def test_oversized_output_goes_to_dlq(make_settings: Any) -> None:
    settings = make_settings(kafka={"producer_max_request_bytes": 4096})
    await create_topics(settings)
    package = users_package([user_row("BIG", first_name="N" * 6000)])
    metrics = Metrics()
    publisher = create_producer(settings.kafka, max_request_size=1024 * 1024)
    await publisher.start()
    try:
        async with Processor(settings, metrics):
            meta = await publish_package(publisher, settings.topics.source_topic("http"), package)
            dead = await wait_for_count(settings, settings.topics.dlq_topic, 1)
    finally:
        await publisher.stop()

    headers = headers_of(dead[0])
    assert headers[h.ERROR_STAGE] == "distribution"
    assert headers[h.ERROR_REASON] == "record_too_large"
    assert headers[h.ORIGINAL_OFFSET] == str(meta.offset)
    assert headers[h.SYNC_ID] == package["syncId"]
    assert dead[0].value == orjson.dumps(package)
    for name in REQUIRED_FAILURE_HEADERS:
        assert name in headers, name
    assert await read_topic(settings.kafka, settings.topics.facade_topic("users-pos")) == []


class RejectRetries:
    """A version check that always fails retriably, to drive a package through every tier."""

    async def fresh(self, outgoing: Sequence[Outgoing]) -> list[Outgoing]:
        raise DistributionFailed(
            "facade version unknown", retriable=True, reason="version_index_behind"
        )


async def test_exhausted_tiers_then_replay_twice(
    topics: Settings, producer: AIOKafkaProducer
) -> None:
    settings = topics
    package = users_package([user_row(f"R-{i}") for i in range(5)])
    metrics = Metrics()
    facade = settings.topics.facade_topic("users-pos")
    # The first attempt succeeds; the copy forced into tier 1 fails in every tier.
    async with Processor(settings, metrics, stale_filter=RejectRetries()):
        await publish_package(producer, settings.topics.source_topic("http"), package)
        await wait_for_count(settings, facade, 5)
        future = await producer.send(
            settings.topics.retry_topic(1),
            orjson.dumps(package),
            key=package["syncId"].encode(),
            headers=[
                (h.ATTEMPT, b"1"),
                (h.RETRY_TIER, b"1"),
                (h.RETRY_DUE_AT, utc_iso(time.time() * 1000).encode()),
                (h.ORIGINAL_TOPIC, settings.topics.source_topic("http").encode()),
                (h.ORIGINAL_PARTITION, b"0"),
                (h.ORIGINAL_OFFSET, b"0"),
                (h.ORIGINAL_TIMESTAMP, b"0"),
                (h.FIRST_FAILED_AT, utc_iso(time.time() * 1000).encode()),
            ],
        )
        await future
        dead = await wait_for_count(settings, settings.topics.dlq_topic, 1, timeout_s=30)

    headers = headers_of(dead[0])
    assert headers[h.ERROR_STAGE] == "distribution"
    assert headers[h.ATTEMPT] == "3"
    assert counter(metrics.retries, "2") == 1
    assert h.RETRY_DUE_AT not in headers
    assert dead[0].value == orjson.dumps(package)

    before = latest_by_key(await read_topic(settings.kafka, facade))
    async with Processor(settings, Metrics()):
        letters = await read_dead_letters(settings, DlqFilter(stage="distribution"))
        assert len(letters) == 1
        await replay(settings, letters)
        first = await wait_for_count(settings, facade, 10)
        await replay(settings, letters)
        second = await wait_for_count(settings, facade, 15)
    assert latest_by_key(first) == before
    assert latest_by_key(second) == before
    assert len(await read_topic(settings.kafka, settings.topics.dlq_topic)) == 1


async def test_network_cut_retried_without_dlq(make_settings: Any) -> None:
    async with broker_behind_proxy() as (broker, proxy):
        settings = make_settings(
            kafka={
                "bootstrap_servers": broker.bootstrap_servers,
                "producer_request_timeout_ms": 2000,
            },
            retry={
                "attempts": 5,
                "backoff_initial_ms": 300,
                "backoff_max_ms": 1000,
                "tier_delays_ms": (500, 1000),
            },
        )
        await create_topics(settings)
        packages = [users_package([user_row(f"N{p}-{i}") for i in range(100)]) for p in range(300)]
        expected = {user_key(r) for p in packages for r in p["processes"]["users_pos"]["records"]}
        facade = settings.topics.facade_topic("users-pos")
        publisher = create_producer(settings.kafka)
        await publisher.start()
        try:
            for package in packages:
                await publish_package(publisher, settings.topics.source_topic("http"), package)
        finally:
            await publisher.stop()

        metrics = Metrics()
        async with Processor(settings, metrics):
            # Cut the network once distribution is under way, with most of the backlog left.
            facade_counter = metrics.records_produced.labels(facade)

            async def distributing() -> bool:
                return bool(facade_counter._value.get() > 0)

            await wait_for(distributing, 30, "the first distributed output", poll_s=0.005)
            proxy.cut()
            await asyncio.sleep(3)
            proxy.restore()
            records = await wait_for_keys(settings, facade, expected, timeout_s=120)

        assert {r.key for r in records} == expected
        assert await read_topic(settings.kafka, settings.topics.dlq_topic) == []
        retried = counter(metrics.distribution_attempt_failures, "true") + sum(
            counter(metrics.retries, str(tier)) for tier in (1, 2)
        )
        assert retried > 0
