"""Header names and builders. Every produced record carries the package's ids; retry and DLQ
records also carry the failure headers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

SYNC_ID = "mxp-sync-id"
SOURCE = "mxp-source"
PROCESS = "mxp-process"
CHUNK = "mxp-chunk"
CONTENT_TYPE = "content-type"
SOURCE_VERSION = "mxp-source-version"
REPLAYED_AT = "mxp-replayed-at"
VALUE_OMITTED = "mxp-value-omitted"
VALUE_SHA256 = "mxp-value-sha256"

ERROR_STAGE = "mxp-error-stage"
ERROR_CLASS = "mxp-error-class"
ERROR_REASON = "mxp-error-reason"
ERROR_MESSAGE = "mxp-error-message"
ATTEMPT = "mxp-attempt"
ORIGINAL_TOPIC = "mxp-original-topic"
ORIGINAL_PARTITION = "mxp-original-partition"
ORIGINAL_OFFSET = "mxp-original-offset"
ORIGINAL_TIMESTAMP = "mxp-original-timestamp"
FIRST_FAILED_AT = "mxp-first-failed-at"
RETRY_DUE_AT = "mxp-retry-due-at"
RETRY_TIER = "mxp-retry-tier"

FAILURE_HEADERS = frozenset(
    {
        ERROR_STAGE,
        ERROR_CLASS,
        ERROR_REASON,
        ERROR_MESSAGE,
        ATTEMPT,
        ORIGINAL_TOPIC,
        ORIGINAL_PARTITION,
        ORIGINAL_OFFSET,
        ORIGINAL_TIMESTAMP,
        FIRST_FAILED_AT,
        RETRY_DUE_AT,
        RETRY_TIER,
    }
)

AVRO = b"avro/binary"

Headers = Sequence[tuple[str, bytes]]


def header_value(headers: Iterable[tuple[str, bytes]] | None, name: str) -> bytes | None:
    """Return the last value of a header, or None. Header names compare case-insensitively."""
    found = None
    for key, value in headers or ():
        if key.lower() == name:
            found = value
    return found


def header_text(headers: Iterable[tuple[str, bytes]] | None, name: str) -> str | None:
    value = header_value(headers, name)
    return value.decode("utf-8", "replace") if value is not None else None


def package_headers(
    sync_id: str, source: str, chunk_index: int, chunk_count: int
) -> list[tuple[str, bytes]]:
    """Headers shared by every output of one package."""
    return [
        (SYNC_ID, sync_id.encode()),
        (SOURCE, source.encode()),
        (CHUNK, f"{chunk_index}/{chunk_count}".encode()),
        (CONTENT_TYPE, AVRO),
    ]


def source_version(headers: Iterable[tuple[str, bytes]] | None) -> int | None:
    """Return a record's `mxp-source-version` as an integer; None when absent or invalid."""
    text = header_text(headers, SOURCE_VERSION)
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return None
