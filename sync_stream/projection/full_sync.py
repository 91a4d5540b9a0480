"""Full syncs: remove the users a complete list no longer names.

A process sent with `"mode": "full"` is the complete list of users for the restaurants it
covers. When every chunk of the sync is distributed, each user of those restaurants that
has no record written since the sync's first write is removed with a tombstone.

Everything the removal needs survives a restart, because it is read back from topics:
- which chunks are done, and that the sync is full: the status topic (the status
  tracker must run first, so the current chunk is already counted);
- the sync's restaurants and its first write: the facade records' `mxp-sync-id` header
  and Kafka timestamps, kept by the projection;
- whether a user was named: any record of the user written at or after the sync's first
  write, by this sync or by a newer delta that arrived while the sync ran, keeps it.

NOTE: timestamps are set by the producing processors' clocks, so skew between hosts
blurs "before the sync began" by that much. A user the sync named only in a retried
chunk whose record was dropped as stale is remembered in memory, so a restart between
that chunk and the last one can still remove it.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer

from sync_stream.distribution import headers as h
from sync_stream.gate.f008 import Envelope
from sync_stream.observability.metrics import Metrics
from sync_stream.projection.users_pos import (
    USERS_POS_FACADE,
    HeldUser,
    Restaurant,
    UsersPosProjection,
    split_key,
)
from sync_stream.runtime.handler import Outcome
from sync_stream.runtime.pipeline import Processed
from sync_stream.settings import Settings
from sync_stream.status.progress import SyncProgress
from sync_stream.status.store import SyncStatusStore
from sync_stream.status.writer import RecordToSend, send_acknowledged

log = structlog.get_logger(__name__)

MAX_PENDING_SYNCS = 10_000


@dataclass(slots=True)
class PendingSync:
    """Hints about an unfinished full sync, from the chunks this process handled."""

    restaurants: set[Restaurant] = field(default_factory=set)
    # Keys the sync named whose records were not produced because the facade held newer.
    unwritten_keys: set[bytes] = field(default_factory=set)


class FullSyncRemover:
    """Package observer that removes the users a completed full sync did not name."""

    def __init__(
        self,
        settings: Settings,
        projection: UsersPosProjection,
        statuses: SyncStatusStore,
        producer: AIOKafkaProducer,
        metrics: Metrics,
    ) -> None:
        self._projection = projection
        self._statuses = statuses
        self._producer = producer
        self._metrics = metrics
        self._topic = settings.topics.facade_topic(USERS_POS_FACADE)
        self._processes = frozenset(
            name for name, route in settings.routes.items() if USERS_POS_FACADE in route.facades
        )
        self._pending: OrderedDict[str, PendingSync] = OrderedDict()

    async def batch_started(self, batch_id: int, processed: Sequence[Processed]) -> None:
        """Nothing to prepare: removals are written and acknowledged in package_finished."""

    async def batch_finished(self, batch_id: int) -> None:
        """Nothing queued: see batch_started."""

    async def package_finished(self, processed: Processed, outcome: Outcome) -> None:
        if outcome is not Outcome.DISTRIBUTED or processed.routed is None:
            return
        envelope = processed.routed.package.envelope
        sync_id = envelope.syncId
        full_here = self._full_processes(envelope)
        if full_here or sync_id in self._pending:
            self._note(sync_id, processed)

        progress = self._statuses.get(str(uuid.UUID(sync_id)))
        if progress is None or progress.state != "completed":
            return
        full = full_here or (progress.full_processes & self._processes)
        if not full:
            return
        await self._remove_unnamed(processed, envelope, progress, sorted(full)[0])
        self._pending.pop(sync_id, None)

    def _full_processes(self, envelope: Envelope) -> set[str]:
        return {
            name
            for name, block in envelope.processes.items()
            if block.mode == "full" and name in self._processes
        }

    def _note(self, sync_id: str, processed: Processed) -> None:
        pending = self._pending.get(sync_id)
        if pending is None:
            pending = self._pending[sync_id] = PendingSync()
            if len(self._pending) > MAX_PENDING_SYNCS:
                self._pending.popitem(last=False)
        assert processed.routed is not None
        named = {o.key for o in processed.routed.outputs if o.facade == USERS_POS_FACADE}
        produced = {o.key for o in processed.outgoing if o.topic == self._topic}
        pending.unwritten_keys |= named - produced
        for key in named:
            parts = split_key(key)
            if parts is not None:
                pending.restaurants.add((parts[0], parts[1]))

    async def _remove_unnamed(
        self, processed: Processed, envelope: Envelope, progress: SyncProgress, process: str
    ) -> None:
        sync_id = envelope.syncId
        ids: dict[str, Any] = {
            "sync_id": sync_id,
            "source": envelope.source,
            "topic": processed.record.topic,
            "partition": processed.record.partition,
            "offset": processed.record.offset,
        }
        # Every facade record written so far, by any processor, must be in the projection.
        # A processor-only process starts reading the facade at its first full sync.
        await self._projection.ensure_started()
        await self._projection.catch_up(**ids)

        pending = self._pending.get(sync_id, PendingSync())
        scope = self._projection.sync_scope(sync_id)
        restaurants = set(pending.restaurants)
        cutoff_ms = progress.first_update_ms
        if scope is not None:
            restaurants |= scope.restaurants
            cutoff_ms = scope.first_write_ms
        removed = [
            user
            for user in self._projection.users_written_before(restaurants, cutoff_ms)
            if user.key not in pending.unwritten_keys
        ]

        if removed:
            await send_acknowledged(
                self._producer,
                [self._tombstone(user, envelope, process) for user in removed],
                self._metrics,
                **ids,
            )
        log.info(
            "full sync finished: unnamed users removed",
            restaurants=len(restaurants),
            removed=len(removed),
            **ids,
        )

    def _tombstone(self, user: HeldUser, envelope: Envelope, process: str) -> RecordToSend:
        # The tombstone carries the removed record's version: it is as new as the data it
        # removes, and a later update of the user (same version or newer) brings it back.
        headers = [
            *h.package_headers(
                envelope.syncId, envelope.source, envelope.chunk_index, envelope.chunk_count
            ),
            (h.PROCESS, process.encode()),
            (h.SOURCE_VERSION, str(user.version).encode()),
        ]
        return RecordToSend(self._topic, user.key, None, headers)
