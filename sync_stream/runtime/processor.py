"""The processor: one consumer group member that runs the pipeline on its partitions.

Each assigned partition has a worker task that handles its batches in order, so order is
kept per partition while partitions proceed concurrently. A partition whose worker falls
behind is paused instead of buffering without bound. Offsets are committed only up to the
end of the last batch whose every outcome the broker acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import OffsetAndMetadata
from prometheus_client import Gauge

from sync_stream.distribution.versions import FacadeVersions
from sync_stream.errors import SettingsError, SyncStreamError
from sync_stream.kafka.clients import check_connection, create_consumer, create_producer
from sync_stream.observability.metrics import Metrics
from sync_stream.runtime.handler import BatchHandler, PackageObserver, StaleFilter
from sync_stream.runtime.pipeline import Pipeline
from sync_stream.settings import Settings

log = structlog.get_logger(__name__)

_STOP = None


@dataclass(eq=False)
class PartitionWorker:
    """Handles one partition's batches in order and tracks the next offset to commit."""

    tp: TopicPartition
    handler: BatchHandler
    in_flight: Gauge
    queue: asyncio.Queue[list[Any] | None] = field(default_factory=asyncio.Queue)
    done_offset: int | None = None  # next offset to commit: last handled offset + 1
    committed_offset: int | None = None
    task: asyncio.Task[None] | None = None
    pending_records: int = 0

    def start(self) -> None:
        self.task = asyncio.create_task(
            self._run(), name=f"partition-{self.tp.topic}-{self.tp.partition}"
        )

    async def _run(self) -> None:
        while True:
            batch = await self.queue.get()
            if batch is _STOP:
                return
            await self.handler.handle_batch(batch, self._mark_done)

    def enqueue(self, records: list[Any]) -> None:
        self.queue.put_nowait(records)
        self.pending_records += len(records)
        self.in_flight.inc(len(records))

    def _mark_done(self, next_offset: int) -> None:
        self.done_offset = next_offset
        self.pending_records -= 1
        self.in_flight.dec()

    def release(self) -> None:
        """Stop counting the records this worker will not handle (revoked or stopped)."""
        self.in_flight.dec(self.pending_records)
        self.pending_records = 0

    @property
    def pending_batches(self) -> int:
        return self.queue.qsize()

    async def drain(self, timeout_s: float) -> bool:
        """Finish queued batches, then stop. Return False if it was cut short at the timeout.

        A retry-tier partition is not waited for: its records may be minutes from due, and
        whatever is not committed is fetched again by the partition's next owner.
        """
        if self.task is None or self.task.done():
            return True
        if self.handler.tier_of(self.tp.topic):
            timeout_s = 0.0
        self.queue.put_nowait(_STOP)
        try:
            if timeout_s > 0:
                await asyncio.wait_for(asyncio.shield(self.task), timeout_s)
                return True
        except TimeoutError:
            pass
        if not self.task.done():
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
            return False
        return True


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, processor: Processor) -> None:
        self._processor = processor

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self._processor._on_revoked(list(revoked))

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self._processor._on_assigned(list(assigned))


class Processor:
    """Consume input and retry topics, run the pipeline, distribute, commit.

    Use `async with Processor(settings, metrics):` or call start/stop; `run()` loops until
    `stop()` is called (the CLI calls it on SIGTERM or SIGINT).
    """

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics | None = None,
        *,
        observers: Sequence[PackageObserver] = (),
        stale_filter: StaleFilter | None = None,
        producer: AIOKafkaProducer | None = None,
    ) -> None:
        if settings.processing_guarantee == "exactly_once":
            raise SettingsError(
                "SYNC_PROCESSING_GUARANTEE: exactly_once is not available yet; "
                "use at_least_once (outputs are deterministic, so duplicates are harmless)"
            )
        self._settings = settings
        self.metrics = metrics or Metrics()
        self._observers = observers
        self._own_versions = stale_filter is None
        self._stale_filter: StaleFilter = stale_filter or FacadeVersions(settings, self.metrics)
        self._failure_producer: AIOKafkaProducer | None = None
        self._own_producer = producer is None
        self._producer = producer
        self._consumer: AIOKafkaConsumer | None = None
        self._handler: BatchHandler | None = None
        self._workers: dict[TopicPartition, PartitionWorker] = {}
        self._stopping = asyncio.Event()
        self._revoking: set[TopicPartition] = set()
        self._started = False
        self._run_task: asyncio.Task[None] | None = None
        self.last_loop_at = 0.0
        self.topics = (
            *settings.topics.input_topics,
            *(
                settings.topics.retry_topic(t)
                for t in range(1, len(settings.retry.tier_delays_ms) + 1)
            ),
        )

    @property
    def handler(self) -> BatchHandler:
        assert self._handler is not None, "processor not started"
        return self._handler

    @property
    def assignment(self) -> set[TopicPartition]:
        return set(self._consumer.assignment()) if self._consumer else set()

    def committed_offsets(self) -> dict[TopicPartition, int]:
        """Return the offsets this member committed, per partition it owns or owned."""
        return {
            tp: w.committed_offset
            for tp, w in self._workers.items()
            if w.committed_offset is not None
        }

    async def start(self) -> None:
        if self._started:
            raise SyncStreamError("processor already started")
        self._started = True
        settings = self._settings
        await check_connection(settings.kafka)
        if self._producer is None:
            self._producer = create_producer(settings.kafka)
            await self._producer.start()
        # Retry and DLQ copies carry a whole input package plus headers, so they get a
        # request limit of their own, large enough for any package the gate accepts.
        self._failure_producer = create_producer(
            settings.kafka, max_request_size=settings.failure_request_bytes
        )
        await self._failure_producer.start()
        pipeline = Pipeline(settings, self.metrics)
        self._handler = BatchHandler(
            settings,
            self._producer,
            pipeline,
            self.metrics,
            failure_producer=self._failure_producer,
            observers=self._observers,
            stale_filter=self._stale_filter,
        )
        self._consumer = create_consumer(
            settings.kafka, max_poll_records=settings.kafka.fetch_max_records
        )
        self._consumer.subscribe(list(self.topics), listener=_Rebalance(self))
        await self._consumer.start()
        log.info("processor started", group_id=settings.kafka.group_id, topics=list(self.topics))

    async def run(self) -> None:
        """Fetch, dispatch to partition workers and commit until stop() is called."""
        consumer = self._consumer
        assert consumer is not None, "call start() first"
        interval_s = self._settings.commit_interval_ms / 1000
        next_commit = time.monotonic() + interval_s
        queue_limit = self._settings.partition_queue_batches
        try:
            while not self._stopping.is_set():
                batches = await consumer.getmany(timeout_ms=100)
                for tp, records in batches.items():
                    if tp in self._revoking:
                        # Not committed, so the partition's next owner fetches them again.
                        continue
                    worker = self._workers.get(tp)
                    if worker is None or worker.task is None or worker.task.done():
                        worker = self._worker_for(tp)
                    worker.enqueue(records)
                    if worker.pending_batches >= queue_limit:
                        consumer.pause(tp)
                self._check_workers()
                self._resume_drained(consumer, queue_limit)
                self.last_loop_at = time.time()
                self.metrics.loop_heartbeat.set(self.last_loop_at)
                if time.monotonic() >= next_commit:
                    await self._commit(self._workers.values())
                    self._update_lag(consumer)
                    next_commit = time.monotonic() + interval_s
        finally:
            await self._drain_all()

    def _worker_for(self, tp: TopicPartition) -> PartitionWorker:
        previous = self._workers.get(tp)
        worker = PartitionWorker(tp, self.handler, self.metrics.in_flight_packages)
        if previous is not None:
            previous.release()
            worker.committed_offset = previous.committed_offset
        self._workers[tp] = worker
        worker.start()
        return worker

    def _check_workers(self) -> None:
        """Fail the processor when a worker died: its partition must not be committed past."""
        for worker in self._workers.values():
            task = worker.task
            if task is not None and task.done() and not task.cancelled() and task.exception():
                raise SyncStreamError(
                    f"partition worker {worker.tp.topic}[{worker.tp.partition}] failed: "
                    f"{task.exception()!r}"
                ) from task.exception()

    def _resume_drained(self, consumer: AIOKafkaConsumer, queue_limit: int) -> None:
        paused = consumer.paused()
        if not paused:
            return
        assigned = consumer.assignment()
        for tp in paused:
            worker = self._workers.get(tp)
            if tp in assigned and (worker is None or worker.pending_batches < queue_limit):
                consumer.resume(tp)

    def _update_lag(self, consumer: AIOKafkaConsumer) -> None:
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            worker = self._workers.get(tp)
            committed = worker.committed_offset if worker else None
            if highwater is not None and committed is not None:
                self.metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(
                    max(0, highwater - committed)
                )

    async def _commit(self, workers: Any) -> None:
        consumer = self._consumer
        assert consumer is not None
        offsets = {
            w.tp: OffsetAndMetadata(w.done_offset, "")
            for w in workers
            if w.done_offset is not None and w.done_offset != w.committed_offset
        }
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except CommitFailedError:
            # The group rebalanced under us: those partitions now belong to another member,
            # which resumes from the last committed offset. Do not retry the same commit.
            self.metrics.commit_failures.inc()
            log.warning(
                "commit rejected after a rebalance; another member takes over",
                partitions=len(offsets),
            )
            return
        except KafkaError as exc:
            self.metrics.commit_failures.inc()
            log.warning(
                "commit failed, will retry", error=type(exc).__name__, partitions=len(offsets)
            )
            return
        for tp, meta in offsets.items():
            self._workers[tp].committed_offset = meta.offset

    def _on_assigned(self, assigned: list[TopicPartition]) -> None:
        self.metrics.rebalances.labels("assigned").inc()
        self.metrics.assigned_partitions.set(
            len(self._consumer.assignment()) if self._consumer else 0
        )
        log.info(
            "partitions assigned",
            count=len(assigned),
            partitions=[f"{tp.topic}[{tp.partition}]" for tp in sorted(assigned)],
        )

    async def _on_revoked(self, revoked: list[TopicPartition]) -> None:
        """Finish in-flight work of revoked partitions and commit it before they move."""
        self.metrics.rebalances.labels("revoked").inc()
        self._revoking.update(revoked)
        workers = [self._workers[tp] for tp in revoked if tp in self._workers]
        timeout_s = self._settings.shutdown_timeout_ms / 1000
        try:
            results = await asyncio.gather(*(w.drain(timeout_s) for w in workers))
            await self._commit(workers)
        finally:
            self._revoking.difference_update(revoked)
        for worker, finished in zip(workers, results, strict=True):
            if not finished:
                log.warning(
                    "in-flight work abandoned on revocation; the next owner redoes it",
                    topic=worker.tp.topic,
                    partition=worker.tp.partition,
                )
            worker.release()
            self._workers.pop(worker.tp, None)
        for tp in revoked:
            # A partition now owned by another member must not keep reporting our last lag.
            with contextlib.suppress(KeyError):
                self.metrics.consumer_lag.remove(tp.topic, str(tp.partition))
        log.info(
            "partitions revoked",
            count=len(revoked),
            partitions=[f"{tp.topic}[{tp.partition}]" for tp in sorted(revoked)],
        )

    async def _drain_all(self) -> None:
        workers = list(self._workers.values())
        timeout_s = self._settings.shutdown_timeout_ms / 1000
        await asyncio.gather(*(w.drain(timeout_s) for w in workers))
        for worker in workers:
            worker.release()
        if self._consumer is not None:
            with contextlib.suppress(KafkaError):
                await self._commit(workers)

    def request_stop(self) -> None:
        """Ask run() to finish in-flight work, commit and return. Safe from a signal handler."""
        self._stopping.set()

    async def stop(self) -> None:
        """Stop fetching, drain, commit, leave the group and close the clients."""
        self.request_stop()
        if self._run_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._run_task
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
        if self._producer is not None and self._own_producer:
            await self._producer.stop()
        if self._failure_producer is not None:
            await self._failure_producer.stop()
            self._failure_producer = None
        if self._own_versions and isinstance(self._stale_filter, FacadeVersions):
            await self._stale_filter.stop()
        log.info("processor stopped")

    async def __aenter__(self) -> Processor:
        await self.start()
        self._run_task = asyncio.create_task(self.run(), name="processor-run")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def run_task(self) -> asyncio.Task[None] | None:
        return self._run_task
