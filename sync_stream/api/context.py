"""State shared by the routes of one app: settings, metrics and the running components."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer
from fastapi import Request

from sync_stream.api.errors import ApiError
from sync_stream.api.facade import FacadePublisher
from sync_stream.api.users_cache import UsersResponseCache
from sync_stream.observability.metrics import Metrics
from sync_stream.projection.users_pos import UsersPosProjection
from sync_stream.runtime.processor import Processor
from sync_stream.settings import Settings
from sync_stream.status.store import SyncStatusStore


@dataclass
class ApiContext:
    """Components the app uses; those left None at creation are started by its lifespan."""

    settings: Settings
    metrics: Metrics
    publisher: FacadePublisher
    projection: UsersPosProjection | None = None
    statuses: SyncStatusStore | None = None
    processor: Processor | None = None
    producer: AIOKafkaProducer | None = None
    started_at: float = field(default_factory=time.time)
    users_cache: UsersResponseCache = field(default_factory=UsersResponseCache)

    def ready_projection(self) -> UsersPosProjection:
        """Return the projection, or raise 503 while it is still reading the topic."""
        if self.projection is None or not self.projection.ready:
            raise ApiError(
                503,
                "projection_loading",
                "the users_pos projection is still loading; retry shortly",
                headers={"Retry-After": "2"},
            )
        return self.projection

    def ready_statuses(self) -> SyncStatusStore:
        if self.statuses is None or not self.statuses.ready:
            raise ApiError(
                503,
                "status_loading",
                "the sync status store is still loading; retry shortly",
                headers={"Retry-After": "2"},
            )
        return self.statuses

    def liveness(self) -> dict[str, bool]:
        """Checks that fail when a background loop died or is stuck."""
        checks = {
            "projection_follower": self.projection is not None and self.projection.healthy,
            "status_follower": self.statuses is not None and self.statuses.healthy,
        }
        processor = self.processor
        if processor is not None:
            task = processor.run_task
            checks["consume_loop_running"] = task is not None and not task.done()
            stale_after_s = self.settings.api.loop_stale_after_ms / 1000
            # The first iteration ends once the group has assigned partitions, so until then
            # the age counts from the app's start.
            last_loop = processor.last_loop_at or self.started_at
            checks["consume_loop_recent"] = time.time() - last_loop <= stale_after_s
        return checks

    def readiness(self) -> dict[str, bool]:
        checks = {
            "projection_ready": self.projection is not None and self.projection.ready,
            "sync_status_ready": self.statuses is not None and self.statuses.ready,
        }
        if self.processor is not None:
            checks["partitions_assigned"] = bool(self.processor.assignment)
        return checks


async def get_context(request: Request) -> ApiContext:
    # A coroutine, because FastAPI runs a plain function dependency in a worker thread.
    context: ApiContext = request.app.state.context
    return context
