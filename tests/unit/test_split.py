"""split_package: chunks of at most chunkLoad records that each pass the F008 gate."""

from __future__ import annotations

import copy
import math
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from sync_stream.codec.canonical import processes_checksum
from sync_stream.errors import PackageRejected
from sync_stream.gate import F008Gate, Reason
from sync_stream.publish import split_package
from tests.unit.packages import build_row, load_example, package, printer_row, user_row

PROPERTY_SETTINGS = hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
ROW_BUILDERS = {
    "users_pos": lambda index: user_row(index),
    "printers": lambda index: printer_row(index),
    "build_info": lambda index: build_row(buildNumber=index),
}


@st.composite
def packages(draw: st.DrawFn) -> dict[str, Any]:
    """Draw a valid package of 1 to 3 processes, each with 0 to 25 distinct rows."""
    names = draw(st.lists(st.sampled_from(sorted(ROW_BUILDERS)), min_size=1, unique=True))
    processes = {}
    for name in names:
        count = draw(st.integers(min_value=0, max_value=25))
        block: dict[str, Any] = {"records": [ROW_BUILDERS[name](index) for index in range(count)]}
        mode = draw(st.sampled_from([None, "delta", "full"]))
        if mode is not None:
            block["mode"] = mode
        processes[name] = block
    document = package(processes, chunkLoad=draw(st.integers(min_value=1, max_value=12)))
    if draw(st.booleans()):
        # A chunk and checksum left from an earlier split must be replaced.
        document["chunk"] = {"index": 4, "count": 9}
        document["checksum"] = "sha256:" + "0" * 64
    return document


def records_of(chunk: dict[str, Any], name: str) -> list[Any]:
    block = chunk["processes"].get(name)
    return block["records"] if block is not None else []


@PROPERTY_SETTINGS
@given(document=packages())
def test_split_respects_chunk_load(document: dict[str, Any]) -> None:
    for chunk in split_package(document):
        for block in chunk["processes"].values():
            assert len(block["records"]) <= document["chunkLoad"]


@PROPERTY_SETTINGS
@given(document=packages())
def test_split_chunk_index_and_count(document: dict[str, Any]) -> None:
    chunks = split_package(document)
    largest = max(len(block["records"]) for block in document["processes"].values())

    assert len(chunks) == max(1, math.ceil(largest / document["chunkLoad"]))
    assert [chunk["chunk"]["index"] for chunk in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert chunk["chunk"]["count"] == len(chunks)


@PROPERTY_SETTINGS
@given(document=packages())
def test_split_concatenation_restores_records(document: dict[str, Any]) -> None:
    chunks = split_package(document)

    for name, block in document["processes"].items():
        joined = [record for chunk in chunks for record in records_of(chunk, name)]
        assert joined == block["records"]


@PROPERTY_SETTINGS
@given(document=packages())
def test_split_keeps_envelope_and_mode(document: dict[str, Any]) -> None:
    chunks = split_package(document)

    for chunk in chunks:
        for field in ("code", "syncId", "source", "chunkLoad"):
            assert chunk[field] == document[field]
        for name, block in chunk["processes"].items():
            assert block.get("mode") == document["processes"][name].get("mode")


@PROPERTY_SETTINGS
@given(document=packages())
def test_split_chunks_pass_gate(gate: F008Gate, document: dict[str, Any]) -> None:
    chunks = split_package(document)

    for chunk in chunks:
        accepted = gate.check_bytes(orjson.dumps(chunk), "application/json")
        assert chunk["checksum"] == processes_checksum(chunk["processes"])
        assert accepted.envelope.chunk_index == chunk["chunk"]["index"]
        assert accepted.envelope.chunk_count == len(chunks)


@PROPERTY_SETTINGS
@given(document=packages())
def test_split_leaves_input_unchanged(document: dict[str, Any]) -> None:
    original = copy.deepcopy(document)

    split_package(document)

    assert document == original


def test_split_users_example_in_three() -> None:
    document = load_example("sync-users-ares.json")

    chunks = split_package(document)

    assert [len(records_of(chunk, "users_pos")) for chunk in chunks] == [100, 100, 50]
    assert [chunk["chunk"] for chunk in chunks] == [
        {"index": 0, "count": 3},
        {"index": 1, "count": 3},
        {"index": 2, "count": 3},
    ]


def test_split_chunk_changed_after_split(gate: F008Gate) -> None:
    chunk = split_package(load_example("sync-users-ares.json"))[1]
    row = chunk["processes"]["users_pos"]["records"][0]
    row["active"] = not row["active"]

    with pytest.raises(PackageRejected) as caught:
        gate.check_bytes(orjson.dumps(chunk), "application/json")

    assert caught.value.reason == Reason.CHECKSUM_MISMATCH
