"""The users_pos projection on a real broker: versions, tombstones, restarts, replicas."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from sync_stream.api import create_app
from sync_stream.codec.avro import codec_for
from sync_stream.distribution import headers as h
from sync_stream.embedded.broker import free_port
from sync_stream.observability.metrics import Metrics
from sync_stream.projection.users_pos import UsersPosProjection
from sync_stream.settings import Settings
from tests.integration.api_helpers import (
    LOOPBACK,
    TOKEN,
    api_settings,
    base_url,
    client,
    running_app,
    running_service,
    user_ids_by_restaurant,
    users_example,
    users_of,
    wait_for_sync_state,
    wait_for_users,
    wait_ready,
)
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration

CDN = "bc2d8ada-e25e-1bb7-55fe-32d1205ac4af"
RESTAURANT = "e17d03da-b8b6-f424-febc-3a767b6401bb"


def user_value(user_id: str, full_name: str, updated_at: str) -> bytes:
    return codec_for("UserPos").encode(
        {
            "userId": user_id,
            "cdnId": CDN,
            "restaurantId": RESTAURANT,
            "userName": user_id.lower(),
            "fullName": full_name,
            "profile": "cajero",
            "status": "active",
            "updatedAt": updated_at,
        }
    )


async def produce_user(
    producer: AIOKafkaProducer,
    settings: Settings,
    user_id: str,
    version: int,
    value: bytes | None,
) -> None:
    headers = [
        (h.SYNC_ID, str(uuid.uuid4()).encode()),
        (h.SOURCE_VERSION, str(version).encode()),
    ]
    future = await producer.send(
        settings.topics.facade_topic("users-pos"),
        value,
        key=f"{CDN}:{RESTAURANT}:{user_id}".encode(),
        headers=headers,
    )
    await future


async def test_newest_version_wins(topics: Settings, producer: AIOKafkaProducer) -> None:
    settings = topics
    newer = user_value("U1", "Ana Newer", "2026-12-02T00:00:00.000Z")
    older = user_value("U1", "Ana Older", "2026-12-01T00:00:00.000Z")
    await produce_user(producer, settings, "U1", 2000, newer)
    await produce_user(producer, settings, "U1", 1000, older)
    await produce_user(producer, settings, "U1", 2000, newer)
    await produce_user(producer, settings, "U2", 1000, user_value("U2", "Bea", "x"))
    await produce_user(producer, settings, "U2", 3000, None)
    await produce_user(producer, settings, "U2", 2000, user_value("U2", "Bea Old", "x"))
    await produce_user(producer, settings, "U3", 1000, user_value("U3", "Carla", "x"))

    metrics = Metrics()
    projection = UsersPosProjection(settings, metrics)
    async with projection:
        await projection.wait_ready(30)
        users = projection.users(CDN, RESTAURANT)

        # A later version of a removed user brings it back; the same version does too.
        await produce_user(producer, settings, "U2", 3000, user_value("U2", "Bea Back", "x"))
        await projection.wait_caught_up(30)
        back = projection.users(CDN, RESTAURANT)

    assert [(u["userId"], u["fullName"]) for u in users] == [("U1", "Ana Newer"), ("U3", "Carla")]
    assert [(u["userId"], u["fullName"]) for u in back] == [
        ("U1", "Ana Newer"),
        ("U2", "Bea Back"),
        ("U3", "Carla"),
    ]
    assert metrics.projection_users._value.get() == 3
    assert metrics.projection_ready._value.get() == 0


async def test_empty_topic_is_ready(topics: Settings) -> None:
    metrics = Metrics()
    async with UsersPosProjection(topics, metrics) as projection:
        await projection.wait_ready(30)
        assert projection.users(CDN, RESTAURANT) == []
        assert metrics.projection_ready._value.get() == 1


async def test_replicas_hold_the_same_users(topics: Settings, producer: AIOKafkaProducer) -> None:
    for index in range(20):
        user_id = f"U{index:02d}"
        await produce_user(producer, topics, user_id, 1, user_value(user_id, "N", "x"))
    replicas = [UsersPosProjection(topics, Metrics()) for _ in range(2)]
    for replica in replicas:
        await replica.start()
    try:
        for replica in replicas:
            await replica.wait_ready(30)
        answers = [replica.users(CDN, RESTAURANT) for replica in replicas]
    finally:
        for replica in replicas:
            await replica.stop()
    assert len(answers[0]) == 20
    assert answers[0] == answers[1]


async def test_new_app_rebuilds_after_503(make_settings: Callable[..., Settings]) -> None:
    settings = await api_settings(make_settings)
    package = users_example()
    expected = user_ids_by_restaurant(package)
    async with running_service(settings) as service, client(base_url(service)) as http:
        await wait_ready(http)
        assert (await http.post("/api/v1/facade", json=package)).status_code == 202
        await wait_for_sync_state(http, package["syncId"], "completed")
        answers = {r: await wait_for_users(http, r, ids) for r, ids in expected.items()}

    # A new API instance whose projection has not read the topic yet.
    metrics = Metrics()
    projection = UsersPosProjection(settings, metrics)
    app = create_app(settings, metrics, projection=projection)
    restaurant = next(iter(expected))
    params = {"cdn_id": restaurant[0], "restaurant_id": restaurant[1]}
    async with running_app(app) as url, client(url) as http:
        loading = await http.get("/api/users_pos", params=params)
        not_ready = await http.get("/readyz")
        await projection.start()
        try:
            await wait_ready(http)
            rebuilt = {r: await users_of(http, r) for r in expected}
        finally:
            await projection.stop()

    assert loading.status_code == 503
    assert loading.json()["details"]["reason"] == "projection_loading"
    assert loading.headers["retry-after"] == "2"
    assert not_ready.status_code == 503
    assert not_ready.json()["details"]["checks"]["projection_ready"] is False
    assert rebuilt == answers


async def test_api_process_serves_same_users(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = await api_settings(make_settings)
    package = users_example()
    restaurant, user_ids = next(iter(user_ids_by_restaurant(package).items()))
    async with running_service(settings) as service, client(base_url(service)) as http:
        await wait_ready(http)
        assert (await http.post("/api/v1/facade", json=package)).status_code == 202
        answer = await wait_for_users(http, restaurant, user_ids)

    port = free_port()
    env = {
        **os.environ,
        "SYNC_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "SYNC_TOPICS__PREFIX": settings.topics.prefix,
        "SYNC_API__HOST": LOOPBACK,
        "SYNC_API__PORT": str(port),
        "SYNC_API__TOKENS": f'["{TOKEN}"]',
        "SYNC_LOG_FORMAT": "json",
    }
    log_path = tmp_path / "api.log"
    with log_path.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "sync_stream",
            "run",
            "--role",
            "api",
            env=env,
            stdout=log_file,
            stderr=log_file,
        )
        try:
            async with client(f"http://{LOOPBACK}:{port}") as http:

                async def answering() -> bool:
                    assert process.returncode is None, "the api process exited"
                    try:
                        return (await http.get("/readyz")).status_code == 200
                    except httpx.TransportError:
                        return False

                await wait_for(answering, 30, "the api process to be ready")
                served = await users_of(http, restaurant)
                checks = (await http.get("/healthz")).json()["details"]["checks"]
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 30)

    output = log_path.read_bytes()
    assert checks == {"projection_follower": True, "status_follower": True}
    assert served == answer
    assert process.returncode == 0, output.decode()[-2000:]
    assert b'"role": "api"' in output
    assert TOKEN.encode() not in output


async def test_full_sync_completes_after_restart(make_settings: Callable[..., Settings]) -> None:
    """A processor restarted between the chunks of a full sync still removes the users the
    sync did not name, even when the last chunk carries no users_pos records."""
    # The restarted member waits for the group to drop the first one: keep that short.
    settings = await api_settings(
        make_settings, kafka={"session_timeout_ms": 3000, "heartbeat_interval_ms": 500}
    )
    row = users_example()["processes"]["users_pos"]["records"][0]
    restaurant = (row["cdnId"], row["restaurantId"])
    rows = {name: {**row, "employeeId": name} for name in ("KEPT", "GONE")}
    printers = [
        {
            "printerId": "PRN-9",
            "cdnId": row["cdnId"],
            "restaurantId": row["restaurantId"],
            "name": "Caja",
            "model": "EPSON TM-T20",
            "station": "caja",
            "connection": {"type": "usb"},
            "paperWidthMm": 80,
            "updatedAt": "2026-11-29T18:00:00Z",
        }
    ]
    sync_id = str(uuid.uuid4())
    first: dict[str, Any] = {
        "code": "F008",
        "syncId": sync_id,
        "chunkLoad": 10,
        "chunk": {"index": 0, "count": 2},
        "processes": {"users_pos": {"mode": "full", "records": [rows["KEPT"]]}},
    }
    last = {
        **first,
        "chunk": {"index": 1, "count": 2},
        "processes": {"printers": {"records": printers}},
    }

    async with running_service(settings) as service, client(base_url(service)) as http:
        await wait_ready(http)
        seed = {**first, "syncId": str(uuid.uuid4())}
        seed.pop("chunk")
        seed["processes"] = {"users_pos": {"records": list(rows.values())}}
        assert (await http.post("/api/v1/facade", json=seed)).status_code == 202
        await wait_for_users(http, restaurant, {"KEPT", "GONE"})
        assert (await http.post("/api/v1/facade", json=first)).status_code == 202
        await wait_for_sync_state(http, sync_id, "in_progress")

    async with running_service(settings) as service, client(base_url(service)) as http:
        await wait_ready(http)
        assert (await http.post("/api/v1/facade", json=last)).status_code == 202
        status = await wait_for_sync_state(http, sync_id, "completed")
        users = await wait_for_users(http, restaurant, {"KEPT"})

    assert status["doneChunks"] == [0, 1]
    assert [u["userId"] for u in users] == ["KEPT"]
