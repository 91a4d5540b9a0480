"""Reference consume→produce loops that the pipeline is measured against.

Run as `python -m benchmarks.baselines KIND ...`, one process per consumer group member:

- `passthrough`: copies every input record (key, value, headers) to the output topic
  with the producer batch API, one batch per partition and fetch. No decoding at all, so
  it is the ceiling of the Kafka client on this machine.
- `per-record`: the loop a developer writes by hand: `json.loads` of the package, then per
  row a pydantic model, a datum dict, a fastavro encode and one `send()`. It checks no
  F008 rule, no checksum, UUID or timestamp, and writes everything to one output topic.

The same loop also runs the what-if distributions of `benchmarks.prototype` (`batched`,
`batched-fast-hash`), which need `--prefix` to build the service's settings.

Every kind uses the service's client settings (acks=all, linger 0, read_committed), waits
for every acknowledgement of a fetch before committing it, and prints a JSON progress line
to standard output every 100 ms until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastavro
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from fastavro.schema import fingerprint, to_parsing_canonical_form
from pydantic import BaseModel

from benchmarks.prototype import BatchedDistribution
from sync_stream.kafka.clients import create_consumer, create_producer
from sync_stream.observability.logs import configure_logging
from sync_stream.settings import KafkaSettings, load_settings

KINDS = ("passthrough", "per-record", "batched", "batched-fast-hash")
PROGRESS_INTERVAL_S = 0.1
SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"


class _Progress:
    def __init__(self) -> None:
        self.packages = 0
        self.records = 0
        self.assigned = 0
        self.failed = 0

    def line(self) -> str:
        return json.dumps(
            {
                "assigned": self.assigned,
                "packages": self.packages,
                "records": self.records,
                "failed": self.failed,
            }
        )


# Hand-written row models: what the loop needs of each row, nothing more.
class UserIn(BaseModel):
    employeeId: str
    cdnId: str
    restaurantId: str
    firstName: str
    lastName: str
    userName: str | None = None
    position: str
    active: bool
    updatedAt: str


class ConnectionIn(BaseModel):
    type: str
    address: str | None = None
    port: int | None = None


class PrinterIn(BaseModel):
    printerId: str
    cdnId: str
    restaurantId: str
    name: str
    model: str
    station: str
    connection: ConnectionIn
    paperWidthMm: int
    active: bool = True
    updatedAt: str


class ArtifactIn(BaseModel):
    name: str
    sha256: str
    sizeBytes: int


class BuildIn(BaseModel):
    module: str
    version: str
    buildNumber: int
    commit: str
    builtAt: str
    cdnId: str
    restaurants: list[str] = []
    artifacts: list[ArtifactIn]


def _user_datum(row: UserIn) -> tuple[str, dict[str, Any]]:
    key = f"{row.cdnId}:{row.restaurantId}:{row.employeeId}"
    datum = {
        "userId": row.employeeId,
        "cdnId": row.cdnId,
        "restaurantId": row.restaurantId,
        "userName": row.userName or (row.firstName[:1] + row.lastName).lower(),
        "fullName": f"{row.firstName} {row.lastName}",
        "profile": row.position.lower(),
        "status": "active" if row.active else "inactive",
        "updatedAt": row.updatedAt,
    }
    return key, datum


def _printer_datum(row: PrinterIn) -> tuple[str, dict[str, Any]]:
    key = f"{row.cdnId}:{row.restaurantId}:{row.printerId}"
    datum = {
        "printerId": row.printerId,
        "cdnId": row.cdnId,
        "restaurantId": row.restaurantId,
        "name": row.name,
        "model": row.model,
        "station": row.station,
        "connectionType": row.connection.type,
        "address": row.connection.address,
        "port": row.connection.port,
        "paperWidthMm": row.paperWidthMm,
        "active": row.active,
        "updatedAt": row.updatedAt,
    }
    return key, datum


def _build_datum(row: BuildIn) -> tuple[str, dict[str, Any]]:
    key = f"{row.module}:{row.version}:{row.buildNumber}"
    datum = row.model_dump()
    return key, datum


class _Kind:
    """Per-process settings of the per-record loop: model, schema and facade count."""

    def __init__(
        self,
        model: type[BaseModel],
        schema_file: str,
        to_datum: Callable[[Any], tuple[str, dict[str, Any]]],
        copies: int,
    ) -> None:
        self.model = model
        self.schema = fastavro.parse_schema(
            json.loads((SCHEMAS / schema_file).read_text(encoding="utf-8"))
        )
        canonical = to_parsing_canonical_form(self.schema)
        self.header = b"\xc3\x01" + bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))
        self.to_datum = to_datum
        self.copies = copies


def _kinds() -> dict[str, _Kind]:
    return {
        "users_pos": _Kind(UserIn, "user_pos.avsc", _user_datum, 1),
        "printers": _Kind(PrinterIn, "printer_config.avsc", _printer_datum, 1),
        "build_info": _Kind(BuildIn, "build_info.avsc", _build_datum, 2),
    }


async def _passthrough(
    records: dict[TopicPartition, list[Any]],
    producer: AIOKafkaProducer,
    output_topic: str,
    progress: _Progress,
) -> None:
    futures = []
    for tp, items in records.items():
        batch = producer.create_batch()
        for record in items:
            if (
                batch.append(
                    key=record.key, value=record.value, timestamp=None, headers=list(record.headers)
                )
                is None
            ):
                futures.append(
                    await producer.send_batch(batch, output_topic, partition=tp.partition)
                )
                batch = producer.create_batch()
                batch.append(
                    key=record.key, value=record.value, timestamp=None, headers=list(record.headers)
                )
        futures.append(await producer.send_batch(batch, output_topic, partition=tp.partition))
    await asyncio.gather(*futures)
    for items in records.values():
        progress.packages += len(items)
        progress.records += len(items)


async def _per_record(
    records: dict[TopicPartition, list[Any]],
    producer: AIOKafkaProducer,
    output_topic: str,
    progress: _Progress,
    kinds: dict[str, _Kind],
) -> None:
    futures = []
    produced = 0
    for items in records.values():
        for record in items:
            package = json.loads(record.value)
            headers = [*record.headers, ("content-type", b"avro/binary")]
            for name, block in package["processes"].items():
                kind = kinds[name]
                for row in block["records"]:
                    key, datum = kind.to_datum(kind.model.model_validate(row))
                    buffer = io.BytesIO()
                    buffer.write(kind.header)
                    fastavro.schemaless_writer(buffer, kind.schema, datum)
                    value = buffer.getvalue()
                    for _ in range(kind.copies):
                        futures.append(
                            await producer.send(
                                output_topic, value, key=key.encode(), headers=headers
                            )
                        )
                        produced += 1
    await asyncio.gather(*futures)
    progress.packages += sum(len(items) for items in records.values())
    progress.records += produced


async def _report(progress: _Progress, consumer: AIOKafkaConsumer) -> None:
    while True:
        progress.assigned = len(consumer.assignment())
        sys.stdout.write(progress.line() + "\n")
        sys.stdout.flush()
        await asyncio.sleep(PROGRESS_INTERVAL_S)


async def run_baseline(
    kind: str, bootstrap: str, group: str, topics: list[str], output: str, prefix: str | None
) -> None:
    """Consume `topics` in `group` and write to `output` until SIGTERM or SIGINT."""
    kafka = KafkaSettings(bootstrap_servers=bootstrap, group_id=group, client_id=f"bench-{kind}")
    producer = create_producer(kafka)
    consumer = create_consumer(kafka, *topics, max_poll_records=500)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    progress = _Progress()
    kinds = _kinds()
    distribution: BatchedDistribution | None = None
    if kind.startswith("batched"):
        if prefix is None:
            raise SystemExit(f"{kind} needs --prefix, the topic prefix of the service settings")
        settings = load_settings(kafka={"bootstrap_servers": bootstrap}, topics={"prefix": prefix})
        distribution = BatchedDistribution(settings, fast_hash=kind == "batched-fast-hash")
    await producer.start()
    await consumer.start()
    reporter = asyncio.create_task(_report(progress, consumer))
    try:
        while not stop.is_set():
            records = await consumer.getmany(timeout_ms=100)
            if not records:
                continue
            if distribution is not None:
                finished, produced = await distribution.handle(records, producer)
                progress.packages += finished
                progress.records += produced
                progress.failed = distribution.failed
            elif kind == "passthrough":
                await _passthrough(records, producer, output, progress)
            else:
                await _per_record(records, producer, output, progress, kinds)
            await consumer.commit(
                {tp: OffsetAndMetadata(items[-1].offset + 1, "") for tp, items in records.items()}
            )
    finally:
        reporter.cancel()
        sys.stdout.write(progress.line() + "\n")
        sys.stdout.flush()
        await consumer.stop()
        await producer.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.baselines", description=__doc__)
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers, host:port.")
    parser.add_argument("--group", required=True, help="Consumer group id.")
    parser.add_argument("--topics", required=True, help="Comma-separated input topics.")
    parser.add_argument("--output-topic", required=True, help="Topic every output goes to.")
    parser.add_argument("--prefix", help="Topic prefix of the service settings (batched kinds).")
    args = parser.parse_args(argv)
    # Standard output carries the progress lines, so logs go to standard error.
    configure_logging("json", "WARNING")
    asyncio.run(
        run_baseline(
            args.kind,
            args.bootstrap,
            args.group,
            args.topics.split(","),
            args.output_topic,
            args.prefix,
        )
    )


if __name__ == "__main__":
    main()
