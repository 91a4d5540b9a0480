"""The F008 gate: one accepted package, then one small change per rejection reason."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from sync_stream.codec.avro import codec_for
from sync_stream.codec.canonical import processes_checksum
from sync_stream.errors import DecodeFailed, PackageRejected
from sync_stream.gate import F008Gate, Reason
from sync_stream.gate.decode import encode_avro_package
from sync_stream.settings import Limits, Settings
from sync_stream.transformers.rows import BuildInfoRow, PrinterRow, UserRow
from tests.unit.packages import (
    EXAMPLES,
    SECRET_FIRST_NAME,
    SECRET_PIN,
    SYNC_ID,
    build_row,
    mixed_package,
    printer_row,
    user_row,
)

JSON = "application/json"
AVRO = "avro/binary"

# Reasons raised while the bytes are decoded, before any F008 rule runs.
DECODE_REASONS = {
    Reason.EMPTY_VALUE,
    Reason.TOO_LARGE,
    Reason.UNSUPPORTED_CONTENT_TYPE,
    Reason.INVALID_JSON,
    Reason.INVALID_AVRO,
}

Document = dict[str, Any]
MakeValue = Callable[[Document, Limits], bytes | None]


def encode(document: Any, content_type: str | None) -> bytes:
    if content_type == AVRO:
        return encode_avro_package(document)
    return orjson.dumps(document)


def edited(edit: Callable[[Document, Limits], object]) -> MakeValue:
    """Return a value maker that applies `edit` to the package, then encodes it as JSON."""

    def make(document: Document, limits: Limits) -> bytes:
        edit(document, limits)
        return orjson.dumps(document)

    return make


def edited_avro(edit: Callable[[Document], object]) -> MakeValue:
    def make(document: Document, limits: Limits) -> bytes:
        edit(document)
        return encode_avro_package(document)

    return make


def padded_past_limit(document: Document, limits: Limits) -> bytes:
    raw = orjson.dumps(document)
    return raw + b" " * (limits.max_package_bytes - len(raw) + 1)


def deeply_nested_record(document: Document, limits: Limits) -> bytes:
    document["processes"]["users_pos"]["records"][0]["notes"] = "NESTED"
    return orjson.dumps(document).replace(b'"NESTED"', b"[" * 5000 + b"]" * 5000)


def invalid_utf8_in_name(document: Document, limits: Limits) -> bytes:
    raw = orjson.dumps(document)
    assert SECRET_FIRST_NAME.encode() in raw
    return raw.replace(SECRET_FIRST_NAME.encode(), b"Ev\xff\xfelina", 1)


def wrong_fingerprint(document: Document, limits: Limits) -> bytes:
    value = encode_avro_package(document)
    return value[:2] + bytes(byte ^ 0xFF for byte in value[2:10]) + value[10:]


def other_schema_value(document: Document, limits: Limits) -> bytes:
    return codec_for("UserPos").encode(
        {
            "userId": "EMP-1",
            "cdnId": "c",
            "restaurantId": "r",
            "userName": "u",
            "fullName": SECRET_FIRST_NAME,
            "profile": "p",
            "status": "active",
            "updatedAt": "2026-11-05T15:00:00.000Z",
        }
    )


def avro_record_not_json(document: Document, limits: Limits) -> bytes:
    return codec_for("EtlPackage").encode(
        {
            "code": "F008",
            "syncId": SYNC_ID,
            "source": "http",
            "chunkLoad": 10,
            "chunk": None,
            "checksum": None,
            "processes": {"users_pos": {"mode": None, "records": [f'{{"pin": "{SECRET_PIN}"']}},
        }
    )


def set_user_field(field: str, value: Any) -> Callable[[Document, Limits], object]:
    def edit(document: Document, limits: Limits) -> None:
        document["processes"]["users_pos"]["records"][0][field] = value

    return edit


def drop_from(process: str, field: str) -> Callable[[Document, Limits], object]:
    def edit(document: Document, limits: Limits) -> None:
        del document["processes"][process]["records"][0][field]

    return edit


def set_envelope_field(field: str, value: Any) -> Callable[[Document, Limits], object]:
    def edit(document: Document, limits: Limits) -> None:
        document[field] = value

    return edit


def stale_checksum(document: Document, limits: Limits) -> None:
    document["checksum"] = processes_checksum(document["processes"])
    document["processes"]["users_pos"]["records"][0]["active"] = False


def bare_hex_checksum(document: Document, limits: Limits) -> None:
    document["checksum"] = processes_checksum(document["processes"]).removeprefix("sha256:")


def avro_stale_checksum(document: Document) -> None:
    document["checksum"] = processes_checksum(document["processes"])
    document["processes"]["printers"]["records"][0]["paperWidthMm"] = 58


# One row per case: the reason, the content-type of both the valid and the changed value,
# and how the changed value is made from a fresh valid package.
REJECTIONS = [
    pytest.param(Reason.EMPTY_VALUE, JSON, lambda d, lim: b"", id="empty-bytes"),
    pytest.param(Reason.EMPTY_VALUE, JSON, lambda d, lim: None, id="none-value"),
    pytest.param(Reason.EMPTY_VALUE, AVRO, lambda d, lim: b"", id="empty-avro"),
    pytest.param(Reason.TOO_LARGE, JSON, padded_past_limit, id="one-byte-over-limit"),
    pytest.param(
        Reason.UNSUPPORTED_CONTENT_TYPE,
        "text/plain",
        edited(lambda d, lim: None),
        id="text-plain",
    ),
    pytest.param(
        Reason.UNSUPPORTED_CONTENT_TYPE,
        "application/xml; charset=utf-8",
        edited(lambda d, lim: None),
        id="xml-with-parameters",
    ),
    pytest.param(
        Reason.INVALID_JSON,
        JSON,
        lambda d, lim: orjson.dumps(d)[:-1],
        id="truncated-json",
    ),
    pytest.param(Reason.INVALID_JSON, JSON, invalid_utf8_in_name, id="invalid-utf8"),
    pytest.param(
        Reason.INVALID_JSON,
        JSON,
        lambda d, lim: b"[" * 5000 + b"]" * 5000,
        id="array-nested-5000-deep",
    ),
    pytest.param(Reason.INVALID_JSON, JSON, deeply_nested_record, id="record-nested-5000-deep"),
    pytest.param(
        Reason.INVALID_JSON,
        JSON,
        lambda d, lim: (EXAMPLES / "invalid" / "invalid_json.json").read_bytes(),
        id="example-invalid-json",
    ),
    pytest.param(Reason.INVALID_AVRO, AVRO, wrong_fingerprint, id="wrong-fingerprint"),
    pytest.param(Reason.INVALID_AVRO, AVRO, other_schema_value, id="userpos-value"),
    pytest.param(Reason.INVALID_AVRO, AVRO, lambda d, lim: orjson.dumps(d), id="json-as-avro"),
    pytest.param(
        Reason.INVALID_AVRO,
        AVRO,
        lambda d, lim: encode_avro_package(d)[:-3],
        id="truncated-avro",
    ),
    pytest.param(Reason.INVALID_AVRO, AVRO, avro_record_not_json, id="avro-record-not-json"),
    pytest.param(
        Reason.INVALID_STRUCTURE,
        JSON,
        edited(lambda d, lim: d.pop("source")),
        id="missing-source",
    ),
    pytest.param(
        Reason.INVALID_STRUCTURE,
        JSON,
        edited(set_envelope_field("priority", "high")),
        id="unknown-envelope-field",
    ),
    pytest.param(
        Reason.INVALID_STRUCTURE,
        JSON,
        edited(set_envelope_field("chunkLoad", "ten")),
        id="chunk-load-not-integer",
    ),
    pytest.param(
        Reason.INVALID_STRUCTURE,
        JSON,
        edited(set_envelope_field("processes", [{"records": []}])),
        id="processes-is-list",
    ),
    pytest.param(
        Reason.INVALID_STRUCTURE,
        JSON,
        lambda d, lim: orjson.dumps([d]),
        id="package-is-array",
    ),
    pytest.param(
        Reason.INVALID_STRUCTURE,
        JSON,
        edited(lambda d, lim: d["processes"]["users_pos"].update(records={"0": user_row()})),
        id="records-not-list",
    ),
    pytest.param(
        Reason.INVALID_STRUCTURE,
        JSON,
        edited(lambda d, lim: d["processes"]["users_pos"].update(mode="replace")),
        id="unknown-mode",
    ),
    pytest.param(
        Reason.INVALID_STRUCTURE,
        JSON,
        edited(set_envelope_field("chunk", {"index": 0})),
        id="chunk-without-count",
    ),
    pytest.param(
        Reason.INVALID_STRUCTURE,
        JSON,
        edited(lambda d, lim: d["processes"]["printers"]["records"].append("PRN-9")),
        id="record-not-object",
    ),
    pytest.param(
        Reason.INVALID_STRUCTURE,
        AVRO,
        edited_avro(lambda d: d["processes"]["users_pos"].update(mode="replace")),
        id="avro-unknown-mode",
    ),
    pytest.param(
        Reason.INVALID_CODE, JSON, edited(set_envelope_field("code", "F009")), id="code-f009"
    ),
    pytest.param(
        Reason.INVALID_CODE, JSON, edited(set_envelope_field("code", "f008")), id="code-lower-case"
    ),
    pytest.param(
        Reason.INVALID_CODE, AVRO, edited_avro(lambda d: d.update(code="T121")), id="avro-code-t121"
    ),
    pytest.param(
        Reason.INVALID_SYNC_ID,
        JSON,
        edited(set_envelope_field("syncId", "sync-42")),
        id="sync-id-not-uuid",
    ),
    pytest.param(
        Reason.INVALID_SYNC_ID, JSON, edited(set_envelope_field("syncId", "")), id="sync-id-empty"
    ),
    pytest.param(
        Reason.UNKNOWN_SOURCE,
        JSON,
        edited(set_envelope_field("source", "mxp-legacy")),
        id="unknown-module",
    ),
    pytest.param(
        Reason.UNKNOWN_SOURCE,
        JSON,
        edited(set_envelope_field("source", "etl.http")),
        id="topic-name-as-source",
    ),
    pytest.param(
        Reason.CHUNK_LOAD_OUT_OF_RANGE,
        JSON,
        edited(set_envelope_field("chunkLoad", 0)),
        id="chunk-load-zero",
    ),
    pytest.param(
        Reason.CHUNK_LOAD_OUT_OF_RANGE,
        JSON,
        edited(set_envelope_field("chunkLoad", -5)),
        id="chunk-load-negative",
    ),
    pytest.param(
        Reason.CHUNK_LOAD_OUT_OF_RANGE,
        JSON,
        edited(lambda d, lim: d.update(chunkLoad=lim.max_chunk_load + 1)),
        id="chunk-load-over-max",
    ),
    pytest.param(
        Reason.NO_PROCESSES, JSON, edited(set_envelope_field("processes", {})), id="empty-processes"
    ),
    pytest.param(
        Reason.NO_PROCESSES,
        AVRO,
        edited_avro(lambda d: d.update(processes={})),
        id="avro-empty-processes",
    ),
    pytest.param(
        Reason.UNKNOWN_PROCESS,
        JSON,
        edited(lambda d, lim: d["processes"].update(menu_items={"records": [{"id": 1}]})),
        id="menu-items",
    ),
    pytest.param(
        Reason.TOO_MANY_RECORDS,
        JSON,
        edited(set_envelope_field("chunkLoad", 1)),
        id="two-users-chunk-load-one",
    ),
    pytest.param(
        Reason.INVALID_CHUNK,
        JSON,
        edited(set_envelope_field("chunk", {"index": 1, "count": 1})),
        id="index-equals-count",
    ),
    pytest.param(
        Reason.INVALID_CHUNK,
        JSON,
        edited(set_envelope_field("chunk", {"index": 0, "count": 0})),
        id="count-zero",
    ),
    pytest.param(
        Reason.INVALID_CHUNK,
        JSON,
        edited(set_envelope_field("chunk", {"index": -1, "count": 2})),
        id="index-negative",
    ),
    pytest.param(
        Reason.INVALID_CHUNK,
        JSON,
        edited(lambda d, lim: d.update(chunk={"index": 0, "count": lim.max_chunks + 1})),
        id="count-over-max",
    ),
    pytest.param(
        Reason.CHECKSUM_MISMATCH,
        JSON,
        edited(set_envelope_field("checksum", "sha256:" + "0" * 64)),
        id="zero-digest",
    ),
    pytest.param(Reason.CHECKSUM_MISMATCH, JSON, edited(stale_checksum), id="record-changed"),
    pytest.param(Reason.CHECKSUM_MISMATCH, JSON, edited(bare_hex_checksum), id="missing-prefix"),
    pytest.param(
        Reason.CHECKSUM_MISMATCH,
        AVRO,
        edited_avro(avro_stale_checksum),
        id="avro-record-changed",
    ),
    pytest.param(
        Reason.INVALID_RECORD,
        JSON,
        edited(drop_from("users_pos", "updatedAt")),
        id="user-missing-updated-at",
    ),
    pytest.param(
        Reason.INVALID_RECORD,
        JSON,
        edited(set_user_field("firstName", 123)),
        id="user-first-name-number",
    ),
    pytest.param(
        Reason.INVALID_RECORD,
        JSON,
        edited(set_user_field("active", None)),
        id="user-active-null",
    ),
    pytest.param(
        Reason.INVALID_RECORD,
        JSON,
        edited(set_user_field("employeeId", "   ")),
        id="user-blank-employee-id",
    ),
    pytest.param(
        Reason.INVALID_RECORD,
        JSON,
        edited(drop_from("build_info", "artifacts")),
        id="build-missing-artifacts",
    ),
    pytest.param(
        Reason.INVALID_RECORD,
        JSON,
        edited(lambda d, lim: d["processes"]["build_info"]["records"][0].update(buildNumber=-1)),
        id="build-number-negative",
    ),
    pytest.param(
        Reason.INVALID_RECORD,
        JSON,
        edited(drop_from("printers", "connection")),
        id="printer-missing-connection",
    ),
    pytest.param(
        Reason.INVALID_RECORD,
        AVRO,
        edited_avro(lambda d: d["processes"]["users_pos"]["records"][0].pop("cdnId")),
        id="avro-user-missing-cdn-id",
    ),
]


def test_gate_covers_every_reason() -> None:
    covered = {case.values[0] for case in REJECTIONS}
    assert covered == set(Reason)


@pytest.mark.parametrize(("reason", "content_type", "make_value"), REJECTIONS)
def test_gate_rejects_changed_package(
    gate: F008Gate,
    reason: Reason,
    content_type: str,
    make_value: MakeValue,
    default_settings: Settings,
) -> None:
    valid = mixed_package()
    valid_content_type = content_type if content_type == AVRO else JSON
    accepted = gate.check_bytes(encode(valid, valid_content_type), valid_content_type)
    assert accepted.sync_id == SYNC_ID

    value = make_value(copy.deepcopy(valid), default_settings.limits)
    with pytest.raises(PackageRejected) as caught:
        gate.check_bytes(value, content_type)

    error = caught.value
    assert error.reason == reason
    if reason in DECODE_REASONS:
        assert isinstance(error, DecodeFailed)
        assert error.stage == "decode"
    else:
        assert not isinstance(error, DecodeFailed)
        assert error.stage == "f008"
    assert SECRET_FIRST_NAME not in str(error)
    assert SECRET_PIN not in str(error)


@pytest.mark.parametrize(
    "content_type",
    [None, "", JSON, "application/json; charset=utf-8", "Application/JSON", " application/json "],
)
def test_gate_accepts_json_content_types(gate: F008Gate, content_type: str | None) -> None:
    accepted = gate.check_bytes(orjson.dumps(mixed_package()), content_type)

    assert accepted.sync_id == SYNC_ID
    assert accepted.source == "http"


def test_gate_accepts_valid_json_package(gate: F008Gate) -> None:
    document = mixed_package()

    accepted = gate.check_bytes(orjson.dumps(document), JSON)

    assert sorted(accepted.rows) == ["build_info", "printers", "users_pos"]
    assert [type(row) for row in accepted.rows["build_info"]] == [BuildInfoRow]
    assert [type(row) for row in accepted.rows["users_pos"]] == [UserRow, UserRow]
    assert [type(row) for row in accepted.rows["printers"]] == [PrinterRow]
    users = document["processes"]["users_pos"]["records"]
    assert [row.employeeId for row in accepted.rows["users_pos"]] == [
        user["employeeId"] for user in users
    ]
    assert accepted.envelope.chunk_index == 0
    assert accepted.envelope.chunk_count == 1


def test_gate_accepts_avro_package(gate: F008Gate) -> None:
    document = mixed_package()
    document["chunk"] = {"index": 2, "count": 3}
    document["checksum"] = processes_checksum(document["processes"])

    from_avro = gate.check_bytes(encode_avro_package(document), AVRO)
    from_json = gate.check_bytes(orjson.dumps(document), JSON)

    assert from_avro.envelope == from_json.envelope
    assert from_avro.rows == from_json.rows
    assert from_avro.envelope.chunk_index == 2
    assert from_avro.envelope.chunk_count == 3


def test_gate_accepts_matching_checksum(gate: F008Gate) -> None:
    document = mixed_package()
    document["checksum"] = processes_checksum(document["processes"])

    accepted = gate.check_bytes(orjson.dumps(document), JSON)

    assert accepted.envelope.checksum == document["checksum"]


def test_gate_checksum_ignores_key_order(gate: F008Gate) -> None:
    document = mixed_package()
    document["checksum"] = processes_checksum(document["processes"])
    reordered = {
        name: {key: block[key] for key in reversed(block)}
        for name, block in reversed(document["processes"].items())
    }
    for block in reordered.values():
        block["records"] = [dict(reversed(record.items())) for record in block["records"]]
    document["processes"] = reordered

    accepted = gate.check_bytes(orjson.dumps(document), JSON)

    assert accepted.sync_id == SYNC_ID


def test_gate_accepts_size_at_limit(gate: F008Gate, default_settings: Settings) -> None:
    raw = orjson.dumps(mixed_package())
    value = raw + b" " * (default_settings.limits.max_package_bytes - len(raw))
    assert len(value) == default_settings.limits.max_package_bytes

    accepted = gate.check_bytes(value, JSON)

    assert accepted.sync_id == SYNC_ID


def test_gate_accepts_nesting_at_limit(gate: F008Gate) -> None:
    document = mixed_package()
    document["processes"]["users_pos"]["records"][0]["notes"] = "NESTED"
    # The package, processes, block, records and row make 5 levels, so 1019 arrays make 1024.
    at_limit = orjson.dumps(document).replace(b'"NESTED"', b"[" * 1019 + b"]" * 1019)
    over_limit = orjson.dumps(document).replace(b'"NESTED"', b"[" * 1020 + b"]" * 1020)

    accepted = gate.check_bytes(at_limit, JSON)
    with pytest.raises(DecodeFailed) as caught:
        gate.check_bytes(over_limit, JSON)

    assert accepted.sync_id == SYNC_ID
    assert caught.value.reason == Reason.INVALID_JSON


def test_gate_accepts_range_boundaries(gate: F008Gate, default_settings: Settings) -> None:
    limits = default_settings.limits
    document = mixed_package()
    document["chunkLoad"] = limits.max_chunk_load
    document["chunk"] = {"index": limits.max_chunks - 1, "count": limits.max_chunks}

    accepted = gate.check_bytes(orjson.dumps(document), JSON)

    assert accepted.envelope.chunkLoad == limits.max_chunk_load
    assert accepted.envelope.chunk_index == limits.max_chunks - 1


def test_gate_accepts_records_at_chunk_load(gate: F008Gate) -> None:
    document = mixed_package()
    document["chunkLoad"] = 2

    accepted = gate.check_bytes(orjson.dumps(document), JSON)

    assert len(accepted.rows["users_pos"]) == 2


def test_gate_drops_pin_from_rows(gate: F008Gate) -> None:
    accepted = gate.check_bytes(orjson.dumps(mixed_package()), JSON)

    for row in accepted.rows["users_pos"]:
        assert "pin" not in row.model_dump()
        assert SECRET_PIN not in repr(row)


@pytest.mark.parametrize(
    "path",
    sorted(
        path
        for path in (EXAMPLES / "invalid").glob("*.json")
        if path.stem in {reason.value for reason in Reason}
    ),
    ids=lambda path: path.stem,
)
def test_gate_rejects_invalid_example(gate: F008Gate, path: Path) -> None:
    with pytest.raises(PackageRejected) as caught:
        gate.check_bytes(path.read_bytes(), JSON)

    assert caught.value.reason == path.stem


def test_gate_accepts_generic_example(gate: F008Gate) -> None:
    accepted = gate.check_bytes((EXAMPLES / "sync-generic.json").read_bytes(), JSON)

    assert accepted.source == "fe-build"
    assert sorted(accepted.rows) == ["build_info", "printers"]


def test_gate_checksum_with_large_integer(gate: F008Gate) -> None:
    document = mixed_package()
    large = 2**60 + 7
    document["processes"]["build_info"]["records"][0]["artifacts"][0]["sizeBytes"] = large
    document["checksum"] = "sha256:" + "0" * 64

    with pytest.raises(PackageRejected) as caught:
        gate.check_bytes(orjson.dumps(document), JSON)

    assert str(large) not in str(caught.value)


COERCED_TYPES = [
    pytest.param(
        Reason.INVALID_STRUCTURE,
        lambda d: d.update(chunkLoad="10"),
        id="chunk-load-string",
    ),
    pytest.param(
        Reason.INVALID_STRUCTURE,
        lambda d: d.update(chunk={"index": "0", "count": 1}),
        id="chunk-index-string",
    ),
    pytest.param(
        Reason.INVALID_RECORD,
        lambda d: d["processes"]["build_info"]["records"][0].update(buildNumber="1532"),
        id="build-number-string",
    ),
    pytest.param(
        Reason.INVALID_RECORD,
        lambda d: d["processes"]["users_pos"]["records"][0].update(active="yes"),
        id="active-string",
    ),
]


@pytest.mark.parametrize(("reason", "edit"), COERCED_TYPES)
def test_gate_rejects_wrong_json_type(
    gate: F008Gate, reason: Reason, edit: Callable[[Document], object]
) -> None:
    document = mixed_package()
    edit(document)

    with pytest.raises(PackageRejected) as caught:
        gate.check_bytes(orjson.dumps(document), JSON)

    assert caught.value.reason == reason


def test_gate_rejects_rows_by_process(gate: F008Gate) -> None:
    """A printer row sent as a user row fails, because each process has its own row model."""
    document = mixed_package()
    document["processes"]["users_pos"]["records"] = [printer_row(1)]
    document["processes"]["printers"]["records"] = [build_row()]

    with pytest.raises(PackageRejected) as caught:
        gate.check_bytes(orjson.dumps(document), JSON)

    assert caught.value.reason == Reason.INVALID_RECORD
    assert "processes.users_pos.records.0" in str(caught.value)
