"""Write retry and DLQ records: the source record's untouched bytes plus failure headers."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError, RecordTooLargeError

from sync_stream.distribution import headers as h
from sync_stream.dlq.failure import SourceRecord
from sync_stream.observability.metrics import Metrics

log = structlog.get_logger(__name__)

WRITE_BACKOFF_MAX_S = 30.0
# A DLQ record needs a key or a value: a null-key, null-value input keeps an empty key.
EMPTY_KEY = b""


class FailureWriter:
    """Produce failure records and wait for their acknowledgement, retrying without end.

    Losing a failed record is not allowed, so a write that fails for a transient reason is
    retried with backoff while the partition waits. A record too large for the broker even
    in the DLQ is written without its value and with `mxp-value-omitted` and
    `mxp-value-sha256` headers, so the partition can move on and the loss is visible.
    """

    def __init__(self, producer: AIOKafkaProducer, metrics: Metrics) -> None:
        self._producer = producer
        self._metrics = metrics

    async def write(
        self, topic: str, record: SourceRecord, headers: Sequence[tuple[str, bytes]]
    ) -> None:
        key = record.key if record.key is not None or record.value is not None else EMPTY_KEY
        value = record.value
        attempt = 0
        while True:
            try:
                future = await self._producer.send(topic, value, key=key, headers=list(headers))
                await future
                self._metrics.records_produced.labels(topic).inc()
                return
            except (MessageSizeTooLargeError, RecordTooLargeError):
                if value is None:
                    raise
                log.error(
                    "failure record too large for the broker; value omitted",
                    target_topic=topic,
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    value_bytes=len(value),
                )
                headers = [
                    *headers,
                    (h.VALUE_OMITTED, str(len(value)).encode()),
                    (h.VALUE_SHA256, hashlib.sha256(value).hexdigest().encode()),
                ]
                value = None
                key = key if key is not None else EMPTY_KEY
            except Exception as exc:
                attempt += 1
                delay = min(WRITE_BACKOFF_MAX_S, 0.2 * 2 ** min(attempt, 8))
                log.error(
                    "failure record not written, retrying",
                    target_topic=topic,
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    error=type(exc).__name__,
                    attempt=attempt,
                    delay_s=delay,
                )
                await asyncio.sleep(delay)
