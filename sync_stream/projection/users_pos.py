"""The users_pos projection: the compacted users-pos facade topic in memory.

Users are indexed by (cdnId, restaurantId). Each user costs one bytes object: a 16-byte
prefix (source version, last write time) followed by the record's Avro single-object
value, decoded only when read. A removed user keeps the prefix alone, so an older update
that arrives after its tombstone cannot bring it back.

Per key, the record with the highest source version (`mxp-source-version`: updatedAt in
epoch milliseconds) wins; on equal versions the later record in the log wins. Duplicates
are harmless.

NOTE: Kafka compaction keeps the last record per key by offset, not by version. If a
producer ever appends an older version after a newer one, a projection rebuilt after
compaction shows the older one. The processors' stale filter keeps retried records from
doing that.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import structlog

from sync_stream.codec.avro import codec_for
from sync_stream.distribution import headers as h
from sync_stream.errors import DecodeFailed
from sync_stream.kafka.follower import TopicFollower
from sync_stream.observability.metrics import Metrics
from sync_stream.settings import Settings

log = structlog.get_logger(__name__)

USERS_POS_FACADE = "users-pos"
# Source version, then the newest Kafka timestamp of any record of the key (epoch ms).
ENTRY_PREFIX = struct.Struct("<qq")
MAX_TRACKED_SYNCS = 10_000

Restaurant = tuple[str, str]


@dataclass(slots=True)
class SyncScope:
    """The facade topic's record of one sync: its first write and its restaurants."""

    first_write_ms: int
    restaurants: set[Restaurant] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class HeldUser:
    """A live user's key and source version in the projection."""

    key: bytes
    version: int


def split_key(key: bytes | None) -> tuple[str, str, str] | None:
    """Split a `{cdnId}:{restaurantId}:{userId}` key; None when it has another shape."""
    if key is None:
        return None
    parts = key.decode("utf-8", "replace").split(":", 2)
    if len(parts) != 3:
        return None
    return parts[0], parts[1], parts[2]


class UsersPosProjection(TopicFollower):
    """Every POS user of every restaurant, from the users-pos facade topic.

    `track_syncs` also keeps a `SyncScope` for the most recent syncs, which the full-sync
    removal needs; API-only processes leave it off.
    """

    def __init__(self, settings: Settings, metrics: Metrics, *, track_syncs: bool = False) -> None:
        super().__init__(
            settings, settings.topics.facade_topic(USERS_POS_FACADE), name="users_pos projection"
        )
        self._metrics = metrics
        self._codec = codec_for("UserPos")
        self._restaurants: dict[Restaurant, dict[str, bytes]] = {}
        # Per restaurant, how many applied records changed what `users` returns for it.
        self._revisions: dict[Restaurant, int] = {}
        self._live_users = 0
        self._track_syncs = track_syncs
        self._syncs: OrderedDict[str, SyncScope] = OrderedDict()
        metrics.projection_ready.set(0)
        metrics.projection_users.set(0)

    @property
    def user_count(self) -> int:
        return self._live_users

    def on_ready(self) -> None:
        self._metrics.projection_ready.set(1)

    async def stop(self) -> None:
        await super().stop()
        self._metrics.projection_ready.set(0)

    def apply(self, record: Any) -> None:
        key = split_key(record.key)
        if key is None:
            log.warning(
                "record skipped: key is not cdnId:restaurantId:userId",
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
            )
            return
        cdn_id, restaurant_id, user_id = key
        value: bytes | None = record.value
        if value is not None and not value.startswith(self._codec.header):
            log.warning(
                "record skipped: value is not a UserPos single-object value",
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
            )
            return

        restaurant_key = (cdn_id, restaurant_id)
        if self._track_syncs:
            self._track_sync(record, restaurant_key)
        restaurant = self._restaurants.setdefault(restaurant_key, {})
        current = restaurant.get(user_id)
        version = h.source_version(record.headers)
        written_ms: int = record.timestamp
        was_live = False

        if current is not None:
            current_version, current_written_ms = ENTRY_PREFIX.unpack_from(current)
            written_ms = max(written_ms, current_written_ms)
            was_live = len(current) > ENTRY_PREFIX.size
            if version is None:
                version = current_version
            elif version < current_version:
                # An older version: the current data stays, but the write still counts as a
                # mention of the user (full syncs keep users written after they began).
                current_value = current[ENTRY_PREFIX.size :]
                restaurant[user_id] = ENTRY_PREFIX.pack(current_version, written_ms) + current_value
                return

        restaurant[user_id] = ENTRY_PREFIX.pack(version or 0, written_ms) + (value or b"")
        self._revisions[restaurant_key] = self._revisions.get(restaurant_key, 0) + 1
        self._live_users += (value is not None) - was_live
        self._metrics.projection_users.set(self._live_users)

    def _track_sync(self, record: Any, restaurant: Restaurant) -> None:
        sync_id = h.header_text(record.headers, h.SYNC_ID)
        if sync_id is None:
            return
        scope = self._syncs.get(sync_id)
        if scope is None:
            scope = self._syncs[sync_id] = SyncScope(first_write_ms=record.timestamp)
            if len(self._syncs) > MAX_TRACKED_SYNCS:
                self._syncs.popitem(last=False)
        else:
            scope.first_write_ms = min(scope.first_write_ms, record.timestamp)
            self._syncs.move_to_end(sync_id)
        scope.restaurants.add(restaurant)

    def revision(self, cdn_id: str, restaurant_id: str) -> int:
        """Return a number that grows whenever `users` of this restaurant may change.

        It is 0 for a restaurant the projection has never seen, which has no users.
        """
        return self._revisions.get((cdn_id, restaurant_id), 0)

    def users(self, cdn_id: str, restaurant_id: str) -> list[dict[str, Any]]:
        """Return the UserPos records of one restaurant, ordered by userId."""
        restaurant = self._restaurants.get((cdn_id, restaurant_id))
        if not restaurant:
            return []
        users = []
        for user_id in sorted(restaurant):
            entry = restaurant[user_id]
            if len(entry) == ENTRY_PREFIX.size:
                continue
            try:
                users.append(self._codec.decode(entry[ENTRY_PREFIX.size :]))
            except DecodeFailed as exc:
                log.warning("user record not decoded", topic=self.topic, reason=exc.reason)
        return users

    def sync_scope(self, sync_id: str) -> SyncScope | None:
        """Return what the topic shows of a sync, or None (also when tracking is off)."""
        return self._syncs.get(sync_id)

    def users_written_before(
        self, restaurants: Iterable[Restaurant], cutoff_ms: int
    ) -> list[HeldUser]:
        """Return the live users of these restaurants with no record at or after cutoff_ms."""
        found = []
        for cdn_id, restaurant_id in restaurants:
            for user_id, entry in self._restaurants.get((cdn_id, restaurant_id), {}).items():
                if len(entry) == ENTRY_PREFIX.size:
                    continue
                version, written_ms = ENTRY_PREFIX.unpack_from(entry)
                if written_ms < cutoff_ms:
                    key = f"{cdn_id}:{restaurant_id}:{user_id}".encode()
                    found.append(HeldUser(key, version))
        return found
