"""One read of a users-pos facade topic in a fresh process, reported as one JSON line.

`python -m benchmarks.rebuild_probe MODE BOOTSTRAP PREFIX TIMEOUT_S`, with MODE one of:

- `projection`: a new `UsersPosProjection`, timed from `start()` until it is ready (its
  positions reach the high watermarks of its first fetch responses). Resident memory
  (VmRSS) is read after a full collection before the start and again once ready.
- `traced`: the same under tracemalloc, which slows it, so only its memory counts: the
  bytes still allocated from lines of `sync_stream/projection/users_pos.py` once ready.
- `raw`: the baseline, an aiokafka consumer with the follower's options that calls
  `getmany` with the follower's record limit until every partition reaches the high
  watermark of its first fetch response, and keeps nothing.

Every mode first applies the collector settings that `sync-stream run` applies.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import json
import math
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

import sync_stream.projection.users_pos as users_pos_module
from sync_stream.kafka.clients import create_consumer
from sync_stream.kafka.follower import (
    FETCH_MAX_WAIT_MS,
    MAX_RECORDS_PER_FETCH,
    FollowerNotCaughtUp,
)
from sync_stream.observability.logs import configure_logging
from sync_stream.observability.metrics import Metrics
from sync_stream.projection.users_pos import USERS_POS_FACADE, UsersPosProjection
from sync_stream.service import GC_GENERATION0_THRESHOLD
from sync_stream.settings import Settings, load_settings

MODES = ("projection", "traced", "raw")
# Resident memory counts heap pages that are free but not yet returned to the system, so
# malloc_trim returns them first. Other C libraries lack it, and RSS then includes them.
try:
    _LIBC: ctypes.CDLL | None = ctypes.CDLL("libc.so.6")
except OSError:
    _LIBC = None


def resident_bytes() -> int:
    """Return this process's resident set size (VmRSS) in bytes, after a full collection
    and after glibc's malloc_trim has returned free heap pages to the system."""
    gc.collect()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def peak_resident_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


async def rebuild_projection(settings: Settings, timeout_s: float, traced: bool) -> dict[str, Any]:
    projection = UsersPosProjection(settings, Metrics())
    rss_before = resident_bytes()
    if traced:
        tracemalloc.start(1)

    cpu_before = time.process_time()
    started = time.monotonic()
    await projection.start()
    complete = True
    try:
        await projection.wait_ready(timeout_s)
    except FollowerNotCaughtUp:
        complete = False
    seconds = time.monotonic() - started
    cpu_s = time.process_time() - cpu_before

    # Stop reading before measuring, so fetched but unapplied records are not counted.
    await projection.stop()
    traced_bytes = math.nan
    if traced:
        snapshot = tracemalloc.take_snapshot()
        tracemalloc.stop()
        only_projection = [tracemalloc.Filter(True, users_pos_module.__file__)]
        statistics = snapshot.filter_traces(only_projection).statistics("filename")
        traced_bytes = sum(statistic.size for statistic in statistics)

    return {
        "records": None,
        "users": projection.user_count,
        "seconds": seconds,
        "cpu_s": cpu_s,
        "rss_before": rss_before,
        "rss_after": resident_bytes(),
        "traced_bytes": traced_bytes,
        "complete": complete,
    }


async def consume_raw(settings: Settings, timeout_s: float) -> dict[str, Any]:
    topic = settings.topics.facade_topic(USERS_POS_FACADE)
    rss_before = resident_bytes()
    cpu_before = time.process_time()
    started = time.monotonic()
    consumer: AIOKafkaConsumer = create_consumer(
        settings.kafka,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_uncommitted",
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
    )
    await consumer.start()
    records = 0
    complete = False
    try:
        numbers = sorted(consumer.partitions_for_topic(topic) or ())
        partitions = [TopicPartition(topic, number) for number in numbers]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends: dict[TopicPartition, int] = {}
        deadline = started + timeout_s
        while time.monotonic() < deadline:
            batches = await consumer.getmany(
                timeout_ms=FETCH_MAX_WAIT_MS * 2, max_records=MAX_RECORDS_PER_FETCH
            )
            for batch in batches.values():
                records += len(batch)
            for tp in partitions:
                if tp not in ends and (highwater := consumer.highwater(tp)) is not None:
                    ends[tp] = highwater
            if len(ends) == len(partitions) and await _reached(consumer, ends):
                complete = True
                break
        seconds = time.monotonic() - started
        cpu_s = time.process_time() - cpu_before
    finally:
        await consumer.stop()
    return {
        "records": records,
        "users": 0,
        "seconds": seconds,
        "cpu_s": cpu_s,
        "rss_before": rss_before,
        "rss_after": resident_bytes(),
        "traced_bytes": math.nan,
        "complete": complete,
    }


async def _reached(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return False
    return True


async def probe(mode: str, bootstrap: str, prefix: str, timeout_s: float) -> dict[str, Any]:
    settings = load_settings(
        kafka={"bootstrap_servers": bootstrap}, topics={"prefix": prefix}, log_level="WARNING"
    )
    if mode == "raw":
        result = await consume_raw(settings, timeout_s)
    else:
        result = await rebuild_projection(settings, timeout_s, traced=mode == "traced")
    return {"mode": mode, "peak_rss": peak_resident_bytes(), **result}


def main(argv: list[str]) -> None:
    if len(argv) != 4 or argv[0] not in MODES:
        modes = "|".join(MODES)
        sys.exit(f"usage: python -m benchmarks.rebuild_probe {modes} BOOTSTRAP PREFIX TIMEOUT_S")
    mode, bootstrap, prefix, timeout_text = argv
    configure_logging("json", "WARNING")
    # The same collector settings as `sync-stream run` (sync_stream/service.py).
    gc.freeze()
    gc.set_threshold(GC_GENERATION0_THRESHOLD, 20, 100)
    result = asyncio.run(probe(mode, bootstrap, prefix, float(timeout_text)))
    print(json.dumps(result, allow_nan=True), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
