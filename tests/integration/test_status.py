"""Sync statuses on a real broker: failed chunks, redelivery, and a store rebuilt from the topic."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from sync_stream.codec.avro import codec_for
from sync_stream.kafka.reader import read_topic
from sync_stream.publish import publish_package
from sync_stream.service import Service
from sync_stream.settings import Settings
from sync_stream.status.store import SyncStatusStore
from tests.integration.conftest import load_example, wait_for

pytestmark = pytest.mark.integration


async def wait_for_state(store: SyncStatusStore, sync_id: str, state: str) -> dict[str, Any]:
    async def reached() -> bool:
        progress = store.get(sync_id)
        return progress is not None and progress.state == state

    await wait_for(reached, 30, f"sync {sync_id} to be {state}")
    progress = store.get(sync_id)
    assert progress is not None
    return progress.to_datum()


def chunk(index: int, count: int, sync_id: str, mode: str = "delta") -> dict[str, Any]:
    package = load_example("sync-users-ares.json")
    rows = package["processes"]["users_pos"]["records"][index * 10 : index * 10 + 10]
    return {
        **package,
        "syncId": sync_id,
        "chunkLoad": 10,
        "chunk": {"index": index, "count": count},
        "processes": {"users_pos": {"mode": mode, "records": rows}},
    }


async def test_transformer_failure_marks_chunk_failed(
    topics: Settings, producer: AIOKafkaProducer
) -> None:
    settings = topics
    sync_id = str(uuid.uuid4())
    bad = load_example("invalid/t121_failure.json") | {"syncId": sync_id}
    bad["chunk"] = {"index": 1, "count": 2}
    topic = settings.topics.source_topic("http")

    async with Service(settings, "processor").running() as service:
        store = service.statuses
        assert store is not None
        await publish_package(producer, topic, chunk(0, 2, sync_id))
        await publish_package(producer, topic, bad)
        status = await wait_for_state(store, sync_id, "failed")

    assert status["chunksExpected"] == 2
    assert status["doneChunks"] == [0]
    assert status["failedChunks"] == [1]
    assert status["chunksFailed"] == 1
    assert status["chunksDone"] == 1


async def test_redelivered_chunk_counts_once(topics: Settings, producer: AIOKafkaProducer) -> None:
    settings = topics
    sync_id = str(uuid.uuid4()).upper()
    topic = settings.topics.source_topic("http")
    async with Service(settings, "processor").running() as service:
        store = service.statuses
        assert store is not None
        for index in (0, 0, 1, 1):
            await publish_package(producer, topic, chunk(index, 3, sync_id, mode="full"))

        async def two_done() -> bool:
            progress = store.get(sync_id.lower())
            return progress is not None and progress.done == {0, 1}

        await wait_for(two_done, 30, "chunks 0 and 1 to be done")
        await publish_package(producer, topic, chunk(2, 3, sync_id, mode="full"))
        status = await wait_for_state(store, sync_id.lower(), "completed")

    assert status["chunksDone"] == 3
    assert status["doneChunks"] == [0, 1, 2]
    assert status["syncId"] == sync_id.lower()

    # A new store reads the same status back, with the full-mode processes header.
    async with SyncStatusStore(settings) as rebuilt:
        await rebuilt.wait_ready(30)
        progress = rebuilt.get(sync_id.lower())
    assert progress is not None
    assert progress.to_datum() == status
    assert progress.full_processes == {"users_pos"}

    records = await read_topic(settings.kafka, settings.topics.status_topic)
    decoded = [codec_for("SyncStatus").decode(r.value) for r in records]
    assert {r.key for r in records} == {sync_id.lower().encode()}
    assert [d["chunksDone"] for d in decoded] == sorted(d["chunksDone"] for d in decoded)
