"""Materialize a topic in memory: read it from the beginning, then keep following it.

A follower is a consumer without a group that assigns itself every partition, so every
process that runs one has the whole topic in memory, like a global table. It is ready once
its positions reach the high watermarks of the first fetch response of each partition.

NOTE: the end of a partition is the fetch high watermark, never ListOffsets, because the
embedded test broker returns wrong end offsets after multi-record batches. The consumer
reads uncommitted records: no producer of the followed topics is transactional yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from abc import ABC, abstractmethod
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from sync_stream.errors import SyncStreamError
from sync_stream.kafka.clients import create_consumer
from sync_stream.kafka.reader import at_end
from sync_stream.settings import Settings

log = structlog.get_logger(__name__)

FETCH_MAX_WAIT_MS = 100
MAX_RECORDS_PER_FETCH = 5000
METADATA_RETRY_S = 0.5
ERROR_BACKOFF_S = 1.0
CATCH_UP_WARN_S = 30.0


class FollowerNotCaughtUp(SyncStreamError):
    """The follower did not reach the end of its topic within the time allowed."""

    retriable = True


class TopicFollower(ABC):
    """Consume every partition of one topic from the beginning and apply each record.

    Subclasses implement `apply`. Use `async with` or call start/stop.
    """

    def __init__(
        self,
        settings: Settings,
        topic: str,
        *,
        name: str,
        fetch_max_wait_ms: int = FETCH_MAX_WAIT_MS,
    ) -> None:
        self._settings = settings
        # Bounds how long a catch-up waits for its fetch rounds when the topic is idle.
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self.topic = topic
        self.name = name
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._partitions: list[TopicPartition] = []
        # High watermark of the first fetch response per partition: the end to reach.
        self._start_highwater: dict[TopicPartition, int] = {}
        self._ready = asyncio.Event()
        self._rounds = 0
        self._round_done = asyncio.Condition()
        self._started = False

    @abstractmethod
    def apply(self, record: Any) -> None:
        """Apply one consumed record to the in-memory state; must not raise for bad input."""

    def on_ready(self) -> None:  # noqa: B027 (an optional hook, empty by default)
        """Run once when the follower first catches up."""

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    @property
    def healthy(self) -> bool:
        """True while the follow loop runs (or has not been started)."""
        return self._task is None or not self._task.done()

    async def start(self) -> None:
        """Start consuming in a background task; returns at once, before the topic is read."""
        if self._started:
            raise SyncStreamError(f"{self.name} already started")
        self._started = True
        consumer = create_consumer(
            self._settings.kafka,
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_uncommitted",
            fetch_max_wait_ms=self._fetch_max_wait_ms,
        )
        await consumer.start()
        self._consumer = consumer
        self._task = asyncio.create_task(self._run(consumer), name=f"follow-{self.name}")
        log.info("topic follower started", follower=self.name, topic=self.topic)

    async def ensure_started(self) -> None:
        """Start the follower unless it runs already (for users that need it only sometimes)."""
        if not self._started:
            await self.start()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
        log.info("topic follower stopped", follower=self.name, topic=self.topic)

    async def __aenter__(self) -> TopicFollower:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def wait_ready(self, timeout_s: float) -> None:
        """Wait until the follower has read the topic up to the ends it saw at start."""
        try:
            await asyncio.wait_for(self._ready.wait(), timeout_s)
        except TimeoutError:
            raise FollowerNotCaughtUp(
                f"{self.name} did not read {self.topic} to its end within {timeout_s:.0f} s",
                reason="follower_not_ready",
            ) from None

    async def wait_caught_up(self, timeout_s: float) -> None:
        """Wait until every record acknowledged before this call has been applied.

        A fetch request sent after a produce acknowledgement returns a high watermark that
        covers the acknowledged record. Only one fetch request is in flight per broker, so
        the second fetch response received after this call replies to a request sent after
        it. Once every position reaches the high watermarks of that response, the follower
        is current.
        """
        await self.wait_ready(timeout_s)
        deadline = time.monotonic() + timeout_s
        for _ in range(2):
            requested_ms = int(time.time() * 1000)
            while not self._responses_after(requested_ms):
                await self._next_round(deadline)
        while not await self._at_end():
            await self._next_round(deadline)

    async def catch_up(self, *, ready_only: bool = False, **ids: Any) -> None:
        """Wait without a time limit for `wait_ready` (or `wait_caught_up`), logging a
        warning with the given ids every CATCH_UP_WARN_S while the follower is behind."""
        while True:
            try:
                if ready_only:
                    await self.wait_ready(CATCH_UP_WARN_S)
                else:
                    await self.wait_caught_up(CATCH_UP_WARN_S)
                return
            except FollowerNotCaughtUp:
                log.warning(
                    "waiting for a follower to catch up",
                    follower=self.name,
                    followed_topic=self.topic,
                    ready=self.ready,
                    **ids,
                )

    async def _next_round(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FollowerNotCaughtUp(
                f"{self.name} did not catch up with {self.topic} in time",
                reason="follower_behind",
            )
        seen = self._rounds
        async with self._round_done:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._round_done.wait_for(lambda: self._rounds > seen), remaining
                )

    def _responses_after(self, requested_ms: int) -> bool:
        consumer = self._consumer
        if consumer is None or not self._partitions:
            return False
        for tp in self._partitions:
            polled = consumer.last_poll_timestamp(tp)
            if polled is None or polled <= requested_ms:
                return False
        return True

    async def _at_end(self) -> bool:
        consumer = self._consumer
        return consumer is not None and await at_end(consumer, self._partitions)

    async def _assign(self, consumer: AIOKafkaConsumer) -> None:
        """Wait until the topic exists, then assign every partition from the beginning."""
        partitions = consumer.partitions_for_topic(self.topic)
        while not partitions:
            log.info("waiting for topic", follower=self.name, topic=self.topic)
            await asyncio.sleep(METADATA_RETRY_S)
            try:
                await consumer.topics()  # refreshes the cluster metadata
            except KafkaError as exc:
                log.warning(
                    "topic metadata not fetched, retrying",
                    follower=self.name,
                    topic=self.topic,
                    error=type(exc).__name__,
                )
                continue
            partitions = consumer.partitions_for_topic(self.topic)
        # NOTE: partitions added to the topic later are not picked up until a restart.
        self._partitions = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        consumer.assign(self._partitions)
        await consumer.seek_to_beginning(*self._partitions)

    async def _run(self, consumer: AIOKafkaConsumer) -> None:
        await self._assign(consumer)
        while True:
            try:
                batches = await consumer.getmany(
                    timeout_ms=self._fetch_max_wait_ms * 2, max_records=MAX_RECORDS_PER_FETCH
                )
            except KafkaError as exc:
                log.warning(
                    "follower fetch failed, retrying",
                    follower=self.name,
                    topic=self.topic,
                    error=type(exc).__name__,
                )
                await asyncio.sleep(ERROR_BACKOFF_S)
                continue
            for records in batches.values():
                for record in records:
                    self._apply_safely(record)
            if not self.ready:
                await self._check_ready(consumer)
            async with self._round_done:
                self._rounds += 1
                self._round_done.notify_all()

    def _apply_safely(self, record: Any) -> None:
        try:
            self.apply(record)
        except Exception:  # one bad record must not stop the follower
            log.exception(
                "record not applied",
                follower=self.name,
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
            )

    async def _check_ready(self, consumer: AIOKafkaConsumer) -> None:
        for tp in self._partitions:
            if tp not in self._start_highwater:
                highwater = consumer.highwater(tp)
                if highwater is None:
                    return
                self._start_highwater[tp] = highwater
        for tp, end in self._start_highwater.items():
            if await consumer.position(tp) < end:
                return
        self._ready.set()
        self.on_ready()
        log.info(
            "topic follower ready",
            follower=self.name,
            topic=self.topic,
            partitions=len(self._partitions),
        )
