"""Bearer tokens on every /api route, and tokens kept out of the logs."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

import pytest
import structlog

from sync_stream.settings import Settings
from tests.integration.api_helpers import (
    TOKEN,
    api_settings,
    base_url,
    client,
    running_service,
    users_example,
    wait_ready,
)

pytestmark = pytest.mark.integration

WRONG_TOKEN = "wrong-token-8d1e5a"
SECOND_TOKEN = "second-token-73c0aa"


def api_requests() -> list[tuple[str, str]]:
    cdn, restaurant = uuid.uuid4(), uuid.uuid4()
    return [
        ("POST", "/api/v1/facade"),
        ("GET", f"/api/users_pos?cdn_id={cdn}&restaurant_id={restaurant}"),
        ("GET", f"/api/v1/syncs/{uuid.uuid4()}"),
    ]


BAD_HEADERS = [
    ({}, "missing_token"),
    ({"Authorization": ""}, "missing_token"),
    ({"Authorization": "Bearer"}, "malformed_token"),
    ({"Authorization": f"Token {TOKEN}"}, "malformed_token"),
    ({"Authorization": f"Basic {TOKEN}"}, "malformed_token"),
    ({"Authorization": TOKEN}, "malformed_token"),
    ({"Authorization": f"Bearer {WRONG_TOKEN}"}, "invalid_token"),
    ({"Authorization": f"Bearer {TOKEN}x"}, "invalid_token"),
    ({"Authorization": f"Bearer {TOKEN[:-1]}"}, "invalid_token"),
]


async def test_bad_tokens_get_401_everywhere(
    make_settings: Callable[..., Settings],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = await api_settings(make_settings, api={"tokens": [TOKEN, SECOND_TOKEN]})
    with structlog.testing.capture_logs() as events:
        async with running_service(settings, "api") as service:
            async with client(base_url(service), token=None) as http:
                for method, path in api_requests():
                    for headers, reason in BAD_HEADERS:
                        response = await http.request(
                            method, path, headers=headers, json=users_example()
                        )
                        assert response.status_code == 401, (method, path, headers)
                        body = response.json()
                        assert body["code"] == 401
                        assert body["status"] == "error"
                        assert body["details"]["reason"] == reason, headers
                        assert response.headers["www-authenticate"] == "Bearer"
                        assert TOKEN not in response.text
                        assert WRONG_TOKEN not in response.text

            async with client(base_url(service), token=SECOND_TOKEN) as http:
                await wait_ready(http)
                response = await http.get(api_requests()[1][1])
                assert response.status_code == 200
            async with client(base_url(service), token=None) as http:
                response = await http.get(
                    api_requests()[1][1], headers={"Authorization": f"bearer {TOKEN}"}
                )
                assert response.status_code == 200

    logged = "\n".join(
        [repr(event) for event in events]
        + [record.getMessage() for record in caplog.records]
        + list(capfd.readouterr())
    )
    assert logged, "nothing was captured, so the check below would prove nothing"
    for secret in (TOKEN, SECOND_TOKEN, WRONG_TOKEN):
        assert secret not in logged


async def test_no_configured_token_rejects_all(make_settings: Callable[..., Settings]) -> None:
    settings = await api_settings(make_settings, api={"tokens": [""]})
    async with running_service(settings, "api") as service, client(base_url(service), None) as http:
        for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Bearer x"}):
            response = await http.get(api_requests()[1][1], headers=headers)
            assert response.status_code == 401


async def test_probes_and_metrics_need_no_token(make_settings: Callable[..., Settings]) -> None:
    settings = await api_settings(make_settings)
    async with (
        running_service(settings, "api") as service,
        client(base_url(service), token=None) as http,
    ):
        await wait_ready(http)
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/readyz")).status_code == 200
        assert (await http.get(api_requests()[1][1])).status_code == 401
        metrics = await http.get("/metrics")

    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    assert (
        'mxp_sync_http_requests_total{method="GET",route="/api/users_pos",status="401"} 1.0'
        in metrics.text
    )
    assert 'route="/readyz"' in metrics.text
    assert "mxp_sync_projection_ready 1.0" in metrics.text
