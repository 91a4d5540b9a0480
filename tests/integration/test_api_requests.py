"""Bad requests get the documented 4xx with a reason, never a 5xx and never their values."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
from aiokafka.errors import KafkaConnectionError

from sync_stream.api import create_app
from sync_stream.settings import Settings
from tests.integration.api_helpers import (
    api_settings,
    base_url,
    client,
    running_app,
    running_service,
    users_example,
    wait_ready,
)

pytestmark = pytest.mark.integration

MAX_BODY_BYTES = 100 * 1024
CDN = "bc2d8ada-e25e-1bb7-55fe-32d1205ac4af"
RESTAURANT = "e17d03da-b8b6-f424-febc-3a767b6401bb"


def small_package(**changes: Any) -> dict[str, Any]:
    package = users_example()
    package["processes"]["users_pos"]["records"] = package["processes"]["users_pos"]["records"][:5]
    package.update(changes)
    return package


def assert_error(response: Any, code: int, reason: str) -> dict[str, Any]:
    assert response.status_code == code, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert body["status"] == "error"
    assert body["details"]["reason"] == reason
    assert body["message"]
    return body


async def test_bad_users_pos_parameters_get_400(make_settings: Callable[..., Settings]) -> None:
    settings = await api_settings(make_settings)
    cases: list[tuple[dict[str, str], set[str]]] = [
        ({}, {"cdn_id", "restaurant_id"}),
        ({"restaurant_id": RESTAURANT}, {"cdn_id"}),
        ({"cdn_id": CDN}, {"restaurant_id"}),
        ({"cdn_id": "not-a-uuid-xyz", "restaurant_id": RESTAURANT}, {"cdn_id"}),
        ({"cdn_id": CDN, "restaurant_id": "12345"}, {"restaurant_id"}),
        ({"cdn_id": "", "restaurant_id": ""}, {"cdn_id", "restaurant_id"}),
    ]
    async with running_service(settings, "api") as service, client(base_url(service)) as http:
        await wait_ready(http)
        for params, fields in cases:
            response = await http.get("/api/users_pos", params=params)
            body = assert_error(response, 400, "invalid_parameter")
            assert {e["field"] for e in body["details"]["errors"]} == fields, params
            assert "not-a-uuid-xyz" not in response.text
            assert "12345" not in response.text


@pytest.fixture
async def api_url(make_settings: Callable[..., Settings]) -> AsyncIterator[str]:
    settings = await api_settings(
        make_settings, api={"max_body_bytes": MAX_BODY_BYTES}, limits={"max_chunks": 2}
    )
    async with running_service(settings, "api") as service:
        yield base_url(service)


@pytest.mark.parametrize(
    ("package", "reason"),
    [
        (small_package(code="F009"), "invalid_code"),
        (small_package(chunkLoad=0), "chunk_load_out_of_range"),
        (small_package(chunkLoad=-5), "chunk_load_out_of_range"),
        (small_package(chunkLoad="many"), "invalid_structure"),
        (small_package(syncId="sync-1"), "invalid_sync_id"),
        (small_package(source="ftp"), "unknown_source"),
        (small_package(processes={}), "no_processes"),
        (small_package(processes={"menu_items": {"records": []}}), "unknown_process"),
        (small_package(extra_field=1), "invalid_structure"),
        (small_package(checksum="sha256:" + "0" * 64), "checksum_mismatch"),
        (small_package(chunk={"index": 2, "count": 2}), "invalid_chunk"),
        ([1, 2, 3], "invalid_structure"),
        (users_example() | {"chunkLoad": 50}, "invalid_chunk"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
async def test_bad_package_gets_422(api_url: str, package: Any, reason: str) -> None:
    async with client(api_url) as http:
        response = await http.post("/api/v1/facade", json=package)
    assert_error(response, 422, reason)


async def test_bad_record_names_body_index(api_url: str) -> None:
    package = users_example()
    rows = package["processes"]["users_pos"]["records"]
    del rows[150]["updatedAt"]
    rows[200]["active"] = "sí-quizás"
    async with client(api_url) as http:
        response = await http.post("/api/v1/facade", json=package)
    body = assert_error(response, 422, "invalid_record")
    assert "processes.users_pos.records.150.updatedAt" in body["message"]
    fields = [error["field"] for error in body["details"]["errors"]]
    assert fields == [
        "processes.users_pos.records.150.updatedAt",
        "processes.users_pos.records.200.active",
    ]
    assert "sí-quizás" not in response.text


async def test_bad_structure_names_fields(api_url: str) -> None:
    package = small_package(chunkLoad="many", extra_field="secret-ish")
    del package["syncId"]
    async with client(api_url) as http:
        response = await http.post("/api/v1/facade", json=package)
    body = assert_error(response, 422, "invalid_structure")
    fields = {error["field"] for error in body["details"]["errors"]}
    assert fields == {"syncId", "chunkLoad", "extra_field"}
    assert "secret-ish" not in response.text
    assert "many" not in response.text


async def test_transformer_failure_gets_422(api_url: str) -> None:
    package = small_package()
    package["processes"]["users_pos"]["records"][3]["updatedAt"] = "yesterday"
    async with client(api_url) as http:
        response = await http.post("/api/v1/facade", json=package)
    body = assert_error(response, 422, "invalid_users_pos")
    assert body["message"].startswith("T121 rejected the package")
    assert "records[3]" in body["message"]


async def test_malformed_bodies_get_400(api_url: str) -> None:
    cases = [
        (b"", "empty_value"),
        (b"{not json", "invalid_json"),
        (b'{"code": "F008", "syncId": "\xff\xfe"}', "invalid_json"),
        (b"[" * 5000 + b"]" * 5000, "invalid_json"),
    ]
    async with client(api_url) as http:
        for content, reason in cases:
            response = await http.post(
                "/api/v1/facade", content=content, headers={"content-type": "application/json"}
            )
            assert_error(response, 400, reason)
            assert "not json" not in response.text


async def test_large_body_gets_413(api_url: str) -> None:
    package = users_example()
    package["processes"]["users_pos"]["records"] *= 2
    raw = orjson.dumps(package)
    assert len(raw) > MAX_BODY_BYTES

    async def chunked() -> AsyncIterator[bytes]:
        for start in range(0, len(raw), 4096):
            yield raw[start : start + 4096]

    async with client(api_url) as http:
        declared = await http.post("/api/v1/facade", content=raw)
        streamed = await http.post("/api/v1/facade", content=chunked())

    assert "content-length" in {k.lower() for k in declared.request.headers}
    assert_error(declared, 413, "body_too_large")
    assert streamed.request.headers.get("transfer-encoding") == "chunked"
    assert_error(streamed, 413, "body_too_large")


async def test_chunk_over_package_limit_gets_422(make_settings: Callable[..., Settings]) -> None:
    settings = await api_settings(make_settings, limits={"max_package_bytes": 4096})
    async with running_service(settings, "api") as service, client(base_url(service)) as http:
        response = await http.post("/api/v1/facade", json=users_example())
    body = assert_error(response, 422, "too_large")
    assert "lower chunkLoad" in body["message"]


async def test_unknown_sync_and_routes(api_url: str) -> None:
    async with client(api_url) as http:
        await wait_ready(http)
        unknown = await http.get(f"/api/v1/syncs/{uuid.uuid4()}")
        malformed = await http.get("/api/v1/syncs/not-a-sync")
        no_route = await http.get("/api/nothing-here")
        wrong_method = await http.get("/api/v1/facade")

    assert_error(unknown, 404, "sync_not_found")
    body = assert_error(malformed, 400, "invalid_parameter")
    assert body["details"]["errors"][0]["field"] == "sync_id"
    assert_error(no_route, 404, "not_found")
    assert_error(wrong_method, 405, "method_not_allowed")


class UnreachableKafka:
    """A producer whose sends fail as they do when no broker responds."""

    async def send(self, *args: Any, **kwargs: Any) -> Any:
        raise KafkaConnectionError("no broker")


async def test_kafka_failure_gets_503(make_settings: Callable[..., Settings]) -> None:
    settings = await api_settings(make_settings)
    app = create_app(settings, producer=UnreachableKafka())  # type: ignore[arg-type]
    async with running_app(app) as url, client(url) as http:
        response = await http.post("/api/v1/facade", json=small_package())
    assert_error(response, 503, "publish_failed")
    assert response.headers["retry-after"] == "5"
