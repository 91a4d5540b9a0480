"""The HTTP API end to end: real HTTP on loopback, the processor and a real broker."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from sync_stream.settings import Settings
from tests.integration.api_helpers import (
    api_settings,
    base_url,
    client,
    running_service,
    user_ids_by_restaurant,
    users_example,
    users_of,
    wait_for_sync_state,
    wait_for_users,
    wait_ready,
)

pytestmark = pytest.mark.integration


def delta(
    rows: list[dict[str, Any]], *, mode: str = "delta", chunk_load: int = 100
) -> dict[str, Any]:
    return {
        "code": "F008",
        "syncId": str(uuid.uuid4()),
        "chunkLoad": chunk_load,
        "processes": {"users_pos": {"mode": mode, "records": rows}},
    }


async def test_users_sync_served_per_restaurant(make_settings: Callable[..., Settings]) -> None:
    settings = await api_settings(make_settings)
    package = users_example()
    expected = user_ids_by_restaurant(package)
    assert len(expected) == 3

    async with running_service(settings) as service, client(base_url(service)) as http:
        await wait_ready(http)
        response = await http.post("/api/v1/facade", json=package)
        assert response.status_code == 202, response.text
        body = response.json()
        assert body["code"] == 202
        assert body["status"] == "accepted"
        assert body["details"] == {"syncId": package["syncId"], "chunks": 3}

        for restaurant, user_ids in expected.items():
            users = await wait_for_users(http, restaurant, user_ids)
            assert [u["userId"] for u in users] == sorted(user_ids)
            assert {(u["cdnId"], u["restaurantId"]) for u in users} == {restaurant}
        response = await http.get(
            "/api/users_pos",
            params={"cdn_id": next(iter(expected))[0], "restaurant_id": next(iter(expected))[1]},
        )
        assert response.json()["message"] == "Data retrieved successfully"
        assert response.json()["status"] == "success"

        status = await wait_for_sync_state(http, package["syncId"], "completed")
        assert status["chunksExpected"] == 3
        assert status["chunksDone"] == 3
        assert status["doneChunks"] == [0, 1, 2]
        assert status["chunksFailed"] == 0
        assert status["source"] == "http"
        assert status["buildMetadataOk"] is False
        assert status["firstUpdate"] <= status["lastUpdate"]


async def test_unknown_restaurant_gets_empty_list(make_settings: Callable[..., Settings]) -> None:
    settings = await api_settings(make_settings)
    async with running_service(settings, "api") as service, client(base_url(service)) as http:
        await wait_ready(http)
        response = await http.get(
            "/api/users_pos",
            params={"cdn_id": str(uuid.uuid4()), "restaurant_id": str(uuid.uuid4())},
        )
    assert response.status_code == 200
    assert response.json() == {
        "code": 200,
        "status": "success",
        "message": "Data retrieved successfully",
        "details": [],
    }


async def test_delta_update_and_deletion_show_up(make_settings: Callable[..., Settings]) -> None:
    settings = await api_settings(make_settings)
    package = users_example()
    rows = package["processes"]["users_pos"]["records"]
    restaurant = (rows[0]["cdnId"], rows[0]["restaurantId"])
    in_restaurant = [r for r in rows if (r["cdnId"], r["restaurantId"]) == restaurant]
    updated = {
        **in_restaurant[0],
        "position": "Jefe de cocina",
        "active": True,
        "updatedAt": "2026-12-01T09:00:00-05:00",
    }
    deleted = {**in_restaurant[1], "deleted": True, "updatedAt": "2026-12-01T09:00:00-05:00"}

    async with running_service(settings) as service, client(base_url(service)) as http:
        await wait_ready(http)
        assert (await http.post("/api/v1/facade", json=package)).status_code == 202
        before = user_ids_by_restaurant(package)[restaurant]
        await wait_for_users(http, restaurant, before)

        change = delta([updated, deleted])
        response = await http.post("/api/v1/facade", json=change)
        assert response.status_code == 202
        assert response.json()["details"]["chunks"] == 1
        users = await wait_for_users(http, restaurant, before - {deleted["employeeId"]})
        await wait_for_sync_state(http, change["syncId"], "completed")

    user = next(u for u in users if u["userId"] == updated["employeeId"])
    assert user["profile"] == "jefe_de_cocina"
    assert user["status"] == "active"
    assert user["updatedAt"] == "2026-12-01T14:00:00.000Z"


async def test_older_update_does_not_win(make_settings: Callable[..., Settings]) -> None:
    settings = await api_settings(make_settings)
    row = users_example()["processes"]["users_pos"]["records"][0]
    restaurant = (row["cdnId"], row["restaurantId"])
    newer = {**row, "position": "Gerente", "updatedAt": "2026-12-02T10:00:00Z"}
    older = {**row, "position": "Cajero", "updatedAt": "2026-12-01T10:00:00Z"}

    async with running_service(settings) as service, client(base_url(service)) as http:
        await wait_ready(http)
        first = delta([newer])
        assert (await http.post("/api/v1/facade", json=first)).status_code == 202
        await wait_for_sync_state(http, first["syncId"], "completed")
        second = delta([older])
        assert (await http.post("/api/v1/facade", json=second)).status_code == 202
        await wait_for_sync_state(http, second["syncId"], "completed")
        users = await wait_for_users(http, restaurant, {row["employeeId"]})

    assert users[0]["profile"] == "gerente"


async def test_full_sync_removes_unnamed_users(make_settings: Callable[..., Settings]) -> None:
    settings = await api_settings(make_settings)
    package = users_example()
    rows = package["processes"]["users_pos"]["records"]
    omitted = [rows[5], rows[130]]
    expected = user_ids_by_restaurant(package)

    async with running_service(settings) as service, client(base_url(service)) as http:
        await wait_ready(http)
        assert (await http.post("/api/v1/facade", json=package)).status_code == 202
        await wait_for_sync_state(http, package["syncId"], "completed")
        for restaurant, user_ids in expected.items():
            await wait_for_users(http, restaurant, user_ids)

        full = delta([r for r in rows if r not in omitted], mode="full")
        response = await http.post("/api/v1/facade", json=full)
        assert response.json()["details"]["chunks"] == 3
        status = await wait_for_sync_state(http, full["syncId"], "completed")
        assert status["doneChunks"] == [0, 1, 2]

        for row in omitted:
            expected[(row["cdnId"], row["restaurantId"])].discard(row["employeeId"])
        for restaurant, user_ids in expected.items():
            await wait_for_users(http, restaurant, user_ids)
        total = sum([len(await users_of(http, r)) for r in expected])

    assert total == 248


async def test_full_sync_keeps_newer_delta_user(make_settings: Callable[..., Settings]) -> None:
    settings = await api_settings(make_settings)
    row = users_example()["processes"]["users_pos"]["records"][0]
    restaurant = (row["cdnId"], row["restaurantId"])
    rows = {name: {**row, "employeeId": name} for name in ("OLD", "NAMED-1", "NAMED-2", "LATER")}

    async with running_service(settings) as service, client(base_url(service)) as http:
        await wait_ready(http)
        first = delta([rows["OLD"], rows["NAMED-1"]])
        assert (await http.post("/api/v1/facade", json=first)).status_code == 202
        await wait_for_users(http, restaurant, {"OLD", "NAMED-1"})

        # The full sync comes as two chunks that the caller split itself. A delta adding
        # LATER is distributed between them, so LATER is newer than the full list.
        full = delta([rows["NAMED-1"]], mode="full")
        full["chunk"] = {"index": 0, "count": 2}
        assert (await http.post("/api/v1/facade", json=full)).status_code == 202
        status = await wait_for_sync_state(http, full["syncId"], "in_progress")
        assert status["doneChunks"] == [0]
        newer = delta([rows["LATER"]])
        assert (await http.post("/api/v1/facade", json=newer)).status_code == 202
        await wait_for_sync_state(http, newer["syncId"], "completed")

        last = {**full, "chunk": {"index": 1, "count": 2}}
        last["processes"] = {"users_pos": {"mode": "full", "records": [rows["NAMED-2"]]}}
        assert (await http.post("/api/v1/facade", json=last)).status_code == 202
        await wait_for_sync_state(http, full["syncId"], "completed")

        users = await wait_for_users(http, restaurant, {"NAMED-1", "NAMED-2", "LATER"})

    assert len(users) == 3
