"""Handle one partition's batch: run the pipeline, distribute, retry, dead-letter.

A batch is done when every record in it has an acknowledged outcome: its outputs on the
facades, its bytes in a retry tier, or its bytes in the DLQ. Only then may the caller
commit past it.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Any, Protocol

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, KafkaTimeoutError

from sync_stream.distribution import headers as h
from sync_stream.distribution.batching import BatchedSender
from sync_stream.dlq.failure import SourceRecord, failure_headers, parse_utc_iso
from sync_stream.dlq.writer import FailureWriter
from sync_stream.errors import DistributionFailed, SyncStreamError
from sync_stream.observability.metrics import Metrics
from sync_stream.runtime.pipeline import Outgoing, Pipeline, Processed, safe_sync_id
from sync_stream.settings import Settings

log = structlog.get_logger(__name__)

# Estimated bytes aiokafka adds to a record beyond key, value and headers (batch and record
# framing), rounded up. The size check uses it to reject a package before producing any output.
RECORD_OVERHEAD_BYTES = 512


class Outcome(StrEnum):
    DISTRIBUTED = "distributed"
    RETRYING = "retrying"
    DEAD_LETTERED = "dead_lettered"


class PackageObserver(Protocol):
    """Told of every finished input record before its offset may be committed.

    For each group of records handled together, the handler calls `batch_started` with
    them, then `package_finished` for each in order, then `batch_finished`. Only after
    `batch_finished` returns are their offsets marked done, so an observer may queue its
    writes and wait for their acknowledgements once per group. Partition workers run
    concurrently, so an observer keeps the state of each group under its `batch_id`.
    """

    async def batch_started(self, batch_id: int, processed: Sequence[Processed]) -> None: ...

    async def package_finished(self, processed: Processed, outcome: Outcome) -> None: ...

    async def batch_finished(self, batch_id: int) -> None: ...


class StaleFilter(Protocol):
    """Drop outputs older than what their facade already holds."""

    async def fresh(self, outgoing: Sequence[Outgoing]) -> list[Outgoing]: ...


Sent = tuple[Processed, list[asyncio.Future[Any]] | SyncStreamError]


def to_source_record(record: Any) -> SourceRecord:
    """Copy what the service needs from an aiokafka ConsumerRecord."""
    return SourceRecord(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        timestamp=record.timestamp,
        key=record.key,
        value=record.value,
        headers=tuple(record.headers or ()),
    )


def as_distribution_error(exc: BaseException) -> DistributionFailed:
    """Wrap a produce failure; retriable unless the broker or client says it never can work.

    aiokafka marks KafkaTimeoutError (a batch not acknowledged within the request timeout)
    as not retriable, but for distribution it is the typical transient failure.
    """
    if isinstance(exc, DistributionFailed):
        return exc
    if isinstance(exc, KafkaTimeoutError | OSError | TimeoutError):
        retriable = True
    elif isinstance(exc, KafkaError):
        retriable = bool(exc.retriable)
    else:
        retriable = False
    return DistributionFailed(
        f"{type(exc).__name__}: {exc}", retriable=retriable, reason=type(exc).__name__
    )


MarkDone = Callable[[int], None]


class BatchHandler:
    """Turn fetched records into acknowledged outcomes; shared by every partition worker."""

    def __init__(
        self,
        settings: Settings,
        producer: AIOKafkaProducer,
        pipeline: Pipeline,
        metrics: Metrics,
        *,
        failure_producer: AIOKafkaProducer | None = None,
        observers: Sequence[PackageObserver] = (),
        stale_filter: StaleFilter | None = None,
    ) -> None:
        self._settings = settings
        self._producer = producer
        self._pipeline = pipeline
        self._metrics = metrics
        self._failures = FailureWriter(failure_producer or producer, metrics)
        self._batches = BatchedSender(producer)
        self._batch_ids = itertools.count()
        self._observers = list(observers)
        self._stale_filter = stale_filter
        self._max_record_bytes = settings.kafka.producer_max_request_bytes
        self._topic_sources = {
            settings.topics.source_topic(source): source for source in settings.topics.sources
        }
        self._retry_topics = {
            settings.topics.retry_topic(tier): tier
            for tier in range(1, len(settings.retry.tier_delays_ms) + 1)
        }

    def _source_of(self, record: SourceRecord) -> str | None:
        """Name the source module of a record's original input topic."""
        topic = h.header_text(record.headers, h.ORIGINAL_TOPIC) or record.topic
        return self._topic_sources.get(topic)

    def add_observer(self, observer: PackageObserver) -> None:
        self._observers.append(observer)

    def tier_of(self, topic: str) -> int:
        """Return the retry tier a topic belongs to, 0 for an input topic."""
        return self._retry_topics.get(topic, 0)

    async def handle_batch(self, records: Sequence[Any], mark_done: MarkDone) -> None:
        """Handle records of one partition in order, calling mark_done(offset + 1) after each."""
        sources = [to_source_record(record) for record in records]
        self._metrics.records_consumed.labels(sources[0].topic).inc(len(sources))
        tier = self.tier_of(sources[0].topic)
        if not tier:
            processed = [self._pipeline.process(source) for source in sources]
            await self._finish(await self._first_attempt(processed), mark_done)
            return

        # Records of a tier fall due in order (one delay, appended in failure order): wait for
        # the first, then handle it with every later record that is due by then.
        start = 0
        while start < len(sources):
            await self._wait_until_due(sources[start], tier)
            now_ms = time.time() * 1000
            end = start + 1
            while end < len(sources) and _due_ms(sources[end]) <= now_ms:
                end += 1
            for source in sources[start + 1 : end]:
                self._observe_overshoot(source, tier, now_ms)
            processed = [self._pipeline.process(source) for source in sources[start:end]]
            await self._finish(await self._first_attempt(processed), mark_done)
            start = end

    async def _wait_until_due(self, source: SourceRecord, tier: int) -> None:
        delay_s = (_due_ms(source) - time.time() * 1000) / 1000
        if delay_s > 0:
            await asyncio.sleep(delay_s)
        self._observe_overshoot(source, tier, time.time() * 1000)

    def _observe_overshoot(self, source: SourceRecord, tier: int, now_ms: float) -> None:
        due_ms = _due_ms(source)
        if due_ms > 0:
            self._metrics.retry_overshoot_seconds.labels(str(tier)).observe(
                max(0.0, (now_ms - due_ms) / 1000)
            )

    async def _first_attempt(self, processed: list[Processed]) -> list[Sent]:
        """Queue every record's outputs in shared batches, so one fetch costs one round trip."""
        stale_errors = await self._drop_stale(processed)
        outcome: dict[int, list[asyncio.Future[Any]] | SyncStreamError] = {}
        to_send: list[Processed] = []
        for item in processed:
            error = item.error or stale_errors.get(id(item)) or self._oversized(item.outgoing)
            if error is not None:
                outcome[id(item)] = error
            else:
                to_send.append(item)

        queued = await self._batches.send([item.outgoing for item in to_send])
        for item, futures in zip(to_send, queued, strict=True):
            outcome[id(item)] = (
                as_distribution_error(futures) if isinstance(futures, BaseException) else futures
            )
        return [(item, outcome[id(item)]) for item in processed]

    async def _drop_stale(self, processed: list[Processed]) -> dict[int, DistributionFailed]:
        """Filter the outputs of retried records in one version check for the whole batch."""
        retried = [p for p in processed if p.error is None and p.record.attempt > 0 and p.outgoing]
        if self._stale_filter is None or not retried:
            return {}
        combined = [out for item in retried for out in item.outgoing]
        try:
            kept = {id(out) for out in await self._stale_filter.fresh(combined)}
        except Exception as exc:
            error = as_distribution_error(exc)
            return {id(item): error for item in retried}
        for item in retried:
            item.outgoing = [out for out in item.outgoing if id(out) in kept]
        return {}

    def _oversized(self, outgoing: Sequence[Outgoing]) -> DistributionFailed | None:
        """Fail a package before producing anything when one output cannot fit a request."""
        for out in outgoing:
            size = (
                len(out.key)
                + len(out.value or b"")
                + sum(len(name) + len(value) for name, value in out.headers)
            )
            if size + RECORD_OVERHEAD_BYTES > self._max_record_bytes:
                return DistributionFailed(
                    f"output for {out.topic} is about {size} bytes, over the producer limit of "
                    f"{self._max_record_bytes} bytes (SYNC_KAFKA__PRODUCER_MAX_REQUEST_BYTES)",
                    retriable=False,
                    reason="record_too_large",
                )
        return None

    async def _send_all(self, outgoing: Sequence[Outgoing]) -> list[asyncio.Future[Any]]:
        send = self._producer.send
        return [
            await send(out.topic, out.value, key=out.key, headers=out.headers) for out in outgoing
        ]

    async def _finish(self, sent: list[Sent], mark_done: MarkDone) -> None:
        observers = self._observers
        batch_id = next(self._batch_ids)
        for observer in observers:
            await observer.batch_started(batch_id, [item for item, _ in sent])
        for item, futures in sent:
            if isinstance(futures, DistributionFailed):
                outcome = await self._retry_in_process(item, futures)
            elif isinstance(futures, SyncStreamError):
                outcome = await self._fail(item, futures, attempts_made=1)
            else:
                outcome = await self._await_delivery(item, futures)
            for observer in observers:
                await observer.package_finished(item, outcome)
        for observer in observers:
            await observer.batch_finished(batch_id)
        for item, _ in sent:
            mark_done(item.record.offset + 1)

    async def _await_delivery(self, item: Processed, futures: list[asyncio.Future[Any]]) -> Outcome:
        error: BaseException | None = None
        for future in futures:
            try:
                await future
            except Exception as exc:
                error = exc
        if error is None:
            self._delivered(item)
            return Outcome.DISTRIBUTED
        return await self._retry_in_process(item, as_distribution_error(error))

    def _delivered(self, item: Processed) -> None:
        metrics = self._metrics
        per_topic: dict[str, int] = {}
        for out in item.outgoing:
            per_topic[out.topic] = per_topic.get(out.topic, 0) + 1
        for topic, count in per_topic.items():
            metrics.records_produced.labels(topic).inc(count)
        source = item.source or "unknown"
        metrics.packages_distributed.labels(source).inc()
        if item.routed and item.routed.build_metadata_ok:
            metrics.build_metadata_ok.inc()
            log.info(
                "build_metadata_ok",
                sync_id=item.sync_id,
                source=source,
                topic=item.record.topic,
                partition=item.record.partition,
                offset=item.record.offset,
            )
        metrics.end_to_end_seconds.labels(source).observe(
            max(0.0, time.time() - item.record.timestamp / 1000)
        )

    def _backoff_s(self, attempt: int) -> float:
        retry = self._settings.retry
        delay = min(
            retry.backoff_max_ms,
            retry.backoff_initial_ms * retry.backoff_multiplier ** (attempt - 1),
        )
        jitter = delay * retry.backoff_jitter
        return float(max(0.0, delay + random.uniform(-jitter, jitter))) / 1000

    async def _retry_in_process(self, item: Processed, error: DistributionFailed) -> Outcome:
        """Re-send a package's outputs with backoff, holding only this partition."""
        attempts = self._settings.retry.attempts
        attempt = 1
        while error.retriable and attempt < attempts:
            self._metrics.distribution_attempt_failures.labels("true").inc()
            delay = self._backoff_s(attempt)
            log.warning(
                "distribution failed, retrying",
                sync_id=item.sync_id,
                source=item.source,
                topic=item.record.topic,
                partition=item.record.partition,
                offset=item.record.offset,
                attempt=attempt,
                delay_s=round(delay, 3),
                error=error.message,
            )
            await asyncio.sleep(delay)
            attempt += 1
            try:
                if self._stale_filter is not None and item.record.attempt > 0:
                    item.outgoing = await self._stale_filter.fresh(item.outgoing)
                futures = await self._send_all(item.outgoing)
            except Exception as exc:
                error = as_distribution_error(exc)
                continue
            results = await asyncio.gather(*futures, return_exceptions=True)
            failures = [r for r in results if isinstance(r, BaseException)]
            if failures:
                error = as_distribution_error(failures[-1])
                continue
            self._delivered(item)
            log.info(
                "distribution succeeded after retry",
                sync_id=item.sync_id,
                topic=item.record.topic,
                partition=item.record.partition,
                offset=item.record.offset,
                attempt=attempt,
            )
            return Outcome.DISTRIBUTED
        self._metrics.distribution_attempt_failures.labels(str(error.retriable).lower()).inc()
        return await self._fail(item, error, attempts_made=attempt)

    async def _fail(self, item: Processed, error: SyncStreamError, attempts_made: int) -> Outcome:
        """Send a failed record to the next retry tier, or to the DLQ when it cannot retry."""
        record = item.record
        tiers = self._settings.retry.tier_delays_ms
        next_tier = (self.tier_of(record.topic) or record.retry_tier) + 1
        now_ms = int(time.time() * 1000)
        sync_id = item.sync_id or safe_sync_id(_peek_sync_id(item))
        source = item.source or self._source_of(record)
        ids = {
            "sync_id": sync_id,
            "source": source,
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
        }

        if error.retriable and next_tier <= len(tiers):
            due_ms = now_ms + tiers[next_tier - 1]
            topic = self._settings.topics.retry_topic(next_tier)
            headers = failure_headers(
                record, error, now_ms=now_ms, retry_tier=next_tier, retry_due_ms=due_ms
            )
            await self._failures.write(topic, record, headers)
            self._metrics.retries.labels(str(next_tier)).inc()
            log.warning(
                "package sent to retry tier",
                tier=next_tier,
                stage=error.stage,
                reason=error.reason,
                attempts=attempts_made,
                **ids,
            )
            return Outcome.RETRYING

        headers = failure_headers(record, error, now_ms=now_ms, sync_id=sync_id, source=source)
        await self._failures.write(self._settings.topics.dlq_topic, record, headers)
        self._metrics.dead_letters.labels(error.stage or "unknown").inc()
        if error.stage in ("T080", "T121"):
            log.error(
                "package rolled back: transformer failed",
                transformer=error.stage,
                reason=error.reason,
                error=error.message,
                **ids,
            )
        elif error.stage in ("decode", "f008"):
            log.warning("package rejected", reason=error.reason, error=error.message, **ids)
        else:
            log.error(
                "package dead-lettered",
                stage=error.stage,
                reason=error.reason,
                attempts=attempts_made,
                error=error.message,
                **ids,
            )
        return Outcome.DEAD_LETTERED


def _due_ms(source: SourceRecord) -> float:
    """Return a tier record's due time in epoch ms; 0 when absent or unreadable (due now)."""
    due = h.header_text(source.headers, h.RETRY_DUE_AT)
    if due is None:
        return 0.0
    try:
        return float(parse_utc_iso(due))
    except ValueError:
        return 0.0


def _consume_result(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _peek_sync_id(item: Processed) -> Any:
    """Best-effort syncId of a rejected record from its syncId header (set by retries)."""
    return h.header_text(item.record.headers, h.SYNC_ID)
