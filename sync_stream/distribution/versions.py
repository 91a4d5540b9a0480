"""Keep retried and replayed outputs from overwriting newer data on a facade.

The index reads every facade topic from the beginning and keeps, per key, the highest
source version seen (the `mxp-source-version` header: build number, or updatedAt in epoch
milliseconds). A tombstone keeps its version too, so an older update cannot bring a removed
user back. It starts on the first retried record, so a processor that never retries never
reads the facades.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from functools import partial
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

from sync_stream.distribution import headers as h
from sync_stream.errors import DistributionFailed
from sync_stream.kafka.clients import create_consumer
from sync_stream.observability.metrics import Metrics
from sync_stream.runtime.pipeline import Outgoing
from sync_stream.settings import Settings

log = structlog.get_logger(__name__)

CATCH_UP_TIMEOUT_S = 60.0
FETCH_MAX_WAIT_MS = 20


def record_version(headers: Any) -> int | None:
    text = h.header_text(headers, h.SOURCE_VERSION)
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return None


class FacadeVersions:
    """Highest source version per key of every facade topic; implements StaleFilter."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self._settings = settings
        self._metrics = metrics
        self._topics = {settings.topics.facade_topic(f): f for f in settings.facades}
        self._versions: dict[str, dict[bytes, int]] = {topic: {} for topic in self._topics}
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._start_lock = asyncio.Lock()
        self._rounds = 0
        self._round_done = asyncio.Condition()

    def version_of(self, topic: str, key: bytes) -> int | None:
        return self._versions.get(topic, {}).get(key)

    async def fresh(self, outgoing: Sequence[Outgoing]) -> list[Outgoing]:
        """Return the outputs not older than what their facade holds; count the others."""
        await self._ensure_started()
        await self.caught_up()
        kept = []
        for out in outgoing:
            held = self._versions[out.topic].get(out.key)
            if held is not None and out.version < held:
                self._metrics.stale_dropped.labels(out.facade).inc()
                log.info(
                    "stale output dropped",
                    facade=out.facade,
                    held_version=held,
                    output_version=out.version,
                )
                continue
            kept.append(out)
        return kept

    async def _ensure_started(self) -> None:
        async with self._start_lock:
            if self._task is not None:
                return
            # A short fetch wait keeps each catch-up check to a few fetch rounds.
            consumer = create_consumer(
                self._settings.kafka,
                group_id=None,
                isolation_level="read_uncommitted",
                fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
            )
            await consumer.start()
            partitions = []
            for topic in self._topics:
                await consumer.topics()
                for partition in sorted(consumer.partitions_for_topic(topic) or ()):
                    partitions.append(TopicPartition(topic, partition))
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            self._consumer = consumer
            self._task = asyncio.create_task(self._follow(consumer), name="facade-versions")
            log.info("facade version index started", partitions=len(partitions))

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=FETCH_MAX_WAIT_MS, max_records=5000)
            for tp, records in batches.items():
                versions = self._versions[tp.topic]
                for record in records:
                    version = record_version(record.headers)
                    if version is None or record.key is None:
                        continue
                    held = versions.get(record.key)
                    if held is None or version > held:
                        versions[record.key] = version
            async with self._round_done:
                self._rounds += 1
                self._round_done.notify_all()

    async def caught_up(self, timeout_s: float = CATCH_UP_TIMEOUT_S) -> None:
        """Wait until a fetch that began after this call has reached every high watermark."""
        consumer = self._consumer
        assert consumer is not None
        deadline = time.monotonic() + timeout_s
        start_round = self._rounds
        while True:
            try:
                async with self._round_done:
                    await asyncio.wait_for(
                        self._round_done.wait_for(partial(self._rounds_after, start_round + 1)),
                        max(0.1, deadline - time.monotonic()),
                    )
            except TimeoutError:
                pass
            if await self._at_end(consumer):
                return
            if time.monotonic() > deadline:
                raise DistributionFailed(
                    f"facade version index did not catch up within {timeout_s:.0f} s",
                    retriable=True,
                    reason="version_index_behind",
                )
            start_round = self._rounds

    def _rounds_after(self, count: int) -> bool:
        return self._rounds > count

    @staticmethod
    async def _at_end(consumer: AIOKafkaConsumer) -> bool:
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is None or await consumer.position(tp) < highwater:
                return False
        return True

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
