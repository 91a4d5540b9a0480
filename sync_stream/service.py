"""Run the service's roles in one process: the processor, the HTTP API, or both.

Every role reads the status topic and the users_pos facade into memory. The processor
needs them for sync statuses and full-sync removals, the API to serve them. With role
`all` the API and the processor share one projection, one status store and one producer,
and uvicorn serves in the processor's event loop.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, Literal, cast

import structlog
from aiokafka import AIOKafkaProducer
from prometheus_client import start_http_server

from sync_stream.api.app import create_app
from sync_stream.api.server import ApiServer, build_server, start_server
from sync_stream.errors import SyncStreamError
from sync_stream.kafka.clients import create_producer
from sync_stream.kafka.topics import create_topics
from sync_stream.observability.metrics import Metrics
from sync_stream.projection.full_sync import FullSyncRemover
from sync_stream.projection.users_pos import UsersPosProjection
from sync_stream.runtime.handler import PackageObserver
from sync_stream.runtime.processor import Processor
from sync_stream.settings import Settings
from sync_stream.status.store import SyncStatusStore
from sync_stream.status.tracker import SyncStatusTracker

log = structlog.get_logger(__name__)

Role = Literal["processor", "api", "all"]
GC_GENERATION0_THRESHOLD = 50_000


def package_observers(
    settings: Settings,
    metrics: Metrics,
    producer: AIOKafkaProducer,
    projection: UsersPosProjection,
    statuses: SyncStatusStore,
) -> Sequence[PackageObserver]:
    """Return the processor's observers in the order they must run.

    The status tracker comes first: the full-sync removal reads the status it has just
    written to tell whether every chunk is in.
    """
    return [
        SyncStatusTracker(settings, statuses, producer, metrics),
        FullSyncRemover(settings, projection, statuses, producer, metrics),
    ]


class Service:
    """The components of one process for a role; `run()` serves until `request_stop()`."""

    def __init__(self, settings: Settings, role: Role, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.role = role
        self.metrics = metrics or Metrics()
        self.processor: Processor | None = None
        self.server: ApiServer | None = None
        self.statuses: SyncStatusStore | None = None
        self.projection: UsersPosProjection | None = None
        self._stop = asyncio.Event()
        self._started = asyncio.Event()

    def request_stop(self) -> None:
        """Ask run() to stop; safe from a signal handler."""
        self._stop.set()
        if self.processor is not None:
            self.processor.request_stop()
        if self.server is not None:
            self.server.should_exit = True

    async def run(self) -> None:
        """Start the role's components, wait for a stop or a failure, then stop them all.

        Raise the processor's error when its consume loop dies, so the process exits and
        its supervisor restarts it.
        """
        settings, metrics = self.settings, self.metrics
        async with AsyncExitStack() as stack:
            producer = create_producer(settings.kafka)
            await producer.start()
            stack.push_async_callback(producer.stop)
            statuses = self.statuses = SyncStatusStore(settings)
            projection = self.projection = UsersPosProjection(
                settings, metrics, track_syncs=self.role != "api"
            )
            await statuses.start()
            stack.push_async_callback(statuses.stop)
            # The API serves the projection. A processor needs it only to complete a full
            # sync, so without the API it starts reading the facade at the first one.
            if self.role != "processor":
                await projection.start()
            stack.push_async_callback(projection.stop)

            stop_requested = asyncio.create_task(self._stop.wait(), name="stop-requested")
            waits: list[asyncio.Future[Any]] = [stop_requested]
            if self.role in ("processor", "all"):
                observers = package_observers(settings, metrics, producer, projection, statuses)
                self.processor = Processor(
                    settings, metrics, observers=observers, producer=producer
                )
                await stack.enter_async_context(self.processor)
                assert self.processor.run_task is not None
                waits.append(self.processor.run_task)
            if self.role in ("api", "all"):
                app = create_app(
                    settings,
                    metrics,
                    projection=projection,
                    statuses=statuses,
                    processor=self.processor,
                    producer=producer,
                )
                self.server = build_server(
                    app,
                    settings.api.host,
                    settings.api.port,
                    shutdown_timeout_s=settings.shutdown_timeout_ms / 1000,
                )
                server_task = await start_server(self.server)
                stack.push_async_callback(self._stop_server, server_task)
                waits.append(server_task)
                log.info("api listening", host=settings.api.host, port=self.server.port)

            log.info("service started", role=self.role)
            self._started.set()
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            self.request_stop()
            stop_requested.cancel()
        log.info("service stopped", role=self.role)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Service]:
        """Run in a background task for the duration of the block, then stop.

        Raise what stopped the service if it ends before it has started.
        """
        task = asyncio.create_task(self.run(), name=f"service-{self.role}")
        started = asyncio.create_task(self._started.wait(), name="service-started")
        await asyncio.wait({task, started}, return_when=asyncio.FIRST_COMPLETED)
        if not started.done():
            started.cancel()
            task.result()
            raise SyncStreamError("the service stopped during start-up")
        try:
            yield self
        finally:
            self.request_stop()
            await task

    async def _stop_server(self, task: asyncio.Task[None]) -> None:
        assert self.server is not None
        self.server.should_exit = True
        await task


async def run_service(settings: Settings, role: str) -> None:
    """Run until SIGTERM or SIGINT, then drain, commit and leave the group."""
    from sync_stream.cli.app import install_stop_handlers

    if role not in ("processor", "api", "all"):
        raise ValueError(f"unknown role {role!r}")
    service = Service(settings, cast(Role, role))
    if settings.create_topics_on_start:
        await create_topics(settings)
    if settings.metrics_port is not None and role == "processor":
        start_http_server(settings.metrics_port, registry=service.metrics.registry)
        log.info("metrics served", port=settings.metrics_port)
    install_stop_handlers(service.request_stop)
    # The pipeline allocates many short-lived objects per record, and at the default
    # generation-0 threshold of 700 the collector runs thousands of times a second. Moving
    # start-up objects out of its reach and collecting less often cut CPU per record by
    # about a fifth in benchmarks/ (docs/benchmarks.md), for some tens of MiB more memory.
    gc.freeze()
    gc.set_threshold(GC_GENERATION0_THRESHOLD, 20, 100)
    await service.run()
