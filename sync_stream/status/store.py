"""The sync status store: the compacted status topic in memory, keyed by syncId."""

from __future__ import annotations

from typing import Any

import structlog

from sync_stream.codec.avro import codec_for
from sync_stream.distribution import headers as h
from sync_stream.errors import DecodeFailed
from sync_stream.kafka.follower import TopicFollower
from sync_stream.settings import Settings
from sync_stream.status.progress import SyncProgress

log = structlog.get_logger(__name__)

# Comma-separated processes a sync sent in "full" mode. It travels as a header because
# the SyncStatus schema has no field for it and consumers of that schema need none.
FULL_PROCESSES_HEADER = "mxp-full-processes"


def full_processes_of(headers: Any) -> set[str]:
    text = h.header_text(headers, FULL_PROCESSES_HEADER)
    return {name for name in (text or "").split(",") if name}


CATCH_UP_FETCH_MAX_WAIT_MS = 20


class SyncStatusStore(TopicFollower):
    """Every sync's progress, merged from the status topic and from local updates.

    NOTE: every sync stays in memory for the life of the process (about 300 bytes each,
    an estimate), as long as the topic keeps it.
    """

    def __init__(self, settings: Settings) -> None:
        # Processors wait for this store to catch up before the first chunk of a sync they
        # have not written yet, so its fetch rounds are kept short.
        super().__init__(
            settings,
            settings.topics.status_topic,
            name="sync status store",
            fetch_max_wait_ms=CATCH_UP_FETCH_MAX_WAIT_MS,
        )
        self._codec = codec_for("SyncStatus")
        self._syncs: dict[str, SyncProgress] = {}

    def apply(self, record: Any) -> None:
        if record.key is None:
            return
        sync_id = record.key.decode("utf-8", "replace")
        if record.value is None:
            self._syncs.pop(sync_id, None)
            return
        try:
            datum = self._codec.decode(record.value)
        except DecodeFailed as exc:
            log.warning(
                "status record skipped",
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                reason=exc.reason,
            )
            return
        self.merge(SyncProgress.from_datum(datum, full_processes_of(record.headers)))

    def merge(self, progress: SyncProgress) -> SyncProgress:
        """Fold a view of a sync into the store; return a copy of the merged progress."""
        held = self._syncs.get(progress.sync_id)
        if held is None:
            held = self._syncs[progress.sync_id] = progress.copy()
        else:
            held.merge(progress)
        return held.copy()

    def get(self, sync_id: str) -> SyncProgress | None:
        held = self._syncs.get(sync_id)
        return held.copy() if held is not None else None
