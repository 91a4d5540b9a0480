"""Produce records and wait for their acknowledgement, retrying transient failures."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from sync_stream.observability.metrics import Metrics

log = structlog.get_logger(__name__)

BACKOFF_INITIAL_S = 0.2
BACKOFF_MAX_S = 30.0


@dataclass(frozen=True, slots=True)
class RecordToSend:
    topic: str
    key: bytes
    value: bytes | None
    headers: list[tuple[str, bytes]]


async def send_acknowledged(
    producer: AIOKafkaProducer,
    records: Sequence[RecordToSend],
    metrics: Metrics,
    **ids: Any,
) -> None:
    """Send every record and wait for all acknowledgements; retry until they succeed.

    Package observers call this before the input offset may be committed, so giving up
    would lose the update. The partition waits instead, and a stop cancels the wait.
    """
    attempt = 0
    while True:
        try:
            futures = [
                await producer.send(r.topic, r.value, key=r.key, headers=r.headers) for r in records
            ]
            await asyncio.gather(*futures)
        except (KafkaError, OSError, TimeoutError) as exc:
            attempt += 1
            delay_s = min(BACKOFF_MAX_S, BACKOFF_INITIAL_S * 2 ** min(attempt, 8))
            log.warning(
                "records not acknowledged, retrying",
                error=type(exc).__name__,
                records=len(records),
                attempt=attempt,
                delay_s=delay_s,
                **ids,
            )
            await asyncio.sleep(delay_s)
            continue
        for record in records:
            metrics.records_produced.labels(record.topic).inc()
        return
