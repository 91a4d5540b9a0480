"""Produce the outputs of many packages with one record batch per topic partition.

aiokafka's send() partitions, serializes and queues one record at a time. Building the
batches here cuts that cost for the first attempt of every fetched batch. Outputs keep
their order within a partition, because records are appended in order and aiokafka has
at most one batch in flight per partition.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer

from sync_stream.kafka.partitioner import murmur2
from sync_stream.runtime.pipeline import Outgoing


@dataclass(slots=True)
class _OpenBatch:
    topic: str
    partition: int
    builder: Any
    members: set[int] = field(default_factory=set)


class BatchedSender:
    """Queue groups of outputs (one group per package) in shared per-partition batches."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer

    async def send(
        self, groups: Sequence[Sequence[Outgoing]]
    ) -> list[list[asyncio.Future[Any]] | BaseException]:
        """Queue every group's outputs; return per group the futures of its batches, or the
        error that kept one of its batches from being queued."""
        futures: list[list[asyncio.Future[Any]] | BaseException] = [[] for _ in groups]
        partitions: dict[str, list[int]] = {}
        open_batches: dict[tuple[str, int], _OpenBatch] = {}

        for index, outgoing in enumerate(groups):
            for out in outgoing:
                ids = partitions.get(out.topic)
                if ids is None:
                    ids = partitions[out.topic] = sorted(
                        await self._producer.partitions_for(out.topic)
                    )
                partition = ids[(murmur2(out.key) & 0x7FFFFFFF) % len(ids)]
                batch = open_batches.get((out.topic, partition))
                if batch is None:
                    batch = open_batches[(out.topic, partition)] = self._open(out.topic, partition)
                if not self._append(batch, out):
                    # Full: queue it and start the next batch of this partition.
                    await self._queue(batch, futures)
                    batch = open_batches[(out.topic, partition)] = self._open(out.topic, partition)
                    self._append(batch, out)
                batch.members.add(index)

        for batch in open_batches.values():
            await self._queue(batch, futures)
        return futures

    def _open(self, topic: str, partition: int) -> _OpenBatch:
        return _OpenBatch(topic, partition, self._producer.create_batch())

    @staticmethod
    def _append(batch: _OpenBatch, out: Outgoing) -> bool:
        # An empty batch takes any record, so a record is never refused twice.
        metadata = batch.builder.append(
            timestamp=None, key=out.key, value=out.value, headers=out.headers
        )
        return metadata is not None

    async def _queue(
        self, batch: _OpenBatch, futures: list[list[asyncio.Future[Any]] | BaseException]
    ) -> None:
        try:
            future = await self._producer.send_batch(
                batch.builder, batch.topic, partition=batch.partition
            )
        except Exception as exc:
            for member in batch.members:
                futures[member] = exc
            return
        for member in batch.members:
            queued = futures[member]
            if isinstance(queued, list):
                queued.append(future)
