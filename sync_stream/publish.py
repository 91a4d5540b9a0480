"""Publish ETL packages to a module topic, split into chunks the way the HTTP facade does."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata

from sync_stream.codec.canonical import processes_checksum
from sync_stream.distribution import headers as h
from sync_stream.kafka.clients import create_producer
from sync_stream.settings import Settings

JSON = b"application/json"


def split_package(package: dict[str, Any]) -> list[dict[str, Any]]:
    """Split a package into chunks of at most chunkLoad records per process.

    Chunk i takes records [i*chunkLoad, (i+1)*chunkLoad) of every process; a process with
    fewer records appears only in the chunks that still have some. Every chunk gets
    `chunk` and `checksum` fields. The input must already have passed the F008 gate's
    structure checks (chunkLoad >= 1, processes with record lists).
    """
    load = int(package["chunkLoad"])
    processes: dict[str, Any] = package["processes"]
    count = max((math.ceil(len(b["records"]) / load) for b in processes.values()), default=1)
    count = max(count, 1)
    chunks = []
    for index in range(count):
        part: dict[str, Any] = {}
        for name, block in processes.items():
            records = block["records"][index * load : (index + 1) * load]
            if records or count == 1:
                part[name] = {**block, "records": records}
        chunk = {
            key: value
            for key, value in package.items()
            if key not in ("processes", "chunk", "checksum")
        }
        chunk["chunk"] = {"index": index, "count": count}
        chunk["processes"] = part
        chunk["checksum"] = processes_checksum(part)
        chunks.append(chunk)
    return chunks


def package_headers(package: dict[str, Any], content_type: bytes = JSON) -> list[tuple[str, bytes]]:
    headers = [(h.CONTENT_TYPE, content_type)]
    sync_id = package.get("syncId")
    if isinstance(sync_id, str):
        headers.append((h.SYNC_ID, sync_id.encode()))
    return headers


async def publish_package(
    producer: AIOKafkaProducer, topic: str, package: dict[str, Any]
) -> RecordMetadata:
    """Send one package as JSON, keyed by syncId, and wait for the acknowledgement."""
    key = str(package.get("syncId", "")).encode() or None
    future = await producer.send(
        topic, orjson.dumps(package), key=key, headers=package_headers(package)
    )
    return await future


async def send_file(
    settings: Settings, path: Path, source: str, *, split: bool
) -> list[RecordMetadata]:
    """Publish a package file to a source module's topic.

    Without `split` the file's bytes go out unchanged; with it, the package is parsed and
    sent as chunks of chunkLoad records.
    """
    raw = await asyncio.to_thread(path.read_bytes)
    topic = settings.topics.source_topic(source)
    producer = create_producer(settings.kafka)
    await producer.start()
    try:
        if split:
            return [
                await publish_package(producer, topic, chunk)
                for chunk in split_package(orjson.loads(raw))
            ]
        return [await publish_bytes(producer, topic, raw)]
    finally:
        await producer.stop()


async def publish_bytes(
    producer: AIOKafkaProducer, topic: str, raw: bytes, content_type: bytes = JSON
) -> RecordMetadata:
    """Send a value as it is, keyed by its syncId when it parses as a package."""
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        document = None
    sync_id = document.get("syncId") if isinstance(document, dict) else None
    key = sync_id.encode() if isinstance(sync_id, str) else None
    headers = [(h.CONTENT_TYPE, content_type)]
    if key:
        headers.append((h.SYNC_ID, key))
    future = await producer.send(topic, raw, key=key, headers=headers)
    return await future
