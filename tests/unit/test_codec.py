"""Avro single-object values and the package checksum, checked by round trips.

The fingerprint and the canonical JSON are computed here a second time, from the Avro
specification and RFC 8785, so a wrong byte order or a wrong key order fails the tests.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from fastavro.schema import to_parsing_canonical_form
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from sync_stream.codec.avro import SCHEMA_FILES, codec_for, schemas_dir
from sync_stream.codec.canonical import processes_checksum
from sync_stream.errors import DecodeFailed
from sync_stream.gate.decode import decode_package, encode_avro_package

PROPERTY_SETTINGS = hypothesis_settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
# RFC 8785 serializes numbers as IEEE 754 doubles, so only these integers are exact.
SAFE_INTEGER = 2**53 - 1


# CRC-64-AVRO, the Rabin fingerprint of the Avro specification ("Schema Fingerprints").

FINGERPRINT_EMPTY = 0xC15D213AA4D7A795


def _fingerprint_table() -> list[int]:
    table = []
    for byte in range(256):
        value = byte
        for _ in range(8):
            value = (value >> 1) ^ (FINGERPRINT_EMPTY & -(value & 1))
        table.append(value)
    return table


FINGERPRINT_TABLE = _fingerprint_table()


def crc64_avro(data: bytes) -> int:
    value = FINGERPRINT_EMPTY
    for byte in data:
        value = (value >> 8) ^ FINGERPRINT_TABLE[(value ^ byte) & 0xFF]
    return value


def schema_json(name: str) -> Any:
    return json.loads((schemas_dir() / SCHEMA_FILES[name]).read_text(encoding="utf-8"))


# Hypothesis strategies built from a schema file, so every schema gets data that matches it.


def avro_strategy(schema: Any, named: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """Return a strategy of Python data that fastavro writes with `schema`."""
    if isinstance(schema, list):
        return st.one_of([avro_strategy(branch, named) for branch in schema])
    if isinstance(schema, str):
        primitives: dict[str, st.SearchStrategy[Any]] = {
            "null": st.none(),
            "boolean": st.booleans(),
            "int": st.integers(*INT32),
            "long": st.integers(*INT64),
            "string": st.text(max_size=20),
            "bytes": st.binary(max_size=20),
        }
        if schema in primitives:
            return primitives[schema]
        return st.deferred(lambda: named[schema])

    kind = schema["type"]
    if kind == "record":
        fields = {field["name"]: avro_strategy(field["type"], named) for field in schema["fields"]}
        strategy: st.SearchStrategy[Any] = st.fixed_dictionaries(fields)
    elif kind == "enum":
        strategy = st.sampled_from(schema["symbols"])
    elif kind == "array":
        return st.lists(avro_strategy(schema["items"], named), max_size=4)
    elif kind == "map":
        return st.dictionaries(
            st.text(max_size=10), avro_strategy(schema["values"], named), max_size=4
        )
    else:
        return avro_strategy(kind, named)
    named[schema["name"]] = strategy
    return strategy


def datum_strategy(name: str) -> st.SearchStrategy[dict[str, Any]]:
    return avro_strategy(schema_json(name), {})


def test_codec_knows_every_schema_file() -> None:
    files = {path.name for path in schemas_dir().glob("*.avsc")}

    assert files == set(SCHEMA_FILES.values())


@pytest.mark.parametrize("name", sorted(SCHEMA_FILES))
@PROPERTY_SETTINGS
@given(data=st.data())
def test_codec_round_trip_every_schema(name: str, data: st.DataObject) -> None:
    codec = codec_for(name)
    datum = data.draw(datum_strategy(name), label=name)

    value = codec.encode(datum)

    assert codec.decode(value) == datum


def test_crc64_avro_reference_vectors() -> None:
    # Values that the tests of Avro's Java, Ruby and Go libraries expect for "int" and "string".
    assert crc64_avro(b'"int"') == 0x7275D51A3F395C8F
    assert crc64_avro(b'"string"') == 0x8F014872634503C7


@pytest.mark.parametrize("name", sorted(SCHEMA_FILES))
@PROPERTY_SETTINGS
@given(data=st.data())
def test_codec_single_object_header(name: str, data: st.DataObject) -> None:
    canonical = to_parsing_canonical_form(schema_json(name)).encode()
    fingerprint = crc64_avro(canonical).to_bytes(8, "little")

    value = codec_for(name).encode(data.draw(datum_strategy(name)))

    assert value[:2] == b"\xc3\x01"
    assert value[2:10] == fingerprint


def test_codec_schemas_have_distinct_fingerprints() -> None:
    headers = {codec_for(name).header for name in SCHEMA_FILES}

    assert len(headers) == len(SCHEMA_FILES)


@PROPERTY_SETTINGS
@given(
    datum=datum_strategy("BuildInfo"),
    position=st.integers(min_value=2, max_value=9),
    flip=st.integers(min_value=1, max_value=255),
)
def test_codec_rejects_changed_fingerprint(datum: dict[str, Any], position: int, flip: int) -> None:
    value = bytearray(codec_for("BuildInfo").encode(datum))
    value[position] ^= flip

    with pytest.raises(DecodeFailed) as caught:
        codec_for("BuildInfo").decode(bytes(value))

    assert caught.value.reason == "avro_fingerprint_mismatch"


@PROPERTY_SETTINGS
@given(datum=datum_strategy("UserPos"))
def test_codec_rejects_other_schema(datum: dict[str, Any]) -> None:
    value = codec_for("UserPos").encode(datum)

    with pytest.raises(DecodeFailed) as caught:
        codec_for("PrinterConfig").decode(value)

    assert caught.value.reason == "avro_fingerprint_mismatch"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"", "avro_not_single_object"),
        (b"\xc3\x01\x00", "avro_not_single_object"),
        (b'{"code": "F008"}', "avro_not_single_object"),
    ],
    ids=["empty", "short-header", "json"],
)
def test_codec_rejects_non_single_object(value: bytes, reason: str) -> None:
    with pytest.raises(DecodeFailed) as caught:
        codec_for("EtlPackage").decode(value)

    assert caught.value.reason == reason


def test_codec_rejects_truncated_body() -> None:
    value = codec_for("SyncStatus").encode(
        {
            "syncId": "3f1c2a9e-6a8b-4c1e-9f57-2d0c8e7b1a44",
            "source": "http",
            "chunksExpected": 3,
            "chunksDone": 1,
            "chunksFailed": 0,
            "doneChunks": [0],
            "failedChunks": [],
            "state": "in_progress",
            "buildMetadataOk": False,
            "firstUpdate": "2026-11-05T15:00:00.000Z",
            "lastUpdate": "2026-11-05T15:00:01.000Z",
        }
    )

    with pytest.raises(DecodeFailed) as caught:
        codec_for("SyncStatus").decode(value[:-4])

    assert caught.value.reason == "avro_body_invalid"


# The package's Avro ingress form and its JSON form carry the same data.

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(*INT64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)
RECORDS = st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=4)


@st.composite
def json_packages(draw: st.DrawFn) -> dict[str, Any]:
    """Draw a package in its JSON shape, with optional chunk, checksum and modes."""
    processes = {}
    for name in draw(st.lists(st.text(min_size=1, max_size=10), max_size=3, unique=True)):
        block: dict[str, Any] = {"records": draw(st.lists(RECORDS, max_size=3))}
        mode = draw(st.sampled_from([None, "delta", "full"]))
        if mode is not None:
            block["mode"] = mode
        processes[name] = block
    document: dict[str, Any] = {
        "code": draw(st.sampled_from(["F008", "F009"])),
        "syncId": str(draw(st.uuids())),
        "source": draw(st.text(max_size=10)),
        "chunkLoad": draw(st.integers(*INT32)),
        "processes": processes,
    }
    if draw(st.booleans()):
        count = draw(st.integers(min_value=1, max_value=INT32[1]))
        document["chunk"] = {"index": draw(st.integers(0, count - 1)), "count": count}
    if draw(st.booleans()):
        document["checksum"] = "sha256:" + draw(st.binary(min_size=32, max_size=32)).hex()
    return document


@PROPERTY_SETTINGS
@given(document=json_packages())
def test_avro_package_decodes_to_json_shape(document: dict[str, Any]) -> None:
    value = encode_avro_package(document)

    decoded = decode_package(value, "avro/binary", max_bytes=len(value))

    assert decoded == document


# The checksum: SHA-256 of the RFC 8785 canonical JSON of `processes`.


def canonical_json(value: Any) -> str:
    """Serialize JSON without floats the RFC 8785 way.

    Object keys are sorted by their UTF-16 code units, nothing is indented, and strings escape
    only the quote, the backslash and control characters, which is what json.dumps does with
    ensure_ascii=False.
    """
    if isinstance(value, dict):
        keys = sorted(value, key=lambda key: key.encode("utf-16-be"))
        members = ",".join(f"{canonical_json(key)}:{canonical_json(value[key])}" for key in keys)
        return "{" + members + "}"
    if isinstance(value, list):
        return "[" + ",".join(canonical_json(item) for item in value) + "]"
    return json.dumps(value, ensure_ascii=False)


CHECKSUM_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-SAFE_INTEGER, max_value=SAFE_INTEGER)
    | st.text(max_size=12)
)
CHECKSUM_VALUES = st.recursive(
    CHECKSUM_SCALARS,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=16,
)
PROCESSES = st.dictionaries(
    st.text(min_size=1, max_size=10),
    st.fixed_dictionaries(
        {
            "records": st.lists(
                st.dictionaries(st.text(max_size=8), CHECKSUM_VALUES, max_size=4), max_size=3
            )
        }
    ),
    max_size=3,
)


def sha256_of(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


@PROPERTY_SETTINGS
@given(processes=PROCESSES)
def test_checksum_is_sha256_of_canonical_json(processes: dict[str, Any]) -> None:
    assert processes_checksum(processes) == sha256_of(canonical_json(processes))


def reversed_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: reversed_keys(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [reversed_keys(item) for item in value]
    return value


@PROPERTY_SETTINGS
@given(processes=PROCESSES, data=st.data())
def test_checksum_ignores_key_order(processes: dict[str, Any], data: st.DataObject) -> None:
    shuffled = {name: processes[name] for name in data.draw(st.permutations(list(processes)))}

    assert processes_checksum(reversed_keys(processes)) == processes_checksum(processes)
    assert processes_checksum(shuffled) == processes_checksum(processes)


@pytest.mark.parametrize(
    ("processes", "canonical"),
    [
        ({"b": 1, "a": [True, None, "é"]}, '{"a":[true,null,"é"],"b":1}'),
        ({"x": 1.0, "y": 1e21, "z": 1e-7}, '{"x":1,"y":1e+21,"z":1e-7}'),
        ({"\uffff": 1, "\U0001f600": 2}, '{"\U0001f600":2,"\uffff":1}'),
        ({"tab": "a\tb\u001f\u007f"}, '{"tab":"a\\tb\\u001f\u007f"}'),
    ],
    ids=["key-order", "numbers", "utf16-key-order", "escapes"],
)
def test_checksum_canonical_examples(processes: dict[str, Any], canonical: str) -> None:
    assert processes_checksum(processes) == sha256_of(canonical)


def test_checksum_changes_with_records() -> None:
    processes = {"users_pos": {"records": [{"employeeId": "EMP-1", "active": True}]}}
    changed = {"users_pos": {"records": [{"employeeId": "EMP-1", "active": False}]}}

    assert processes_checksum(processes) != processes_checksum(changed)
    assert processes_checksum(processes).startswith("sha256:")
    assert len(processes_checksum(processes)) == len("sha256:") + 64
