"""From one input record to its output records or its failure; CPU only, no I/O."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import structlog

from sync_stream.distribution import headers as h
from sync_stream.dlq.failure import SourceRecord
from sync_stream.errors import SyncStreamError
from sync_stream.gate import AcceptedPackage, F008Gate
from sync_stream.observability.metrics import Metrics
from sync_stream.routing import RoutedPackage, Router
from sync_stream.settings import Settings

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One record ready to produce."""

    topic: str
    key: bytes
    value: bytes | None
    headers: list[tuple[str, bytes]]
    version: int
    facade: str


@dataclass(slots=True)
class Processed:
    """The result of the pipeline for one input record: outputs, or the error that stops it."""

    record: SourceRecord
    package: AcceptedPackage | None = None
    routed: RoutedPackage | None = None
    outgoing: list[Outgoing] = field(default_factory=list)
    error: SyncStreamError | None = None

    @property
    def sync_id(self) -> str | None:
        return self.package.sync_id if self.package else None

    @property
    def source(self) -> str | None:
        return self.package.source if self.package else None


class UnexpectedError(SyncStreamError):
    """An exception the pipeline did not expect, kept so the record can be dead-lettered."""


def safe_sync_id(value: Any) -> str | None:
    """Return a syncId fit for logs: only a well-formed UUID, never arbitrary input text."""
    if isinstance(value, str):
        try:
            return str(uuid.UUID(value))
        except ValueError:
            return None
    return None


class Pipeline:
    """Gate, route and transform records; build the outgoing records with their headers."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self._gate = F008Gate(settings)
        self._router = Router(settings)
        self._metrics = metrics
        self._facade_topics = {f: settings.topics.facade_topic(f) for f in settings.facades}

    @property
    def gate(self) -> F008Gate:
        return self._gate

    def process(self, record: SourceRecord) -> Processed:
        result = Processed(record)
        metrics = self._metrics
        started = time.perf_counter()
        try:
            package = self._gate.check_bytes(
                record.value, h.header_text(record.headers, h.CONTENT_TYPE)
            )
        except SyncStreamError as exc:
            metrics.packages_rejected.labels(exc.reason).inc()
            result.error = exc
            return result
        except Exception as exc:  # a gate bug must not stop the partition
            result.error = UnexpectedError(f"gate raised {type(exc).__name__}", reason="unexpected")
            result.error.stage = "f008"
            log.exception(
                "unexpected gate error",
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
            )
            return result
        gated = time.perf_counter()
        metrics.stage_seconds.labels("f008").observe(gated - started)
        metrics.packages_accepted.labels(package.source).inc()
        result.package = package

        try:
            routed = self._router.route(package)
        except SyncStreamError as exc:
            if exc.stage in ("T080", "T121"):
                metrics.transform_failures.labels(exc.stage, exc.reason).inc()
            result.error = exc
            result.routed = None
            return result
        except Exception as exc:
            result.error = UnexpectedError(
                f"transformer raised {type(exc).__name__}", reason="unexpected"
            )
            result.error.stage = "route"
            log.exception(
                "unexpected transformer error",
                sync_id=package.sync_id,
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
            )
            return result
        metrics.stage_seconds.labels("transform").observe(time.perf_counter() - gated)

        result.routed = routed
        envelope = package.envelope
        common = h.package_headers(
            envelope.syncId, envelope.source, envelope.chunk_index, envelope.chunk_count
        )
        process_headers: dict[str, list[tuple[str, bytes]]] = {}
        outgoing = result.outgoing
        facade_topics = self._facade_topics
        for output in routed.outputs:
            process = output.process
            base = process_headers.get(process)
            if base is None:
                base = process_headers[process] = [*common, (h.PROCESS, process.encode())]
            version = output.version
            outgoing.append(
                Outgoing(
                    topic=facade_topics[output.facade],
                    key=output.key,
                    value=output.value,
                    headers=[*base, (h.SOURCE_VERSION, str(version).encode())],
                    version=version,
                    facade=output.facade,
                )
            )
        return result
