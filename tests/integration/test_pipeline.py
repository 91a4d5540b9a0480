"""The pipeline end to end on a real broker: examples in, facade records and DLQ entries out."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from sync_stream.codec.avro import codec_for
from sync_stream.distribution import headers as h
from sync_stream.gate.decode import encode_avro_package
from sync_stream.kafka.reader import read_topic
from sync_stream.observability.metrics import Metrics
from sync_stream.publish import publish_bytes, publish_package, split_package
from sync_stream.runtime.processor import Processor
from sync_stream.settings import Settings
from tests.integration.conftest import EXAMPLES, load_example, wait_for_count

pytestmark = pytest.mark.integration


def header_map(record: Any) -> dict[str, str]:
    return {key: value.decode() for key, value in record.headers}


async def test_users_sync_reaches_users_pos_facade(
    topics: Settings, producer: AIOKafkaProducer
) -> None:
    settings = topics
    users = load_example("sync-users-ares.json")
    rows = users["processes"]["users_pos"]["records"]
    chunks = split_package(users)
    assert [len(c["processes"]["users_pos"]["records"]) for c in chunks] == [100, 100, 50]

    async with Processor(settings, Metrics()):
        for chunk in chunks:
            await publish_package(producer, settings.topics.source_topic("http"), chunk)
        records = await wait_for_count(settings, settings.topics.facade_topic("users-pos"), 250)

    assert len(records) == 250
    by_key = {r.key.decode(): r for r in records}
    codec = codec_for("UserPos")
    for row in rows:
        key = f"{row['cdnId']}:{row['restaurantId']}:{row['employeeId']}"
        record = by_key[key]
        user = codec.decode(record.value)
        assert user["userId"] == row["employeeId"]
        assert user["restaurantId"] == row["restaurantId"]
        assert user["status"] == ("active" if row["active"] else "inactive")
        assert user["fullName"] == f"{row['firstName']} {row['lastName']}"
        assert row["pin"] not in record.value.decode("latin-1").split('"')
        headers = header_map(record)
        assert headers[h.SYNC_ID] == users["syncId"]
        assert headers[h.SOURCE] == "http"
        assert headers[h.PROCESS] == "users_pos"
        assert headers[h.CONTENT_TYPE] == "avro/binary"
        assert headers[h.CHUNK] in {"0/3", "1/3", "2/3"}


async def test_generic_package_reaches_build_and_printer_facades(
    topics: Settings, producer: AIOKafkaProducer
) -> None:
    settings = topics
    generic = load_example("sync-generic.json")
    async with Processor(settings, Metrics()):
        await publish_package(producer, settings.topics.source_topic("fe-build"), generic)
        printers = await wait_for_count(settings, settings.topics.facade_topic("printer"), 4)
        fe_build = await wait_for_count(settings, settings.topics.facade_topic("fe-build"), 2)
        pos = await wait_for_count(settings, settings.topics.facade_topic("pos"), 2)

    expected_builds = {
        f"{b['module']}:{b['version']}:{b['buildNumber']}"
        for b in generic["processes"]["build_info"]["records"]
    }
    assert {r.key.decode() for r in fe_build} == expected_builds
    assert {r.key.decode() for r in pos} == expected_builds
    assert {r.value for r in fe_build} == {r.value for r in pos}
    build = codec_for("BuildInfo").decode(fe_build[0].value)
    assert build["builtAt"] == "2026-11-30T14:15:00Z"
    assert header_map(fe_build[0])[h.CHUNK] == "0/1"

    expected_printers = {
        f"{p['cdnId']}:{p['restaurantId']}:{p['printerId']}"
        for p in generic["processes"]["printers"]["records"]
    }
    assert {r.key.decode() for r in printers} == expected_printers
    printer = codec_for("PrinterConfig").decode(printers[0].value)
    assert printer["connectionType"] == "network"
    assert header_map(printers[0])[h.SOURCE_VERSION].isdigit()


async def test_avro_package_is_accepted(topics: Settings, producer: AIOKafkaProducer) -> None:
    settings = topics
    generic = load_example("sync-generic.json")
    package = {
        **generic,
        "source": "printer",
        "syncId": str(uuid.uuid4()),
        "processes": {"printers": generic["processes"]["printers"]},
    }
    async with Processor(settings, Metrics()):
        await publish_bytes(
            producer,
            settings.topics.source_topic("printer"),
            encode_avro_package(package),
            content_type=b"avro/binary",
        )
        printers = await wait_for_count(settings, settings.topics.facade_topic("printer"), 4)
    assert {header_map(r)[h.SYNC_ID] for r in printers} == {package["syncId"]}


def invalid_cases() -> list[tuple[str, bytes, bytes, str]]:
    """(label, value, content-type, expected reason) for every rejection the DLQ must show."""
    cases = [
        (
            path.stem,
            path.read_bytes(),
            b"application/json",
            {"t080_failure": "invalid_build_info", "t121_failure": "invalid_users_pos"}.get(
                path.stem, path.stem
            ),
        )
        for path in sorted((EXAMPLES / "invalid").glob("*.json"))
    ]
    generic = (EXAMPLES / "sync-generic.json").read_bytes()
    avro = encode_avro_package(orjson.loads(generic))
    cases += [
        (
            "too_large",
            b'{"x": "' + b"y" * (2 * 1024 * 1024) + b'"}',
            b"application/json",
            "too_large",
        ),
        ("unsupported_content_type", generic, b"text/csv", "unsupported_content_type"),
        ("invalid_avro", b"\xc3\x01" + b"\x00" * 8 + avro[10:], b"avro/binary", "invalid_avro"),
        (
            "invalid_utf8",
            b'{"code": "F008", "syncId": "\xff\xfe"}',
            b"application/json",
            "invalid_json",
        ),
        ("deep_json", b"[" * 5000 + b"]" * 5000, b"application/json", "invalid_json"),
    ]
    return cases


async def test_invalid_packages_land_in_dlq_intact(
    topics: Settings, producer: AIOKafkaProducer
) -> None:
    settings = topics
    cases = invalid_cases()
    topic = settings.topics.source_topic("fe-build")
    sent: dict[int, tuple[str, bytes, str]] = {}
    metrics = Metrics()
    async with Processor(settings, metrics):
        for label, value, content_type, reason in cases:
            meta = await publish_bytes(producer, topic, value, content_type=content_type)
            assert meta.partition is not None
            sent[meta.offset * 100 + meta.partition] = (label, value, reason)
        dead = await wait_for_count(settings, settings.topics.dlq_topic, len(cases))

    assert len(dead) == len(cases)
    for record in dead:
        headers = header_map(record)
        original = int(headers[h.ORIGINAL_OFFSET]) * 100 + int(headers[h.ORIGINAL_PARTITION])
        label, value, reason = sent[original]
        assert record.value == value, label
        assert headers[h.ERROR_REASON] == reason, label
        assert headers[h.ORIGINAL_TOPIC] == topic
        assert headers[h.ATTEMPT] == "1"
        for name in (
            h.ERROR_STAGE,
            h.ERROR_CLASS,
            h.ERROR_MESSAGE,
            h.ORIGINAL_TIMESTAMP,
            h.FIRST_FAILED_AT,
        ):
            assert headers.get(name), f"{label}: {name} missing"
        assert len(headers[h.ERROR_MESSAGE].encode()) <= 1024
        assert h.RETRY_DUE_AT not in headers

    for facade in settings.facades:
        assert await read_topic(settings.kafka, settings.topics.facade_topic(facade)) == []


@pytest.mark.parametrize("example", ["t121_failure.json", "t080_failure.json"])
async def test_transformer_failure_distributes_nothing(
    topics: Settings, producer: AIOKafkaProducer, example: str
) -> None:
    settings = topics
    package = load_example(f"invalid/{example}")
    metrics = Metrics()
    async with Processor(settings, metrics):
        await publish_package(producer, settings.topics.source_topic("init"), package)
        dead = await wait_for_count(settings, settings.topics.dlq_topic, 1)
    stage = header_map(dead[0])[h.ERROR_STAGE]
    assert stage == ("T121" if example.startswith("t121") else "T080")
    assert (
        metrics.transform_failures.labels(stage, header_map(dead[0])[h.ERROR_REASON])._value.get()
        == 1
    )
    for facade in settings.facades:
        assert await read_topic(settings.kafka, settings.topics.facade_topic(facade)) == []
