"""Build retry and DLQ records: the source record's bytes and headers plus failure headers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sync_stream.distribution import headers as h
from sync_stream.errors import MAX_MESSAGE_CHARS, SyncStreamError


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """An input record as the service keeps it, with its bytes untouched."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    @property
    def attempt(self) -> int:
        """Number of failed attempts in the `mxp-attempt` header; 0 when the header is absent."""
        text = h.header_text(self.headers, h.ATTEMPT)
        return int(text) if text and text.isdigit() else 0

    @property
    def retry_tier(self) -> int:
        text = h.header_text(self.headers, h.RETRY_TIER)
        return int(text) if text and text.isdigit() else 0


def utc_iso(epoch_ms: float) -> str:
    """Format epoch milliseconds as ISO-8601 UTC with milliseconds and a Z suffix."""
    return (
        datetime.fromtimestamp(epoch_ms / 1000, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def failure_headers(
    record: SourceRecord,
    error: SyncStreamError,
    *,
    now_ms: int,
    retry_tier: int | None = None,
    retry_due_ms: int | None = None,
    sync_id: str | None = None,
    source: str | None = None,
) -> list[tuple[str, bytes]]:
    """Keep the source record's own headers, then add the failure headers.

    A record that already failed keeps its original-* and first-failed-at headers, so a
    package that went through several tiers still points at where it first entered.
    """
    previous = record.headers
    kept = [(k, v) for k, v in previous if k.lower() not in h.FAILURE_HEADERS]
    if h.header_value(previous, h.ORIGINAL_TOPIC) is not None:
        original = [
            (k, v)
            for k, v in previous
            if k.lower()
            in {
                h.ORIGINAL_TOPIC,
                h.ORIGINAL_PARTITION,
                h.ORIGINAL_OFFSET,
                h.ORIGINAL_TIMESTAMP,
                h.FIRST_FAILED_AT,
            }
        ]
    else:
        original = [
            (h.ORIGINAL_TOPIC, record.topic.encode()),
            (h.ORIGINAL_PARTITION, str(record.partition).encode()),
            (h.ORIGINAL_OFFSET, str(record.offset).encode()),
            (h.ORIGINAL_TIMESTAMP, str(record.timestamp).encode()),
            (h.FIRST_FAILED_AT, utc_iso(now_ms).encode()),
        ]
    message = error.message.encode("utf-8")[:MAX_MESSAGE_CHARS]
    added = [
        (h.ERROR_STAGE, (error.stage or "unknown").encode()),
        (h.ERROR_CLASS, type(error).__name__.encode()),
        (h.ERROR_REASON, error.reason.encode()),
        (h.ERROR_MESSAGE, message.decode("utf-8", "ignore").encode()),
        (h.ATTEMPT, str(record.attempt + 1).encode()),
    ]
    # Ids for filtering the DLQ, added only where the source record lacks them.
    if sync_id and h.header_value(previous, h.SYNC_ID) is None:
        added.append((h.SYNC_ID, sync_id.encode()))
    if source and h.header_value(previous, h.SOURCE) is None:
        added.append((h.SOURCE, source.encode()))
    if retry_tier is not None and retry_due_ms is not None:
        added += [
            (h.RETRY_TIER, str(retry_tier).encode()),
            (h.RETRY_DUE_AT, utc_iso(retry_due_ms).encode()),
        ]
    return kept + original + added


def parse_utc_iso(text: str) -> int:
    """Parse a time written by utc_iso back to epoch milliseconds."""
    return int(datetime.fromisoformat(text).timestamp() * 1000)
