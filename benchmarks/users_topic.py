"""UserPos records as the processor writes them, produced fast to a users-pos facade topic.

Keys are `{cdnId}:{restaurantId}:{userId}`, values are Avro single-object UserPos records
from `codec_for("UserPos")`, and every record carries the headers of a processed package:
`mxp-sync-id`, `mxp-source`, `mxp-chunk`, `content-type`, `mxp-process` and
`mxp-source-version`. Each restaurant's users come from one sync in chunks of 100, as
the HTTP facade splits an Ares sync. Records go out with `create_batch`/`send_batch`,
one batch per partition, to the partition Kafka's murmur2 picks for the key.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sync_stream.codec.avro import codec_for
from sync_stream.distribution import headers as h
from sync_stream.kafka.clients import create_producer
from sync_stream.kafka.partitioner import murmur2
from sync_stream.settings import Settings

USERS_PER_CHUNK = 100
CHAINS = 10
# Batches of 1 MiB instead of the service's 256 KiB, so a large backlog takes fewer requests.
BATCH_BYTES = 1024 * 1024
# Batches sent before the writer waits for their acknowledgements, to bound memory.
BATCHES_IN_FLIGHT = 64
FIRST_NAMES = ("Tomás", "Lucía", "Carlos", "María", "José", "Ana", "Jorge", "Sofía", "Luis")
LAST_NAMES = ("Quispe", "Pérez", "Mamani", "García", "Rojas", "Flores", "Torres", "Vargas")
PROFILES = ("cajero", "gerente_de_tienda", "cocinero", "supervisor_de_turno", "repartidor")
# 2026-11-25T00:00:00Z in epoch milliseconds. Users get update times in the following week.
BASE_UPDATED_MS = 1_795_564_800_000


@dataclass(frozen=True, slots=True)
class Restaurant:
    cdn_id: str
    restaurant_id: str


@dataclass(frozen=True, slots=True)
class WriteResult:
    """Records, value and key bytes, and seconds of one `write_users` call."""

    records: int
    value_bytes: int
    key_bytes: int
    seconds: float


def make_restaurants(count: int, seed: int = 7) -> list[Restaurant]:
    """Return `count` restaurants spread over up to CHAINS chains (CDN ids)."""
    rng = random.Random(seed)
    chains = [_uuid(rng) for _ in range(min(CHAINS, count))]
    return [Restaurant(chains[index % len(chains)], _uuid(rng)) for index in range(count)]


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _format_utc_ms(epoch_ms: int) -> str:
    seconds, millis = divmod(epoch_ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def user_records(
    restaurants: list[Restaurant], users_per_restaurant: int, seed: int = 11
) -> Iterator[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
    """Yield (key, value, headers) of every user of every restaurant."""
    codec = codec_for("UserPos")
    rng = random.Random(seed)
    chunks = max(1, -(-users_per_restaurant // USERS_PER_CHUNK))
    for restaurant in restaurants:
        sync_id = _uuid(rng)
        for index in range(users_per_restaurant):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            user_id = f"EMP-{10000 + index}"
            version = BASE_UPDATED_MS + rng.randrange(7 * 86_400_000)
            value = codec.encode(
                {
                    "userId": user_id,
                    "cdnId": restaurant.cdn_id,
                    "restaurantId": restaurant.restaurant_id,
                    "userName": f"{first[0]}{last}".lower(),
                    "fullName": f"{first} {last}",
                    "profile": rng.choice(PROFILES),
                    "status": "active" if rng.random() < 0.9 else "inactive",
                    "updatedAt": _format_utc_ms(version),
                }
            )
            key = f"{restaurant.cdn_id}:{restaurant.restaurant_id}:{user_id}".encode()
            headers = [
                *h.package_headers(sync_id, "http", index // USERS_PER_CHUNK, chunks),
                (h.PROCESS, b"users_pos"),
                (h.SOURCE_VERSION, str(version).encode()),
            ]
            yield key, value, headers


async def write_users(
    settings: Settings, topic: str, restaurants: list[Restaurant], users_per_restaurant: int
) -> WriteResult:
    """Produce every user of `restaurants` to `topic` and wait for every acknowledgement."""
    producer = create_producer(settings.kafka, max_batch_size=BATCH_BYTES)
    await producer.start()
    started = time.monotonic()
    records = value_bytes = key_bytes = 0
    try:
        partitions = sorted(await producer.partitions_for(topic))
        batches = {p: producer.create_batch() for p in partitions}
        pending: list[asyncio.Future[Any]] = []
        for key, value, headers in user_records(restaurants, users_per_restaurant):
            partition = partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]
            batch = batches[partition]
            if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                pending.append(await producer.send_batch(batch, topic, partition=partition))
                batch = batches[partition] = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None, headers=headers)
                if len(pending) >= BATCHES_IN_FLIGHT:
                    await _acknowledged(pending)
            records += 1
            value_bytes += len(value)
            key_bytes += len(key)
        for partition, batch in batches.items():
            if batch.record_count():
                pending.append(await producer.send_batch(batch, topic, partition=partition))
        await _acknowledged(pending)
    finally:
        await producer.stop()
    return WriteResult(records, value_bytes, key_bytes, time.monotonic() - started)


async def _acknowledged(pending: list[asyncio.Future[Any]]) -> None:
    await asyncio.gather(*pending)
    pending.clear()
