"""Measure how far retry-tier processing lags behind each record's due time.

Records are written straight into retry tier 1 with `mxp-retry-due-at` set to the write
time plus the tier delay, while the input topic carries a load of ordinary packages. The
overshoot of a record is the timestamp of its facade output minus its due time.

    python -m benchmarks.retry_delay [--records 200] [--delay-ms 5000] [--load-packages 200]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

import orjson

from sync_stream.distribution import headers as h
from sync_stream.dlq.failure import utc_iso
from sync_stream.embedded import EmbeddedBroker
from sync_stream.kafka.clients import create_producer
from sync_stream.kafka.reader import read_topic
from sync_stream.kafka.topics import create_topics
from sync_stream.observability.metrics import Metrics
from sync_stream.publish import publish_package
from sync_stream.runtime.processor import Processor
from sync_stream.settings import load_settings

CDN_ID = "bc2d8ada-e25e-1bb7-55fe-32d1205ac4af"
RESTAURANT_ID = "e17d03da-b8b6-f424-febc-3a767b6401bb"


def package(employee_prefix: str, users: int) -> dict[str, object]:
    rows = [
        {
            "employeeId": f"{employee_prefix}-{i}",
            "cdnId": CDN_ID,
            "restaurantId": RESTAURANT_ID,
            "firstName": "Ana",
            "lastName": "Quispe",
            "position": "Cajero",
            "active": True,
            "updatedAt": "2026-11-20T10:00:00Z",
        }
        for i in range(users)
    ]
    return {
        "code": "F008",
        "syncId": str(uuid.uuid4()),
        "source": "http",
        "chunkLoad": 100,
        "processes": {"users_pos": {"records": rows}},
    }


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def measure(records: int, delay_ms: int, load_packages: int) -> None:
    with EmbeddedBroker() as broker:
        settings = load_settings(
            kafka={"bootstrap_servers": broker.bootstrap_servers},
            retry={"tier_delays_ms": (delay_ms, delay_ms * 2)},
            log_level="WARNING",
        )
        await create_topics(settings)
        producer = create_producer(settings.kafka)
        await producer.start()
        due: dict[str, float] = {}
        async with Processor(settings, Metrics()):
            for index in range(load_packages):
                await publish_package(
                    producer, settings.topics.source_topic("http"), package(f"LOAD{index}", 100)
                )
            spacing_s = 2.0 / records
            for index in range(records):
                forced = package(f"TIER{index}", 1)
                due_ms = time.time() * 1000 + delay_ms
                due[f"TIER{index}-0"] = due_ms
                future = await producer.send(
                    settings.topics.retry_topic(1),
                    orjson.dumps(forced),
                    key=str(forced["syncId"]).encode(),
                    headers=[
                        (h.ATTEMPT, b"1"),
                        (h.RETRY_TIER, b"1"),
                        (h.RETRY_DUE_AT, utc_iso(due_ms).encode()),
                    ],
                )
                await future
                await asyncio.sleep(spacing_s)
            facade = settings.topics.facade_topic("users-pos")
            deadline = time.monotonic() + delay_ms / 1000 + 60
            while True:
                outputs = await read_topic(settings.kafka, facade)
                seen = {r.key.decode().rsplit(":", 1)[1]: r.timestamp for r in outputs}
                if all(key in seen for key in due) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
        await producer.stop()

    overshoot_ms = [seen[key] - due_ms for key, due_ms in due.items() if key in seen]
    early = sum(1 for value in overshoot_ms if value < 0)
    print(
        f"tier delay {delay_ms} ms, {len(overshoot_ms)}/{records} tier records processed, "
        f"{load_packages} load packages of 100 users on the input topic"
    )
    print(
        f"overshoot ms: p50 {statistics.median(overshoot_ms):.1f}, "
        f"p95 {percentile(overshoot_ms, 0.95):.1f}, p99 {percentile(overshoot_ms, 0.99):.1f}, "
        f"max {max(overshoot_ms):.1f}; processed before due: {early}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=200, help="Records forced into tier 1.")
    parser.add_argument("--delay-ms", type=int, default=5000, help="Tier 1 delay in ms.")
    parser.add_argument(
        "--load-packages",
        type=int,
        default=200,
        help="Packages of 100 users on the input topic at the same time.",
    )
    args = parser.parse_args()
    asyncio.run(measure(args.records, args.delay_ms, args.load_packages))


if __name__ == "__main__":
    main()
