"""Read, filter, preview and replay DLQ records.

A preview shows the package's envelope (code, syncId, source, chunk, process names and
record counts), never the records, which hold personal data.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from sync_stream.distribution import headers as h
from sync_stream.dlq.failure import utc_iso
from sync_stream.gate.decode import decode_package, media_type
from sync_stream.kafka.clients import create_producer
from sync_stream.kafka.reader import read_topic
from sync_stream.runtime.pipeline import safe_sync_id
from sync_stream.settings import Settings

# Failure headers are dropped on replay; the attempt count stays so the replayed output
# passes the facade version check.
REPLAY_DROPPED_HEADERS = h.FAILURE_HEADERS - {h.ATTEMPT}


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One DLQ record with its failure headers parsed."""

    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    def header(self, name: str) -> str:
        return h.header_text(self.headers, name) or ""

    @property
    def position(self) -> str:
        return f"{self.partition}:{self.offset}"

    @property
    def stage(self) -> str:
        return self.header(h.ERROR_STAGE)

    @property
    def reason(self) -> str:
        return self.header(h.ERROR_REASON)

    @property
    def error_class(self) -> str:
        return self.header(h.ERROR_CLASS)

    @property
    def original_topic(self) -> str:
        return self.header(h.ORIGINAL_TOPIC)

    @property
    def sync_id(self) -> str:
        return self.header(h.SYNC_ID)

    @property
    def source(self) -> str:
        return self.header(h.SOURCE)

    @property
    def failed_at(self) -> str:
        return self.header(h.FIRST_FAILED_AT) or utc_iso(self.timestamp)


@dataclass(frozen=True, slots=True)
class DlqFilter:
    """Criteria a record must all meet; None matches anything."""

    stage: str | None = None
    reason: str | None = None
    error_class: str | None = None
    source: str | None = None
    sync_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    positions: frozenset[str] | None = None

    def matches(self, letter: DeadLetter) -> bool:
        if self.positions is not None and letter.position not in self.positions:
            return False
        checks = (
            (self.stage, letter.stage),
            (self.reason, letter.reason),
            (self.error_class, letter.error_class),
            (self.source, letter.source),
            (self.sync_id, letter.sync_id),
        )
        if any(wanted is not None and wanted != actual for wanted, actual in checks):
            return False
        if self.since is not None and letter.timestamp < self.since.timestamp() * 1000:
            return False
        return not (self.until is not None and letter.timestamp > self.until.timestamp() * 1000)


async def read_dead_letters(
    settings: Settings, selection: DlqFilter | None = None
) -> list[DeadLetter]:
    records = await read_topic(settings.kafka, settings.topics.dlq_topic)
    letters = [
        DeadLetter(r.partition, r.offset, r.timestamp, r.key, r.value, tuple(r.headers or ()))
        for r in records
    ]
    if selection is None:
        return letters
    return [letter for letter in letters if selection.matches(letter)]


def safe_preview(letter: DeadLetter, max_package_bytes: int) -> dict[str, Any]:
    """Describe a DLQ value without showing any record: size, digest and the envelope."""
    value = letter.value
    preview: dict[str, Any] = {
        "bytes": len(value) if value is not None else None,
        "sha256": hashlib.sha256(value).hexdigest() if value is not None else None,
        "content_type": media_type(letter.header(h.CONTENT_TYPE) or None),
    }
    if not value:
        return preview
    try:
        document = decode_package(
            value, letter.header(h.CONTENT_TYPE) or None, max(max_package_bytes, len(value))
        )
    except Exception as exc:
        preview["decodes"] = False
        preview["decode_error"] = type(exc).__name__
        return preview
    preview["decodes"] = True
    if isinstance(document, dict):
        envelope: dict[str, Any] = {
            k: _scalar(document[k])
            for k in ("code", "source", "chunkLoad", "chunk", "checksum")
            if k in document
        }
        if "syncId" in document:
            envelope["syncId"] = safe_sync_id(document["syncId"]) or "(not a UUID)"
        processes = document.get("processes")
        if isinstance(processes, dict):
            envelope["processes"] = {
                str(name)[:64]: {
                    "mode": block.get("mode") if isinstance(block, dict) else None,
                    "records": len(block.get("records") or [])
                    if isinstance(block, dict) and isinstance(block.get("records"), list)
                    else None,
                }
                for name, block in list(processes.items())[:20]
            }
        preview["envelope"] = envelope
    else:
        preview["json_type"] = type(document).__name__
    return preview


def _scalar(value: Any) -> Any:
    """Keep numbers, short strings and small chunk objects; describe anything else by type."""
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, str):
        return value[:64]
    if isinstance(value, dict) and set(value) <= {"index", "count"}:
        return {k: v for k, v in value.items() if isinstance(v, int)}
    return f"({type(value).__name__})"


def replay_headers(letter: DeadLetter, now_ms: int) -> list[tuple[str, bytes]]:
    kept = [
        (k, v)
        for k, v in letter.headers
        if k.lower() not in REPLAY_DROPPED_HEADERS and k.lower() != h.REPLAYED_AT
    ]
    return [*kept, (h.REPLAYED_AT, utc_iso(now_ms).encode())]


async def replay(settings: Settings, letters: Sequence[DeadLetter]) -> list[tuple[DeadLetter, str]]:
    """Produce each record's key and value back to its original topic; return (record, topic).

    Replaying twice is safe: outputs are deterministic, and the attempt header makes the
    processor check facade versions, so an older output never replaces a newer one.
    """
    producer = create_producer(settings.kafka, max_request_size=settings.failure_request_bytes)
    await producer.start()
    done: list[tuple[DeadLetter, str]] = []
    try:
        now_ms = int(time.time() * 1000)
        futures = []
        for letter in letters:
            topic = letter.original_topic
            if not topic:
                continue
            futures.append(
                (
                    letter,
                    topic,
                    await producer.send(
                        topic, letter.value, key=letter.key, headers=replay_headers(letter, now_ms)
                    ),
                )
            )
        for letter, topic, future in futures:
            await future
            done.append((letter, topic))
    finally:
        await producer.stop()
    return done


def summarize(letters: Iterable[DeadLetter]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for letter in letters:
        label = f"{letter.stage}/{letter.reason}"
        counts[label] = counts.get(label, 0) + 1
    return dict(sorted(counts.items()))


def preview_json(preview: dict[str, Any]) -> str:
    return orjson.dumps(preview, option=orjson.OPT_INDENT_2).decode()
