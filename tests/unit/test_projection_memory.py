"""Memory held by the users_pos projection per user, measured with tracemalloc."""

from __future__ import annotations

import gc
import tracemalloc
import uuid
from dataclasses import dataclass

from sync_stream.codec.avro import codec_for
from sync_stream.distribution import headers as h
from sync_stream.observability.metrics import Metrics
from sync_stream.projection.users_pos import UsersPosProjection
from sync_stream.settings import load_settings

USERS = 50_000
USERS_PER_RESTAURANT = 100
MAX_BYTES_PER_USER = 600


@dataclass(frozen=True, slots=True)
class FakeRecord:
    """The attributes of an aiokafka ConsumerRecord the projection reads."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]


def records(count: int) -> list[FakeRecord]:
    codec = codec_for("UserPos")
    cdn_id = str(uuid.uuid4())
    sync_id = str(uuid.uuid4()).encode()
    built = []
    restaurant_id = ""
    for index in range(count):
        if index % USERS_PER_RESTAURANT == 0:
            restaurant_id = str(uuid.uuid4())
        user_id = f"EMP-{1_000_000 + index}"
        value = codec.encode(
            {
                "userId": user_id,
                "cdnId": cdn_id,
                "restaurantId": restaurant_id,
                "userName": f"mgonzalez{index}",
                "fullName": "María José González Villacís",
                "profile": "gerente_de_tienda",
                "status": "active",
                "updatedAt": "2026-11-25T15:06:00.000Z",
            }
        )
        headers = (
            (h.SYNC_ID, sync_id),
            (h.SOURCE_VERSION, str(1_795_000_000_000 + index).encode()),
        )
        key = f"{cdn_id}:{restaurant_id}:{user_id}".encode()
        built.append(FakeRecord("users", 0, index, 1_796_000_000_000, key, value, headers))
    return built


def test_projection_memory_per_user() -> None:
    settings = load_settings(kafka={"bootstrap_servers": "127.0.0.1:9"})
    projection = UsersPosProjection(settings, Metrics(), track_syncs=True)
    batch = records(USERS)

    gc.collect()
    tracemalloc.start()
    before, _ = tracemalloc.get_traced_memory()
    for record in batch:
        projection.apply(record)
    gc.collect()
    after, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    per_user = (after - before) / USERS
    assert projection.user_count == USERS
    assert per_user <= MAX_BYTES_PER_USER, f"{per_user:.0f} bytes per user"
