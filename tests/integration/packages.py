"""Build ETL packages for tests: users with chosen ids and versions."""

from __future__ import annotations

import uuid
from typing import Any

CDN_ID = "bc2d8ada-e25e-1bb7-55fe-32d1205ac4af"
RESTAURANT_ID = "e17d03da-b8b6-f424-febc-3a767b6401bb"


def user_row(
    employee_id: str,
    *,
    updated_at: str = "2026-11-20T10:00:00Z",
    first_name: str = "Ana",
    last_name: str = "Quispe",
    restaurant_id: str = RESTAURANT_ID,
    deleted: bool = False,
) -> dict[str, Any]:
    return {
        "employeeId": employee_id,
        "cdnId": CDN_ID,
        "restaurantId": restaurant_id,
        "firstName": first_name,
        "lastName": last_name,
        "position": "Cajero",
        "active": True,
        "updatedAt": updated_at,
        "deleted": deleted,
    }


def users_package(
    rows: list[dict[str, Any]],
    *,
    sync_id: str | None = None,
    chunk_load: int = 100,
    source: str = "http",
) -> dict[str, Any]:
    return {
        "code": "F008",
        "syncId": sync_id or str(uuid.uuid4()),
        "source": source,
        "chunkLoad": chunk_load,
        "processes": {"users_pos": {"mode": "delta", "records": rows}},
    }


def user_key(row: dict[str, Any]) -> bytes:
    return f"{row['cdnId']}:{row['restaurantId']}:{row['employeeId']}".encode()


def many_users_packages(
    count: int, per_package: int = 100, prefix: str = "E"
) -> list[dict[str, Any]]:
    """`count` packages of distinct users, `per_package` each."""
    return [
        users_package([user_row(f"{prefix}{p:04d}-{i:03d}") for i in range(per_package)])
        for p in range(count)
    ]
