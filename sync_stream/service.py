"""Run the service's roles in one process: the processor, the HTTP API, or both."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Literal

import structlog
from prometheus_client import start_http_server

from sync_stream.kafka.topics import create_topics
from sync_stream.observability.metrics import Metrics
from sync_stream.runtime.processor import Processor
from sync_stream.settings import Settings

log = structlog.get_logger(__name__)

Role = Literal["processor", "api", "all"]


async def run_service(settings: Settings, role: str) -> None:
    """Run until SIGTERM or SIGINT, then drain, commit and leave the group."""
    from sync_stream.cli.app import install_stop_handlers

    metrics = Metrics()
    if settings.create_topics_on_start:
        await create_topics(settings)
    if settings.metrics_port is not None and role == "processor":
        start_http_server(settings.metrics_port, registry=metrics.registry)
        log.info("metrics served", port=settings.metrics_port)

    processor = Processor(settings, metrics)
    await processor.start()
    install_stop_handlers(processor.request_stop)
    log.info("service started", role=role)
    try:
        await processor.run()
    finally:
        with contextlib.suppress(asyncio.CancelledError):
            await processor.stop()
        log.info("service stopped", role=role)
