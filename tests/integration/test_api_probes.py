"""/healthz and /readyz follow the consume loop, the partition assignment and the followers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from sync_stream.api import create_app
from sync_stream.observability.metrics import Metrics
from sync_stream.runtime.processor import Processor
from sync_stream.settings import Settings
from tests.integration.api_helpers import api_settings, client, running_app
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration


async def probe(http: Any, path: str) -> tuple[int, dict[str, bool]]:
    response = await http.get(path)
    checks: dict[str, bool] = response.json()["details"]["checks"]
    return response.status_code, checks


async def test_probes_follow_the_consume_loop(make_settings: Callable[..., Settings]) -> None:
    settings = await api_settings(make_settings, api={"loop_stale_after_ms": 1000})
    metrics = Metrics()
    processor = Processor(settings, metrics)
    app = create_app(settings, metrics, processor=processor)
    async with running_app(app) as url, client(url, token=None) as http:
        before_start = await probe(http, "/healthz")
        await processor.__aenter__()
        try:

            async def ready() -> bool:
                # The loop completes its first iteration once the group has assigned it.
                looped = processor.last_loop_at > 0
                return looped and (await http.get("/readyz")).status_code == 200

            await wait_for(ready, 30, "/readyz to answer 200")
            ready_checks = await probe(http, "/readyz")
            alive = await probe(http, "/healthz")
            # The consume loop ends while the app keeps serving.
            processor.request_stop()
            assert processor.run_task is not None
            await asyncio.wait_for(asyncio.shield(processor.run_task), 30)
            died = await probe(http, "/healthz")
            await asyncio.sleep(1.2)  # longer than loop_stale_after_ms
            stale = await probe(http, "/healthz")
        finally:
            await processor.__aexit__(None, None, None)

    assert before_start[0] == 503
    assert before_start[1]["consume_loop_running"] is False
    assert ready_checks == (
        200,
        {"projection_ready": True, "sync_status_ready": True, "partitions_assigned": True},
    )
    assert alive == (
        200,
        {
            "projection_follower": True,
            "status_follower": True,
            "consume_loop_running": True,
            "consume_loop_recent": True,
        },
    )
    assert died[0] == 503
    assert died[1]["consume_loop_running"] is False
    assert stale[1]["consume_loop_recent"] is False
