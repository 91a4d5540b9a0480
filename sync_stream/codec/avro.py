"""Avro single-object encoding with the schema files in `schemas/`.

A single-object value is the marker C3 01, the 8-byte little-endian CRC-64-AVRO fingerprint
of the schema's parsing canonical form, then the Avro binary body. A reader needs only the
schema file, no registry.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

from sync_stream.errors import DecodeFailed

SINGLE_OBJECT_MARKER = b"\xc3\x01"
HEADER_BYTES = len(SINGLE_OBJECT_MARKER) + 8

SCHEMA_FILES = {
    "BuildInfo": "build_info.avsc",
    "UserPos": "user_pos.avsc",
    "PrinterConfig": "printer_config.avsc",
    "SyncStatus": "sync_status.avsc",
    "EtlPackage": "etl_package.avsc",
}


def schemas_dir() -> Path:
    """Locate the schema folder: `SYNC_SCHEMAS_DIR`, else `schemas/` beside the package."""
    configured = os.environ.get("SYNC_SCHEMAS_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2] / "schemas"


@dataclass(frozen=True, slots=True)
class AvroCodec:
    """Encoder and decoder of one schema's single-object values."""

    name: str
    parsed: Any
    header: bytes

    def encode(self, datum: Mapping[str, Any]) -> bytes:
        buffer = io.BytesIO()
        buffer.write(self.header)
        fastavro.schemaless_writer(buffer, self.parsed, datum)
        return buffer.getvalue()

    def decode(self, value: bytes) -> dict[str, Any]:
        if len(value) < HEADER_BYTES or value[:2] != SINGLE_OBJECT_MARKER:
            raise DecodeFailed(
                f"not an Avro single-object value ({self.name})", reason="avro_not_single_object"
            )
        if value[2:HEADER_BYTES] != self.header[2:]:
            raise DecodeFailed(
                f"Avro fingerprint {value[2:HEADER_BYTES].hex()} is not the {self.name} schema's "
                f"{self.header[2:].hex()}",
                reason="avro_fingerprint_mismatch",
            )
        body = io.BytesIO(value[HEADER_BYTES:])
        try:
            datum = fastavro.schemaless_reader(body, self.parsed, None)
        except (EOFError, ValueError, TypeError, IndexError, UnicodeDecodeError) as exc:
            raise DecodeFailed(
                f"Avro body does not match the {self.name} schema: {type(exc).__name__}",
                reason="avro_body_invalid",
            ) from None
        if not isinstance(datum, dict):
            raise DecodeFailed(f"Avro body is not a {self.name} record", reason="avro_body_invalid")
        trailing = len(value) - HEADER_BYTES - body.tell()
        if trailing:
            raise DecodeFailed(
                f"{trailing} bytes follow the {self.name} Avro body", reason="avro_body_invalid"
            )
        return datum


@cache
def codec_for(name: str) -> AvroCodec:
    """Load, parse and fingerprint one schema file; cached for the process."""
    path = schemas_dir() / SCHEMA_FILES[name]
    raw = json.loads(path.read_text(encoding="utf-8"))
    parsed = fastavro.parse_schema(raw)
    canonical = to_parsing_canonical_form(parsed)
    # fastavro returns the CRC-64-AVRO fingerprint as hex already in little-endian byte order.
    header = SINGLE_OBJECT_MARKER + bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))
    return AvroCodec(name=name, parsed=parsed, header=header)
