"""Helpers of the HTTP API tests: run the service or an app on a loopback port."""

from __future__ import annotations

import asyncio
import copy
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from sync_stream.api.server import build_server, start_server
from sync_stream.kafka.topics import create_topics
from sync_stream.service import Role, Service
from sync_stream.settings import Settings
from tests.integration.conftest import load_example, wait_for

TOKEN = "test-token-4f9c2b7e1d"
LOOPBACK = "127.0.0.1"


async def api_settings(make_settings: Callable[..., Settings], **overrides: Any) -> Settings:
    """Settings with a free API port and one token; the topics are created."""
    api = {"host": LOOPBACK, "port": 0, "tokens": [TOKEN]}
    api.update(overrides.pop("api", {}))
    settings = make_settings(api=api, **overrides)
    await create_topics(settings)
    return settings


def client(base_url: str, token: str | None = TOKEN) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30.0)


@asynccontextmanager
async def running_service(settings: Settings, role: Role = "all") -> AsyncIterator[Service]:
    """Run the service as `sync-stream run --role ROLE` does, until the block ends."""
    async with Service(settings, role).running() as service:
        yield service


@asynccontextmanager
async def running_app(app: FastAPI) -> AsyncIterator[str]:
    """Serve an app on a free loopback port; yield its base URL."""
    server = build_server(app, LOOPBACK, 0, shutdown_timeout_s=5)
    task = await start_server(server)
    try:
        yield f"http://{LOOPBACK}:{server.port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


def base_url(service: Service) -> str:
    assert service.server is not None
    return f"http://{LOOPBACK}:{service.server.port}"


async def wait_ready(http: httpx.AsyncClient, timeout_s: float = 30.0) -> None:
    async def ready() -> bool:
        return (await http.get("/readyz")).status_code == 200

    await wait_for(ready, timeout_s, "/readyz to answer 200")


def users_example() -> dict[str, Any]:
    return copy.deepcopy(load_example("sync-users-ares.json"))


def user_ids_by_restaurant(package: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    """The userIds the package leaves in each restaurant (rows marked deleted excluded)."""
    found: dict[tuple[str, str], set[str]] = defaultdict(set)
    for row in package["processes"]["users_pos"]["records"]:
        restaurant = (row["cdnId"], row["restaurantId"])
        found[restaurant]
        if not row.get("deleted"):
            found[restaurant].add(row["employeeId"])
    return dict(found)


async def users_of(http: httpx.AsyncClient, restaurant: tuple[str, str]) -> list[dict[str, Any]]:
    response = await http.get(
        "/api/users_pos", params={"cdn_id": restaurant[0], "restaurant_id": restaurant[1]}
    )
    assert response.status_code == 200, response.text
    users: list[dict[str, Any]] = response.json()["details"]
    return users


async def wait_for_users(
    http: httpx.AsyncClient,
    restaurant: tuple[str, str],
    expected: set[str],
    timeout_s: float = 30.0,
) -> list[dict[str, Any]]:
    """Poll GET /api/users_pos until the restaurant's userIds are exactly `expected`."""
    users: list[dict[str, Any]] = []

    async def matches() -> bool:
        nonlocal users
        users = await users_of(http, restaurant)
        return {user["userId"] for user in users} == expected

    await wait_for(
        matches, timeout_s, f"users of {restaurant[1]} to be the {len(expected)} expected"
    )
    return users


async def wait_for_sync_state(
    http: httpx.AsyncClient, sync_id: str, state: str, timeout_s: float = 30.0
) -> dict[str, Any]:
    details: dict[str, Any] = {}

    async def reached() -> bool:
        nonlocal details
        response = await http.get(f"/api/v1/syncs/{sync_id}")
        if response.status_code != 200:
            return False
        details = response.json()["details"]
        return details["state"] == state

    await wait_for(reached, timeout_s, f"sync {sync_id} to be {state}")
    return details
