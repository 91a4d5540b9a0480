"""Turn a record's bytes into a plain package dict, from JSON or Avro single-object."""

from __future__ import annotations

from typing import Any

import orjson

from sync_stream.codec.avro import codec_for
from sync_stream.errors import DecodeFailed
from sync_stream.gate.reasons import Reason

JSON_CONTENT_TYPE = "application/json"
AVRO_CONTENT_TYPE = "avro/binary"


def media_type(content_type: str | None) -> str:
    """Return the media type of a content-type header without parameters; JSON when absent."""
    if not content_type:
        return JSON_CONTENT_TYPE
    return content_type.split(";", 1)[0].strip().lower()


def decode_package(value: bytes | None, content_type: str | None, max_bytes: int) -> Any:
    """Decode a package value into Python objects; raise DecodeFailed with a reason code."""
    if not value:
        raise DecodeFailed("record value is empty or null", reason=Reason.EMPTY_VALUE)
    if len(value) > max_bytes:
        raise DecodeFailed(
            f"package is {len(value)} bytes, over the {max_bytes}-byte limit",
            reason=Reason.TOO_LARGE,
        )

    kind = media_type(content_type)
    if kind == JSON_CONTENT_TYPE:
        return _decode_json(value)
    if kind == AVRO_CONTENT_TYPE:
        return _decode_avro(value)
    raise DecodeFailed(
        f"content-type {kind[:100]!r} is not {JSON_CONTENT_TYPE} or {AVRO_CONTENT_TYPE}",
        reason=Reason.UNSUPPORTED_CONTENT_TYPE,
    )


def _decode_json(value: bytes) -> Any:
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        # orjson's message names the position and the problem, never the document's text.
        raise DecodeFailed(
            f"value is not valid JSON: {exc.msg}", reason=Reason.INVALID_JSON
        ) from None


def _decode_avro(value: bytes) -> dict[str, Any]:
    try:
        datum = codec_for("EtlPackage").decode(value)
    except DecodeFailed as exc:
        raise DecodeFailed(exc.message, reason=Reason.INVALID_AVRO) from None

    processes: dict[str, Any] = {}
    for name, block in datum["processes"].items():
        records = []
        for index, text in enumerate(block["records"]):
            try:
                records.append(orjson.loads(text))
            except orjson.JSONDecodeError:
                raise DecodeFailed(
                    f"processes.{name[:64]}.records[{index}] is not valid JSON text",
                    reason=Reason.INVALID_AVRO,
                ) from None
        processes[name] = {"records": records}
        if block["mode"] is not None:
            processes[name]["mode"] = block["mode"]
    datum["processes"] = processes
    if datum["chunk"] is None:
        del datum["chunk"]
    if datum["checksum"] is None:
        del datum["checksum"]
    return datum


def encode_avro_package(package: dict[str, Any]) -> bytes:
    """Encode a package dict (the JSON shape) as an Avro single-object EtlPackage."""
    datum = {
        "code": package["code"],
        "syncId": package["syncId"],
        "source": package["source"],
        "chunkLoad": package["chunkLoad"],
        "chunk": package.get("chunk"),
        "checksum": package.get("checksum"),
        "processes": {
            name: {
                "mode": block.get("mode"),
                "records": [orjson.dumps(record).decode() for record in block["records"]],
            }
            for name, block in package["processes"].items()
        },
    }
    return codec_for("EtlPackage").encode(datum)
