"""Processor processes killed, restarted, joined and stopped while a stream flows."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition

from sync_stream.distribution import headers as h
from sync_stream.dlq.failure import utc_iso
from sync_stream.kafka.clients import create_consumer, create_producer
from sync_stream.kafka.reader import read_topic
from sync_stream.kafka.topics import create_topics
from sync_stream.publish import publish_package
from sync_stream.settings import Settings
from tests.integration.conftest import wait_for, wait_for_count, wait_for_keys
from tests.integration.packages import user_key, user_row, users_package

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def settings_env(settings: Settings) -> dict[str, str]:
    """The SYNC_* environment that reproduces the test's settings in a child process."""
    kafka, topics, retry = settings.kafka, settings.topics, settings.retry
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNC_")}
    env.update(
        {
            "SYNC_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
            "SYNC_KAFKA__GROUP_ID": kafka.group_id,
            "SYNC_KAFKA__SESSION_TIMEOUT_MS": str(kafka.session_timeout_ms),
            "SYNC_KAFKA__HEARTBEAT_INTERVAL_MS": str(kafka.heartbeat_interval_ms),
            "SYNC_TOPICS__PREFIX": topics.prefix,
            "SYNC_TOPICS__PARTITIONS": str(topics.partitions),
            "SYNC_RETRY__TIER_DELAYS_MS": orjson.dumps(list(retry.tier_delays_ms)).decode(),
            "SYNC_COMMIT_INTERVAL_MS": str(settings.commit_interval_ms),
            "SYNC_SHUTDOWN_TIMEOUT_MS": str(settings.shutdown_timeout_ms),
            "SYNC_LOG_FORMAT": "json",
            "SYNC_LOG_LEVEL": "INFO",
        }
    )
    return env


class ProcessorProcess:
    """`sync-stream run --role processor` in a child process, its log in a file."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self._env = settings_env(settings)
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ProcessorProcess:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sync_stream", "run", "--role", "processor"],
            cwd=ROOT,
            env=self._env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        return self

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def wait_assigned(self, timeout_s: float = 30) -> None:
        async def assigned() -> bool:
            return "partitions assigned" in self.log_text()

        await wait_for(assigned, timeout_s, f"partitions assigned in {self.log_path.name}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def terminate(self, timeout_s: float = 30) -> tuple[int, float]:
        """Send SIGTERM; return the exit code and seconds until exit."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout_s)
        return code, time.monotonic() - started

    def ensure_stopped(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
async def spawn(tmp_path: Path) -> AsyncIterator[Callable[[Settings], ProcessorProcess]]:
    started: list[ProcessorProcess] = []

    def factory(settings: Settings) -> ProcessorProcess:
        child = ProcessorProcess(settings, tmp_path / f"processor-{len(started)}.log").start()
        started.append(child)
        return child

    yield factory
    for child in started:
        child.ensure_stopped()


async def publish_all(
    settings: Settings, packages: list[dict[str, Any]], pause_s: float = 0.0
) -> list[Any]:
    producer = create_producer(settings.kafka)
    await producer.start()
    try:
        sent = []
        for package in packages:
            sent.append(
                await publish_package(producer, settings.topics.source_topic("http"), package)
            )
            if pause_s:
                await asyncio.sleep(pause_s)
        return sent
    finally:
        await producer.stop()


def expected_keys(packages: list[dict[str, Any]]) -> set[bytes]:
    return {user_key(r) for p in packages for r in p["processes"]["users_pos"]["records"]}


def assert_consistent(records: list[Any], keys: set[bytes]) -> None:
    """Every expected key present, nothing else, and duplicates carry identical bytes."""
    values: dict[bytes, bytes] = {}
    for record in records:
        held = values.setdefault(record.key, record.value)
        assert held == record.value, "a redelivered package produced different bytes"
    assert set(values) == keys


def packages_of(count: int, prefix: str) -> list[dict[str, Any]]:
    return [users_package([user_row(f"{prefix}{p}-{i}") for i in range(100)]) for p in range(count)]


async def test_sigkill_mid_batch_loses_nothing(settings: Settings, spawn: Any) -> None:
    await create_topics(settings)
    packages = packages_of(400, "K")
    keys = expected_keys(packages)
    await publish_all(settings, packages)
    facade = settings.topics.facade_topic("users-pos")

    first = spawn(settings)
    await wait_for_count(settings, facade, 2_000, timeout_s=60)
    first.kill()
    after_first = {r.key for r in await read_topic(settings.kafka, facade)}
    assert len(after_first) < len(keys), "the first processor finished before it was killed"
    second = spawn(settings)
    await wait_for_count(settings, facade, 15_000, timeout_s=60)
    second.kill()
    third = spawn(settings)
    await third.wait_assigned()
    records = await wait_for_keys(settings, facade, keys, timeout_s=90)
    code, _ = third.terminate()

    assert code == 0
    assert_consistent(await read_topic(settings.kafka, facade), keys)
    assert len(records) >= len(keys)


async def test_sigkill_while_record_waits_in_tier(settings: Settings, spawn: Any) -> None:
    await create_topics(settings)
    package = users_package([user_row(f"T-{i}") for i in range(3)])
    first = spawn(settings)
    await first.wait_assigned()

    producer = create_producer(settings.kafka)
    await producer.start()
    try:
        due_ms = time.time() * 1000 + 4_000
        future = await producer.send(
            settings.topics.retry_topic(2),
            orjson.dumps(package),
            key=package["syncId"].encode(),
            headers=[
                (h.ATTEMPT, b"2"),
                (h.RETRY_TIER, b"2"),
                (h.RETRY_DUE_AT, utc_iso(due_ms).encode()),
                (h.ORIGINAL_TOPIC, settings.topics.source_topic("http").encode()),
            ],
        )
        await future
    finally:
        await producer.stop()
    await asyncio.sleep(1.0)  # let it fetch the record and start waiting for its due time
    first.kill()
    assert await read_topic(settings.kafka, settings.topics.facade_topic("users-pos")) == []

    second = spawn(settings)
    records = await wait_for_count(
        settings, settings.topics.facade_topic("users-pos"), 3, timeout_s=60
    )
    second.terminate()
    assert {r.key for r in records} == expected_keys([package])
    assert min(r.timestamp for r in records) >= due_ms


async def test_rebalance_join_and_leave(settings: Settings, spawn: Any) -> None:
    await create_topics(settings)
    packages = packages_of(120, "B")
    keys = expected_keys(packages)
    facade = settings.topics.facade_topic("users-pos")

    first = spawn(settings)
    await first.wait_assigned()
    publishing = asyncio.create_task(publish_all(settings, packages, pause_s=0.08))
    await asyncio.sleep(2)
    second = spawn(settings)
    await wait_for(lambda: _logged(second, "partitions assigned"), 30, "second member joined")
    await asyncio.sleep(2)
    code, seconds = first.terminate()
    await publishing
    records = await wait_for_keys(settings, facade, keys, timeout_s=90)
    second.terminate()

    assert code == 0
    assert seconds < settings.shutdown_timeout_ms / 1000 + 10
    assert_consistent(await read_topic(settings.kafka, facade), keys)
    assert "partitions revoked" in second.log_text() or "partitions revoked" in first.log_text()
    assert len(records) >= len(keys)


async def _logged(child: ProcessorProcess, text: str) -> bool:
    return text in child.log_text()


async def test_sigterm_commits_only_delivered_work(settings: Settings, spawn: Any) -> None:
    await create_topics(settings)
    packages = packages_of(150, "S")
    sent = await publish_all(settings, packages)
    facade = settings.topics.facade_topic("users-pos")

    child = spawn(settings)
    await wait_for_count(settings, facade, 1_000, timeout_s=60)
    code, seconds = child.terminate()
    assert code == 0
    assert seconds < settings.shutdown_timeout_ms / 1000 + 10
    assert "processor stopped" in child.log_text()

    consumer = create_consumer(settings.kafka)
    await consumer.start()
    try:
        committed = {}
        for meta in sent:
            tp = TopicPartition(meta.topic, meta.partition)
            if tp not in committed:
                committed[tp] = await consumer.committed(tp) or 0
    finally:
        await consumer.stop()
    present = {r.key for r in await read_topic(settings.kafka, facade)}
    for meta, package in zip(sent, packages, strict=True):
        if meta.offset < committed[TopicPartition(meta.topic, meta.partition)]:
            assert expected_keys([package]) <= present, "committed past an undelivered package"
