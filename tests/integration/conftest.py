"""Fixtures and helpers for tests that talk to the broker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from sync_stream.kafka.clients import create_producer
from sync_stream.kafka.reader import read_topic
from sync_stream.kafka.topics import create_topics
from sync_stream.settings import Settings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

pytestmark = pytest.mark.integration


def load_example(name: str) -> dict[str, Any]:
    document: dict[str, Any] = orjson.loads((EXAMPLES / name).read_bytes())
    return document


@pytest.fixture
async def topics(settings: Settings) -> Settings:
    await create_topics(settings)
    return settings


@pytest.fixture
async def producer(settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    client = create_producer(settings.kafka)
    await client.start()
    yield client
    await client.stop()


async def wait_for(
    condition: Callable[[], Awaitable[bool]],
    timeout_s: float = 30.0,
    message: str = "condition",
    poll_s: float = 0.1,
) -> None:
    """Poll an async condition every poll_s seconds; fail the test after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {message}")
        await asyncio.sleep(poll_s)


async def wait_for_count(
    settings: Settings, topic: str, count: int, timeout_s: float = 30.0
) -> list[Any]:
    """Read a topic until it contains at least `count` records; return them."""
    records: list[Any] = []

    async def enough() -> bool:
        nonlocal records
        records = await read_topic(settings.kafka, topic)
        return len(records) >= count

    await wait_for(enough, timeout_s, f"{count} records on {topic}")
    return records


async def wait_for_keys(
    settings: Settings, topic: str, keys: set[bytes], timeout_s: float = 60.0
) -> list[Any]:
    """Read a topic until every key in `keys` is on it; duplicates do not count twice."""
    records: list[Any] = []

    async def complete() -> bool:
        nonlocal records
        records = await read_topic(settings.kafka, topic)
        return keys <= {record.key for record in records}

    await wait_for(complete, timeout_s, f"{len(keys)} distinct keys on {topic}")
    return records
