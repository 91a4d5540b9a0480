"""Update the status topic as chunks finish; a package observer of the processor."""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from aiokafka import AIOKafkaProducer
from pydantic import ValidationError

from sync_stream.codec.avro import codec_for
from sync_stream.distribution import headers as h
from sync_stream.errors import SyncStreamError
from sync_stream.gate.decode import decode_package
from sync_stream.gate.f008 import Envelope
from sync_stream.observability.metrics import Metrics
from sync_stream.runtime.handler import Outcome
from sync_stream.runtime.pipeline import Processed
from sync_stream.settings import Settings
from sync_stream.status.progress import SyncProgress
from sync_stream.status.store import FULL_PROCESSES_HEADER, SyncStatusStore
from sync_stream.status.writer import RecordToSend, send_acknowledged

log = structlog.get_logger(__name__)

MAX_REMEMBERED_SYNCS = 10_000


@dataclass(frozen=True, slots=True)
class ChunkRef:
    """The sync and chunk index of one input record."""

    sync_id: str
    source: str
    index: int
    count: int
    full_processes: frozenset[str]


def chunk_of_envelope(envelope: Envelope) -> ChunkRef:
    """Describe an envelope's chunk; raise ValueError when its syncId is not a UUID."""
    full = frozenset(name for name, block in envelope.processes.items() if block.mode == "full")
    return ChunkRef(
        str(uuid.UUID(envelope.syncId)),
        envelope.source,
        envelope.chunk_index,
        envelope.chunk_count,
        full,
    )


class SyncStatusTracker:
    """Record every finished chunk in its sync's status and produce the new status.

    Runs before the input offset is committed and waits for the status record's
    acknowledgement, so a status is never behind a committed chunk. Redelivered chunks
    change nothing, because chunk indexes are sets.

    NOTE: two processors updating the same sync at the same moment (a chunk redone from a
    retry topic on another member) can each write a status without the other's chunk.
    Each store merges both records, but the compacted topic keeps only the last one until
    the sync's next update.
    """

    def __init__(
        self,
        settings: Settings,
        store: SyncStatusStore,
        producer: AIOKafkaProducer,
        metrics: Metrics,
    ) -> None:
        self._settings = settings
        self._store = store
        self._producer = producer
        self._metrics = metrics
        self._topic = settings.topics.status_topic
        self._codec = codec_for("SyncStatus")
        self._sources = frozenset(settings.topics.sources)
        # Syncs this process has written. Any other may have newer state on the topic.
        self._written: OrderedDict[str, None] = OrderedDict()
        # Per group being handled (partition workers run concurrently): the chunk of each
        # record, keyed by the record's id(), and the statuses merged but not yet written.
        self._chunks: dict[int, tuple[int, ChunkRef]] = {}
        self._unwritten: dict[int, dict[str, SyncProgress]] = {}

    async def batch_started(self, batch_id: int, processed: Sequence[Processed]) -> None:
        """Read the status topic up to now once for the group, if any of its syncs needs it.

        Another processor may have recorded other chunks of a sync before a rebalance or a
        restart. A sync of one chunk has no other chunks, and a sync this process wrote is
        current here, so only the first chunk of any other sync makes the store catch up.
        """
        chunks = []
        for item in processed:
            chunk = self._chunk_of(item)
            if chunk is not None:
                self._chunks[id(item)] = (batch_id, chunk)
                chunks.append(chunk)
        self._unwritten[batch_id] = {}
        if not chunks:
            return
        current = all(c.count == 1 or c.sync_id in self._written for c in chunks)
        first = processed[0].record
        await self._store.catch_up(
            ready_only=current,
            sync_id=chunks[0].sync_id,
            topic=first.topic,
            partition=first.partition,
            offset=first.offset,
        )

    async def package_finished(self, processed: Processed, outcome: Outcome) -> None:
        """Merge the chunk into its sync's status in memory; batch_finished writes it."""
        found = self._chunks.pop(id(processed), None)
        if found is None:
            return
        batch_id, chunk = found
        now_ms = int(time.time() * 1000)
        update = SyncProgress(
            sync_id=chunk.sync_id,
            source=chunk.source,
            chunks_expected=chunk.count,
            first_update_ms=now_ms,
            last_update_ms=now_ms,
            full_processes=set(chunk.full_processes),
        )
        if outcome is Outcome.DISTRIBUTED:
            update.done.add(chunk.index)
            update.build_metadata_ok = bool(processed.routed and processed.routed.build_metadata_ok)
        elif outcome is Outcome.DEAD_LETTERED:
            update.failed.add(chunk.index)
        previous = self._store.get(chunk.sync_id)
        merged = self._store.merge(update)
        self._unwritten[batch_id][chunk.sync_id] = merged
        if previous is None or previous.state != merged.state:
            log.info(
                "sync state changed",
                state=merged.state,
                chunks_done=len(merged.done),
                chunks_expected=merged.chunks_expected,
                sync_id=chunk.sync_id,
                source=chunk.source,
                topic=processed.record.topic,
                partition=processed.record.partition,
                offset=processed.record.offset,
            )

    async def batch_finished(self, batch_id: int) -> None:
        """Write the latest status of every sync the group touched; wait for the acks."""
        unwritten = self._unwritten.pop(batch_id, {})
        if not unwritten:
            return
        await send_acknowledged(
            self._producer,
            # The store's current state, not the snapshot: another partition worker may have
            # merged a later chunk of the same sync meanwhile, and the last write must hold all.
            [
                self._status_record(self._store.get(sync_id) or progress)
                for sync_id, progress in unwritten.items()
            ],
            self._metrics,
            sync_id=next(iter(unwritten)),
        )
        for sync_id in unwritten:
            self._remember(sync_id)

    def _status_record(self, progress: SyncProgress) -> RecordToSend:
        headers = [
            (h.SYNC_ID, progress.sync_id.encode()),
            (h.SOURCE, progress.source.encode()),
            (h.CONTENT_TYPE, h.AVRO),
        ]
        if progress.full_processes:
            headers.append(
                (FULL_PROCESSES_HEADER, ",".join(sorted(progress.full_processes)).encode())
            )
        return RecordToSend(
            self._topic,
            progress.sync_id.encode(),
            self._codec.encode(progress.to_datum()),
            headers,
        )

    def _remember(self, sync_id: str) -> None:
        self._written[sync_id] = None
        self._written.move_to_end(sync_id)
        if len(self._written) > MAX_REMEMBERED_SYNCS:
            self._written.popitem(last=False)

    def _chunk_of(self, processed: Processed) -> ChunkRef | None:
        """Name the chunk of a finished record, also of one the gate or a transformer failed.

        A record whose envelope is unreadable belongs to no sync it could name, so it has no
        status.
        """
        if processed.routed is not None:
            return chunk_of_envelope(processed.routed.package.envelope)
        record = processed.record
        try:
            document = decode_package(
                record.value,
                h.header_text(record.headers, h.CONTENT_TYPE),
                self._settings.limits.max_package_bytes,
            )
            chunk = chunk_of_envelope(Envelope.model_validate(document))
        except (SyncStreamError, ValidationError, ValueError, TypeError):
            return None
        if chunk.source not in self._sources:
            return None
        if not 0 <= chunk.index < chunk.count <= self._settings.limits.max_chunks:
            return None
        return chunk
