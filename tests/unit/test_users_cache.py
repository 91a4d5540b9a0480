"""The per-restaurant response cache of GET /api/users_pos."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import orjson

from sync_stream.api.users_cache import UsersResponseCache
from sync_stream.codec.avro import codec_for
from sync_stream.distribution import headers as h
from sync_stream.observability.metrics import Metrics
from sync_stream.projection.users_pos import UsersPosProjection
from sync_stream.settings import load_settings

CDN = "bc2d8ada-e25e-1bb7-55fe-32d1205ac4af"
RESTAURANTS = ["e17d03da-b8b6-f424-febc-3a767b6401bb", "4a5c9f10-2d3e-4b6a-9c1d-7e8f9a0b1c2d"]


def user_record(
    restaurant: str, user_id: str, full_name: str, version: int, offset: int = 0
) -> Any:
    value = codec_for("UserPos").encode(
        {
            "userId": user_id,
            "cdnId": CDN,
            "restaurantId": restaurant,
            "userName": "u",
            "fullName": full_name,
            "profile": "cajero",
            "status": "active",
            "updatedAt": "2026-11-20T10:00:00.000Z",
        }
    )
    return SimpleNamespace(
        topic="users",
        partition=0,
        offset=offset,
        timestamp=1_000 + offset,
        key=f"{CDN}:{restaurant}:{user_id}".encode(),
        value=value,
        headers=[(h.SOURCE_VERSION, str(version).encode())],
    )


def projection() -> UsersPosProjection:
    return UsersPosProjection(load_settings(), Metrics())


def names(body: bytes) -> list[str]:
    return [user["fullName"] for user in orjson.loads(body)["details"]]


def test_cache_body_follows_updates() -> None:
    users = projection()
    cache = UsersResponseCache()
    users.apply(user_record(RESTAURANTS[0], "E1", "Ana Quispe", 1))

    first = cache.body(users, CDN, RESTAURANTS[0])
    assert names(first) == ["Ana Quispe"]
    assert cache.body(users, CDN, RESTAURANTS[0]) is first

    users.apply(user_record(RESTAURANTS[0], "E1", "Ana Paredes", 2, offset=1))
    assert names(cache.body(users, CDN, RESTAURANTS[0])) == ["Ana Paredes"]


def test_cache_skips_unknown_restaurant() -> None:
    cache = UsersResponseCache()
    body = cache.body(projection(), CDN, RESTAURANTS[1])
    assert orjson.loads(body)["details"] == []
    assert cache.size_bytes == 0


def test_cache_evicts_least_recently_used() -> None:
    users = projection()
    for index, restaurant in enumerate(RESTAURANTS):
        users.apply(user_record(restaurant, f"E{index}", "Luis Andrade", 1, offset=index))
    cache = UsersResponseCache()
    first = cache.body(users, CDN, RESTAURANTS[0])
    cache.max_bytes = cache.size_bytes + 10  # room for one body only

    cache.body(users, CDN, RESTAURANTS[1])
    assert cache.size_bytes <= cache.max_bytes

    again = cache.body(users, CDN, RESTAURANTS[0])
    assert again == first
    assert again is not first, "the first restaurant's body should have been evicted"
