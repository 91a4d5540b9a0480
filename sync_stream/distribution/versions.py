"""Keep retried and replayed outputs from overwriting newer data on a facade.

One follower per facade topic reads it from the beginning and keeps, per key, the highest
source version seen (the `mxp-source-version` header: build number, or updatedAt in epoch
milliseconds). A tombstone keeps its version too, so an older update cannot bring a removed
user back. A follower starts with the first retried record for its topic, so a processor
that never retries never reads the facades.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import structlog

from sync_stream.distribution import headers as h
from sync_stream.errors import DistributionFailed
from sync_stream.kafka.follower import FollowerNotCaughtUp, TopicFollower
from sync_stream.observability.metrics import Metrics
from sync_stream.runtime.pipeline import Outgoing
from sync_stream.settings import Settings

log = structlog.get_logger(__name__)

CATCH_UP_TIMEOUT_S = 60.0
# A short fetch wait keeps each catch-up to a few tens of milliseconds on an idle facade.
FETCH_MAX_WAIT_MS = 20


class _VersionFollower(TopicFollower):
    """Highest source version per key of one facade topic."""

    def __init__(self, settings: Settings, topic: str) -> None:
        super().__init__(
            settings, topic, name=f"versions:{topic}", fetch_max_wait_ms=FETCH_MAX_WAIT_MS
        )
        self.versions: dict[bytes, int] = {}

    def apply(self, record: Any) -> None:
        version = h.source_version(record.headers)
        if version is None or record.key is None:
            return
        held = self.versions.get(record.key)
        if held is None or version > held:
            self.versions[record.key] = version


class FacadeVersions:
    """Highest source version per key of every facade topic; implements StaleFilter."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self._metrics = metrics
        self._followers = {
            settings.topics.facade_topic(facade): _VersionFollower(
                settings, settings.topics.facade_topic(facade)
            )
            for facade in settings.facades
        }

    def version_of(self, topic: str, key: bytes) -> int | None:
        return self._followers[topic].versions.get(key)

    async def fresh(self, outgoing: Sequence[Outgoing]) -> list[Outgoing]:
        """Return the outputs not older than what their facade holds; count the others."""
        followers = [self._followers[topic] for topic in {out.topic for out in outgoing}]
        for follower in followers:
            await follower.ensure_started()
        try:
            await asyncio.gather(*(f.wait_caught_up(CATCH_UP_TIMEOUT_S) for f in followers))
        except FollowerNotCaughtUp as exc:
            raise DistributionFailed(
                exc.message, retriable=True, reason="version_index_behind"
            ) from None

        kept = []
        for out in outgoing:
            held = self._followers[out.topic].versions.get(out.key)
            if held is not None and out.version < held:
                self._metrics.stale_dropped.labels(out.facade).inc()
                log.info(
                    "stale output dropped",
                    facade=out.facade,
                    held_version=held,
                    output_version=out.version,
                )
                continue
            kept.append(out)
        return kept

    async def stop(self) -> None:
        for follower in self._followers.values():
            await follower.stop()
