"""Read a whole topic once, from the beginning to the high watermark seen while reading."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

from aiokafka import TopicPartition

from sync_stream.errors import SyncStreamError
from sync_stream.kafka.clients import create_consumer
from sync_stream.settings import KafkaSettings


async def read_topic(kafka: KafkaSettings, topic: str, timeout_s: float = 30.0) -> list[Any]:
    """Return every record of a topic, ordered by partition then offset.

    NOTE: the end is the fetch high watermark, not ListOffsets, because the embedded broker
    returns wrong end offsets after multi-record batches.
    """
    consumer = create_consumer(
        kafka, group_id=None, enable_auto_commit=False, isolation_level="read_uncommitted"
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        deadline = time.monotonic() + timeout_s
        while partitions is None:
            if time.monotonic() > deadline:
                raise SyncStreamError(f"topic {topic} not found")
            await consumer.topics()  # refreshes the cluster metadata
            partitions = consumer.partitions_for_topic(topic)
            await asyncio.sleep(0.1)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        records: dict[TopicPartition, list[Any]] = {tp: [] for tp in tps}
        while True:
            batch = await consumer.getmany(*tps, timeout_ms=200)
            for tp, items in batch.items():
                records[tp].extend(items)
            if await at_end(consumer, tps):
                break
            if time.monotonic() > deadline:
                raise SyncStreamError(f"reading {topic} timed out after {timeout_s} s")
        return [record for tp in tps for record in records[tp]]
    finally:
        await consumer.stop()


async def at_end(consumer: Any, tps: Iterable[TopicPartition]) -> bool:
    """Return True once every partition's position has reached its fetch high watermark."""
    for tp in tps:
        highwater = consumer.highwater(tp)
        if highwater is None or await consumer.position(tp) < highwater:
            return False
    return True
