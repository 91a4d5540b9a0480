"""The progress of one sync run and its SyncStatus record.

Chunk indexes are kept as sets, so a redelivered chunk changes nothing and two views of
the same sync merge by union. A chunk once distributed stays done even if a later
redelivery of it fails.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from sync_stream.dlq.failure import parse_utc_iso, utc_iso

SyncState = Literal["in_progress", "completed", "failed"]


@dataclass(slots=True)
class SyncProgress:
    """Chunks done and failed of one syncId, with the first and last update times."""

    sync_id: str
    source: str
    chunks_expected: int
    first_update_ms: int
    last_update_ms: int
    done: set[int] = field(default_factory=set)
    failed: set[int] = field(default_factory=set)
    build_metadata_ok: bool = False
    # Processes the sync sent in "full" mode. The status record carries them in a header.
    full_processes: set[str] = field(default_factory=set)

    @property
    def state(self) -> SyncState:
        if all(index in self.done for index in range(self.chunks_expected)):
            return "completed"
        if self.failed - self.done:
            return "failed"
        return "in_progress"

    def merge(self, other: SyncProgress) -> None:
        """Fold another view of the same sync into this one."""
        self.source = self.source or other.source
        self.chunks_expected = max(self.chunks_expected, other.chunks_expected)
        self.first_update_ms = min(self.first_update_ms, other.first_update_ms)
        self.last_update_ms = max(self.last_update_ms, other.last_update_ms)
        self.done |= other.done
        self.failed = (self.failed | other.failed) - self.done
        self.build_metadata_ok = self.build_metadata_ok or other.build_metadata_ok
        self.full_processes |= other.full_processes

    def copy(self) -> SyncProgress:
        return SyncProgress(
            sync_id=self.sync_id,
            source=self.source,
            chunks_expected=self.chunks_expected,
            first_update_ms=self.first_update_ms,
            last_update_ms=self.last_update_ms,
            done=set(self.done),
            failed=set(self.failed),
            build_metadata_ok=self.build_metadata_ok,
            full_processes=set(self.full_processes),
        )

    def to_datum(self) -> dict[str, Any]:
        """Return the SyncStatus Avro datum; the API serves the same field names."""
        failed = sorted(self.failed - self.done)
        return {
            "syncId": self.sync_id,
            "source": self.source,
            "chunksExpected": self.chunks_expected,
            "chunksDone": len(self.done),
            "chunksFailed": len(failed),
            "doneChunks": sorted(self.done),
            "failedChunks": failed,
            "state": self.state,
            "buildMetadataOk": self.build_metadata_ok,
            "firstUpdate": utc_iso(self.first_update_ms),
            "lastUpdate": utc_iso(self.last_update_ms),
        }

    @classmethod
    def from_datum(cls, datum: dict[str, Any], full_processes: set[str]) -> SyncProgress:
        return cls(
            sync_id=datum["syncId"],
            source=datum["source"],
            chunks_expected=datum["chunksExpected"],
            first_update_ms=parse_utc_iso(datum["firstUpdate"]),
            last_update_ms=parse_utc_iso(datum["lastUpdate"]),
            done=set(datum["doneChunks"]),
            failed=set(datum["failedChunks"]),
            build_metadata_ok=datum["buildMetadataOk"],
            full_processes=full_processes,
        )
