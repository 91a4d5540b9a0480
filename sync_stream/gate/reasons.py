"""Reason codes of F008 rejections: stable strings used in logs, metrics and DLQ headers."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    EMPTY_VALUE = "empty_value"
    TOO_LARGE = "too_large"
    UNSUPPORTED_CONTENT_TYPE = "unsupported_content_type"
    INVALID_JSON = "invalid_json"
    INVALID_AVRO = "invalid_avro"
    INVALID_STRUCTURE = "invalid_structure"
    INVALID_CODE = "invalid_code"
    INVALID_SYNC_ID = "invalid_sync_id"
    UNKNOWN_SOURCE = "unknown_source"
    CHUNK_LOAD_OUT_OF_RANGE = "chunk_load_out_of_range"
    NO_PROCESSES = "no_processes"
    UNKNOWN_PROCESS = "unknown_process"
    TOO_MANY_RECORDS = "too_many_records"
    INVALID_CHUNK = "invalid_chunk"
    CHECKSUM_MISMATCH = "checksum_mismatch"
    INVALID_RECORD = "invalid_record"
