"""One measured run: fresh topics, the competitor's processes, the load, the figures.

A run has its own topic prefix and consumer group, so runs never see each other's records.
Its steps:

1. create the topics and start the members, then wait until every input partition is
   assigned (so no rebalance happens under load);
2. take the CPU counters, send the load (all at once, or paced at a fixed rate), and wait
   until the members report every package finished or the time limit passes;
3. take the counters again, stop the members (SIGTERM: drain, commit, leave);
4. read the output records (in real time when latency is measured) and compute the
   figures: throughput from the first input sent to the last output's timestamp (or over
   the sending span at a fixed rate), CPU between the two samples.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.partitioner import DefaultPartitioner

from benchmarks import procstats
from benchmarks.competitors import (
    PROCESSORS,
    PROTOTYPES,
    Kind,
    Member,
    Progress,
    start_baseline_member,
    start_pipeline_member,
)
from benchmarks.load import LoadPackage, header_pair, sources_of
from benchmarks.profiling import Profiler
from sync_stream.kafka.clients import create_admin, create_consumer, create_producer
from sync_stream.kafka.reader import read_topic
from sync_stream.kafka.topics import create_topics
from sync_stream.settings import KafkaSettings, Settings, load_settings

READY_TIMEOUT_S = 90.0
# Each poll scrapes the processors' metrics endpoint, which costs them CPU: keep it rare.
POLL_INTERVAL_S = 0.25
# How long the live output reader keeps reading after the members finished.
TAIL_READ_S = 5.0
BASELINE_OUTPUT = "bench.out"


@dataclass(slots=True)
class RunConfig:
    """Settings of one run, shared by every competitor of a scenario."""

    bootstrap: str
    partitions: int
    timeout_s: float
    work_dir: Path
    broker_pid: int | None = None


@dataclass(slots=True)
class RunResult:
    """Raw figures of one run of one competitor."""

    kind: Kind
    processes: int
    packages_sent: int
    packages_done: int
    rows_in: int
    records_out: int
    window_s: float
    cpu_s: list[float]
    peak_rss_bytes: list[int]
    broker_cpu_s: float | None
    driver_cpu_s: float
    latencies_ms: list[float] = field(default_factory=list)
    complete: bool = True
    failed_packages: int = 0
    # Seconds the driver took to send the load; a backlog must be sent faster than drained.
    send_s: float = 0.0
    profile_path: Path | None = None

    def rate(self, amount: int) -> float:
        return amount / self.window_s if self.window_s > 0 else math.nan

    @property
    def failures(self) -> int:
        return self.failed_packages


def new_run_id() -> str:
    return uuid.uuid4().hex[:10]


def _settings(config: RunConfig, prefix: str, group: str) -> Settings:
    return load_settings(
        kafka={"bootstrap_servers": config.bootstrap, "group_id": group},
        topics={"prefix": prefix, "partitions": config.partitions},
    )


async def _create_baseline_topics(settings: Settings, sources: Sequence[str]) -> list[str]:
    topics = settings.topics
    names = [topics.source_topic(source) for source in sources]
    admin = create_admin(settings.kafka)
    await admin.start()
    try:
        for name in [*names, topics.full(BASELINE_OUTPUT)]:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([NewTopic(name, topics.partitions, 1)])
    finally:
        await admin.close()
    return names


async def delete_topics(kafka: KafkaSettings, prefix: str) -> None:
    """Free the broker's memory; a broker that cannot delete topics keeps them."""
    admin = create_admin(kafka)
    try:
        await admin.start()
        names = [name for name in await admin.list_topics() if name.startswith(prefix)]
        if names:
            await admin.delete_topics(names)
    except KafkaError:
        pass
    finally:
        await admin.close()


async def _progress(members: Sequence[Member]) -> Progress:
    reports = await asyncio.gather(*(member.progress() for member in members))
    return Progress(
        assigned=sum(r.assigned for r in reports),
        packages=sum(r.packages for r in reports),
        records=sum(r.records for r in reports),
        failed=sum(r.failed for r in reports),
    )


async def _wait_ready(members: Sequence[Member], partitions_total: int) -> None:
    """Wait until every member is assigned partitions and together they have all of them."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    stable_since: float | None = None
    while True:
        for member in members:
            if member.exited():
                raise RuntimeError(
                    f"a benchmark process exited at start (code {member.process.returncode}); "
                    f"see {member.log_path}"
                )
        reports = await asyncio.gather(*(member.progress() for member in members))
        ready = all(r.assigned > 0 for r in reports) and (
            sum(r.assigned for r in reports) == partitions_total
        )
        now = time.monotonic()
        if ready:
            stable_since = stable_since or now
            if now - stable_since >= 0.5:
                return
        else:
            stable_since = None
        if now > deadline:
            raise RuntimeError(
                f"consumer group not ready after {READY_TIMEOUT_S} s: partitions held "
                f"{[r.assigned for r in reports]}, expected {partitions_total} in total"
            )
        await asyncio.sleep(0.1)


async def _send_burst(
    kafka: KafkaSettings, settings: Settings, load: Sequence[LoadPackage]
) -> None:
    """Send the whole load with the batch API, partitioned by key as send() would."""
    producer = create_producer(kafka)
    await producer.start()
    try:
        partitioner = DefaultPartitioner()
        groups: dict[tuple[str, int], list[LoadPackage]] = {}
        for package in load:
            topic = settings.topics.source_topic(package.source)
            partitions = sorted(await producer.partitions_for(topic))
            partition = partitioner(package.key, partitions, partitions)
            groups.setdefault((topic, partition), []).append(package)
        futures = []
        for (topic, partition), packages in groups.items():
            batch = producer.create_batch()
            for package in packages:
                fields = {"key": package.key, "value": package.value, "timestamp": None}
                if batch.append(**fields, headers=list(package.headers)) is None:
                    futures.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = producer.create_batch()
                    batch.append(**fields, headers=list(package.headers))
            futures.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def _send_paced(
    kafka: KafkaSettings,
    settings: Settings,
    load: Sequence[LoadPackage],
    rate: float,
    sent_at: dict[tuple[bytes, bytes], float],
) -> None:
    """Send one package every 1/rate seconds; record each one's send time in ms."""
    producer = create_producer(kafka)
    await producer.start()
    try:
        futures = []
        start = time.monotonic()
        for index, package in enumerate(load):
            delay = start + index / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            now_ms = time.time() * 1000
            sent_at[package.correlation] = now_ms
            futures.append(
                await producer.send(
                    settings.topics.source_topic(package.source),
                    package.value,
                    key=package.key,
                    headers=list(package.headers),
                    timestamp_ms=int(now_ms),
                )
            )
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


class _LiveReader:
    """Read output topics as records arrive and note each record's arrival time."""

    def __init__(self, kafka: KafkaSettings, topics: Sequence[str], partitions: int) -> None:
        self._consumer: AIOKafkaConsumer = create_consumer(
            kafka,
            group_id=None,
            isolation_level="read_uncommitted",
            fetch_max_wait_ms=5,
            max_poll_records=5000,
        )
        self._partitions = [TopicPartition(t, p) for t in topics for p in range(partitions)]
        self.arrivals: list[tuple[tuple[bytes, bytes], float, int]] = []
        self._expected: int | None = None
        self._all_arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._consumer.start()
        self._consumer.assign(self._partitions)
        await self._consumer.seek_to_beginning(*self._partitions)
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=50)
            now_ms = time.time() * 1000
            for records in batches.values():
                for record in records:
                    self.arrivals.append((header_pair(record.headers), now_ms, record.timestamp))
            if self._expected is not None and len(self.arrivals) >= self._expected:
                self._all_arrived.set()

    async def stop(self, expected: int) -> None:
        """Wait up to TAIL_READ_S for `expected` records in all, then stop reading."""
        self._expected = expected
        if len(self.arrivals) >= expected:
            self._all_arrived.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._all_arrived.wait(), TAIL_READ_S)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()


def _output_topics(kind: Kind, settings: Settings) -> list[str]:
    if kind in PROCESSORS or kind in PROTOTYPES:
        return [settings.topics.facade_topic(facade) for facade in settings.facades]
    return [settings.topics.full(BASELINE_OUTPUT)]


def _expected_outputs(kind: Kind, load: Sequence[LoadPackage]) -> int:
    if kind == "passthrough":
        return len(load)
    return sum(package.outputs for package in load)


async def run_competitor(
    config: RunConfig,
    kind: Kind,
    processes: int,
    load: Sequence[LoadPackage],
    *,
    rate: float | None = None,
    profile: Path | None = None,
) -> RunResult:
    """Run one competitor over `load`, all at once or at `rate` packages per second."""
    run_id = new_run_id()
    prefix = f"bench-{run_id}."
    group = f"bench-{kind}-{run_id}"
    settings = _settings(config, prefix, group)
    kafka = settings.kafka
    sources = sources_of(list(load))

    if kind in PROCESSORS:
        await create_topics(settings)
        # The processor subscribes to every input topic and every retry tier.
        topics_held = len(settings.topics.input_topics) + len(settings.retry.tier_delays_ms)
    elif kind in PROTOTYPES:
        await create_topics(settings)
        input_topics = list(settings.topics.input_topics)
        topics_held = len(input_topics)
    else:
        input_topics = await _create_baseline_topics(settings, sources)
        topics_held = len(input_topics)

    members: list[Member] = []
    profiler: Profiler | None = None
    reader: _LiveReader | None = None
    try:
        for index in range(processes):
            log_path = config.work_dir / f"{run_id}-{kind}-{index}.log"
            if kind in PROCESSORS:
                members.append(
                    await start_pipeline_member(
                        config.bootstrap,
                        prefix,
                        group,
                        config.partitions,
                        log_path,
                        kind=kind,
                    )
                )
            else:
                members.append(
                    await start_baseline_member(
                        kind,
                        config.bootstrap,
                        group,
                        input_topics,
                        settings.topics.full(BASELINE_OUTPUT),
                        prefix,
                        log_path,
                    )
                )
        await _wait_ready(members, topics_held * config.partitions)

        if rate is not None:
            reader = _LiveReader(kafka, _output_topics(kind, settings), config.partitions)
            await reader.start()
        if profile is not None:
            profiler = Profiler(members[0].pid, profile)
            await profiler.start()

        before = [member.sample() for member in members]
        broker_before = procstats.sample(config.broker_pid) if config.broker_pid else None
        driver_before = procstats.own_sample()

        sent_at: dict[tuple[bytes, bytes], float] = {}
        started_ms = time.time() * 1000
        sender_finished_s = 0.0

        def note_sent(_: object) -> None:
            nonlocal sender_finished_s
            sender_finished_s = time.time()

        if rate is None:
            sender = asyncio.create_task(_send_burst(kafka, settings, load))
        else:
            sender = asyncio.create_task(_send_paced(kafka, settings, load, rate, sent_at))
        sender.add_done_callback(note_sent)
        deadline = time.monotonic() + config.timeout_s
        progress = Progress()
        while time.monotonic() < deadline:
            progress = await _progress(members)
            if progress.packages >= len(load):
                break
            if any(member.exited() for member in members):
                raise RuntimeError(
                    f"a benchmark process exited during the run; see {config.work_dir}"
                )
            await asyncio.sleep(POLL_INTERVAL_S)
        complete = progress.packages >= len(load)
        if not sender.done():
            sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
        send_s = sender_finished_s - started_ms / 1000 if sender_finished_s else math.nan

        after = [member.sample() for member in members]
        broker_after = procstats.sample(config.broker_pid) if config.broker_pid else None
        driver_after = procstats.own_sample()
        if profiler is not None:
            await profiler.stop()
    finally:
        await asyncio.gather(*(member.stop() for member in members))
        if isinstance(profiler, Profiler):
            await profiler.stop()

    expected = _expected_outputs(kind, load)
    cpu_s = [
        (a.cpu_s - b.cpu_s) if a and b else math.nan for a, b in zip(after, before, strict=True)
    ]
    peak = [a.peak_rss_bytes if a else 0 for a in after]
    broker_cpu = (
        broker_after.cpu_s - broker_before.cpu_s if broker_after and broker_before else None
    )
    done = min(progress.packages, len(load))
    rows_in = sum(package.rows for package in load[:done])

    latencies: list[float] = []
    if reader is not None:
        await reader.stop(expected)
        arrivals = reader.arrivals
        latencies = [now - sent_at[pair] for pair, now, _ in arrivals if pair in sent_at]
        records_out = len(arrivals)
        window_s = (max(sent_at.values()) - min(sent_at.values())) / 1000 if sent_at else 0.0
    else:
        records = []
        for topic in _output_topics(kind, settings):
            records += await read_topic(kafka, topic, timeout_s=60)
        records_out = len(records)
        # From the first send of the backlog to the last output: the time to drain it.
        window_s = (max(r.timestamp for r in records) - started_ms) / 1000 if records else 0.0
    await delete_topics(kafka, prefix)

    return RunResult(
        kind=kind,
        processes=processes,
        packages_sent=len(load),
        packages_done=done,
        rows_in=rows_in,
        records_out=records_out,
        window_s=window_s,
        cpu_s=cpu_s,
        peak_rss_bytes=peak,
        broker_cpu_s=broker_cpu,
        driver_cpu_s=driver_after.cpu_s - driver_before.cpu_s,
        latencies_ms=latencies,
        complete=complete and records_out >= expected,
        failed_packages=progress.failed,
        send_s=send_s,
        profile_path=profile if profiler is not None else None,
    )


def describe(result: RunResult) -> dict[str, Any]:
    """Summarize one run as JSON-ready values for the results file."""
    return {
        "kind": result.kind,
        "processes": result.processes,
        "packages_sent": result.packages_sent,
        "packages_done": result.packages_done,
        "rows_in": result.rows_in,
        "records_out": result.records_out,
        "window_s": round(result.window_s, 4),
        "cpu_s": [round(c, 3) for c in result.cpu_s],
        "peak_rss_bytes": result.peak_rss_bytes,
        "broker_cpu_s": result.broker_cpu_s,
        "driver_cpu_s": round(result.driver_cpu_s, 3),
        "latency_samples": len(result.latencies_ms),
        "complete": result.complete,
        "failed_packages": result.failed_packages,
        "send_s": round(result.send_s, 3),
    }
