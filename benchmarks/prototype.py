"""What-if loops: the service's own Pipeline with batched distribution.

These measure what a change to the runtime's distribution would gain before anyone makes
it. They run `Pipeline.process` exactly as the processor does, then produce every output
of a fetch with `create_batch`/`send_batch`, one batch per topic partition, and count
produced records once per topic. They have no retry tiers and no DLQ: a failed package is
only counted, so they are an upper bound for throughput, not a replacement.

- `batched`: partitions from aiokafka's own murmur2, as `send()` picks them.
- `batched-fast-hash`: the same partitions from `murmur2` below, about 2.5x faster.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from sync_stream.observability.metrics import Metrics
from sync_stream.runtime.handler import to_source_record
from sync_stream.runtime.pipeline import Outgoing, Pipeline
from sync_stream.settings import Settings

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (as in the Java client's Utils.murmur2), unsigned 32-bit result.

    It reads the 4-byte blocks with one struct call and masks once per step, which makes it
    about 2.5 times faster than aiokafka 0.14's byte-by-byte version on 90-byte keys.
    """
    length = len(data)
    h = 0x9747B28C ^ length
    for k in struct.unpack_from(f"<{length >> 2}I", data):
        k = (k * _M) & _MASK
        k = ((k ^ (k >> 24)) * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = length & 3
    if tail:
        base = length & ~3
        if tail == 3:
            h ^= data[base + 2] << 16
        if tail >= 2:
            h ^= data[base + 1] << 8
        h = ((h ^ data[base]) * _M) & _MASK
    h = ((h ^ (h >> 13)) * _M) & _MASK
    return h ^ (h >> 15)


class BatchedDistribution:
    """Run the pipeline over one fetch and produce its outputs in per-partition batches."""

    def __init__(self, settings: Settings, fast_hash: bool) -> None:
        self._pipeline = Pipeline(settings, Metrics())
        self._hash: Callable[[bytes], int] = murmur2 if fast_hash else aiokafka_murmur2
        self._partitions: dict[str, int] = {}
        self.failed = 0

    async def _partition_count(self, producer: AIOKafkaProducer, topic: str) -> int:
        count = self._partitions.get(topic)
        if count is None:
            count = self._partitions[topic] = len(await producer.partitions_for(topic))
        return count

    async def handle(
        self, records: dict[TopicPartition, list[Any]], producer: AIOKafkaProducer
    ) -> tuple[int, int]:
        """Return (input records finished, output records produced)."""
        groups: dict[tuple[str, int], list[Outgoing]] = {}
        finished = 0
        for items in records.values():
            for record in items:
                finished += 1
                processed = self._pipeline.process(to_source_record(record))
                if processed.error is not None:
                    self.failed += 1
                    continue
                for out in processed.outgoing:
                    count = await self._partition_count(producer, out.topic)
                    partition = (self._hash(out.key) & 0x7FFFFFFF) % count
                    groups.setdefault((out.topic, partition), []).append(out)

        futures = []
        produced = 0
        for (topic, partition), outputs in groups.items():
            batch = producer.create_batch()
            for out in outputs:
                appended = batch.append(
                    key=out.key, value=out.value, timestamp=None, headers=out.headers
                )
                if appended is None:
                    futures.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = producer.create_batch()
                    batch.append(key=out.key, value=out.value, timestamp=None, headers=out.headers)
            futures.append(await producer.send_batch(batch, topic, partition=partition))
            produced += len(outputs)
        await asyncio.gather(*futures)
        return finished, produced
