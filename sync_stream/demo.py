"""`sync-stream demo`: the whole pipeline on the embedded broker with the packages in examples/."""

from __future__ import annotations

import asyncio
import secrets
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiokafka import TopicPartition
from aiokafka.structs import RecordMetadata
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from sync_stream.codec.avro import codec_for
from sync_stream.distribution import headers as h
from sync_stream.embedded import EmbeddedBroker
from sync_stream.errors import SyncStreamError
from sync_stream.gate.decode import encode_avro_package
from sync_stream.kafka.clients import create_producer
from sync_stream.kafka.reader import read_topic
from sync_stream.kafka.topics import create_topics
from sync_stream.observability.metrics import Metrics
from sync_stream.publish import publish_bytes, publish_package, split_package
from sync_stream.runtime.processor import Processor
from sync_stream.service import Service
from sync_stream.settings import Settings

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
PROCESSING_TIMEOUT_S = 120.0
FACADE_SCHEMAS = {
    "users-pos": "UserPos",
    "printer": "PrinterConfig",
    "fe-build": "BuildInfo",
    "pos": "BuildInfo",
}


@dataclass(frozen=True, slots=True)
class Published:
    label: str
    metadata: RecordMetadata


def examples_dir() -> Path:
    if not EXAMPLES.is_dir():
        raise SyncStreamError(
            f"examples folder not found at {EXAMPLES}; run the demo from a clone of the repository"
        )
    return EXAMPLES


async def publish_examples(settings: Settings, folder: Path) -> list[Published]:
    """Publish every example: the valid ones, an Avro package, and one per rejection reason."""
    topics = settings.topics
    producer = create_producer(settings.kafka)
    await producer.start()
    sent: list[Published] = []
    try:
        generic = orjson.loads((folder / "sync-generic.json").read_bytes())
        sent.append(
            Published(
                "sync-generic",
                await publish_package(producer, topics.source_topic("fe-build"), generic),
            )
        )

        users = orjson.loads((folder / "sync-users-ares.json").read_bytes())
        for chunk in split_package(users):
            sent.append(
                Published(
                    f"users chunk {chunk['chunk']['index']}",
                    await publish_package(producer, topics.source_topic("http"), chunk),
                )
            )

        printers_only = {
            **generic,
            "source": "printer",
            "syncId": "6f0d3c1e-8a2b-4c5d-9e7f-0a1b2c3d4e5f",
            "processes": {"printers": generic["processes"]["printers"]},
        }
        avro = encode_avro_package(printers_only)
        sent.append(
            Published(
                "printers (Avro)",
                await publish_bytes(
                    producer, topics.source_topic("printer"), avro, content_type=b"avro/binary"
                ),
            )
        )

        for path in sorted((folder / "invalid").glob("*.json")):
            sent.append(
                Published(
                    path.stem,
                    await publish_bytes(
                        producer, topics.source_topic("fe-build"), path.read_bytes()
                    ),
                )
            )
        sent.append(
            Published(
                "too_large",
                await publish_bytes(
                    producer,
                    topics.source_topic("init"),
                    b'{"padding": "' + b"x" * (settings.limits.max_package_bytes + 1) + b'"}',
                ),
            )
        )
        sent.append(
            Published(
                "unsupported_content_type",
                await publish_bytes(
                    producer,
                    topics.source_topic("init"),
                    (folder / "sync-generic.json").read_bytes(),
                    content_type=b"text/csv",
                ),
            )
        )
        wrong_fingerprint = b"\xc3\x01" + b"\x00" * 8 + avro[10:]
        sent.append(
            Published(
                "invalid_avro",
                await publish_bytes(
                    producer,
                    topics.source_topic("printer"),
                    wrong_fingerprint,
                    content_type=b"avro/binary",
                ),
            )
        )
    finally:
        await producer.stop()
    return sent


async def wait_processed(processor: Processor, sent: list[Published], console: Console) -> float:
    """Wait until the processor has committed past every published record."""
    targets: dict[TopicPartition, int] = {}
    for item in sent:
        tp = TopicPartition(item.metadata.topic, item.metadata.partition)
        targets[tp] = max(targets.get(tp, 0), item.metadata.offset + 1)
    started = time.monotonic()
    with console.status("processing packages…") as status:
        while True:
            committed = processor.committed_offsets()
            done = sum(1 for tp, end in targets.items() if committed.get(tp, 0) >= end)
            status.update(f"processing packages… {done}/{len(targets)} partitions committed")
            if done == len(targets):
                return time.monotonic() - started
            if time.monotonic() - started > PROCESSING_TIMEOUT_S:
                raise SyncStreamError(
                    f"the demo's packages were not processed within {PROCESSING_TIMEOUT_S:.0f} s"
                )
            await asyncio.sleep(0.1)


def _facade_of(topic: str, settings: Settings) -> str:
    for facade in settings.facades:
        if settings.topics.facade_topic(facade) == topic:
            return facade
    return ""


async def report(settings: Settings, console: Console, metrics: Metrics) -> None:
    topics = settings.topics
    facade_table = Table(title="Records per facade topic")
    for column in ("topic", "records", "tombstones", "distinct keys", "syncs"):
        facade_table.add_column(column, justify="left" if column == "topic" else "right")
    samples: dict[str, Any] = {}
    for facade in settings.facades:
        topic = topics.facade_topic(facade)
        records = await read_topic(settings.kafka, topic)
        tombstones = sum(1 for r in records if r.value is None)
        syncs = {h.header_text(r.headers, h.SYNC_ID) for r in records}
        facade_table.add_row(
            topic,
            str(len(records)),
            str(tombstones),
            str(len({r.key for r in records})),
            str(len(syncs)),
        )
        schema = FACADE_SCHEMAS.get(facade, "BuildInfo")
        shown = {FACADE_SCHEMAS.get(f) for f in samples}
        for record in records:
            # One sample per schema: the pos facade gets the same BuildInfo as fe-build.
            if record.value is not None and schema not in shown:
                samples[facade] = codec_for(schema).decode(record.value)
                break
    console.print(facade_table)

    dead = await read_topic(settings.kafka, topics.dlq_topic)
    dlq_table = Table(title=f"Dead-letter queue ({len(dead)} records, bytes kept as sent)")
    for column, width in (("original topic", 14), ("offset", 6), ("stage", 6), ("reason", 24)):
        dlq_table.add_column(column, no_wrap=True, min_width=width)
    dlq_table.add_column("message", no_wrap=True, overflow="ellipsis")
    for record in sorted(
        dead,
        key=lambda r: (
            h.header_text(r.headers, h.ERROR_STAGE) or "",
            h.header_text(r.headers, h.ERROR_REASON) or "",
        ),
    ):
        message = h.header_text(record.headers, h.ERROR_MESSAGE) or ""
        dlq_table.add_row(
            (h.header_text(record.headers, h.ORIGINAL_TOPIC) or "").removeprefix(topics.prefix),
            h.header_text(record.headers, h.ORIGINAL_OFFSET) or "",
            h.header_text(record.headers, h.ERROR_STAGE) or "",
            h.header_text(record.headers, h.ERROR_REASON) or "",
            message if len(message) <= 70 else message[:67] + "…",
        )
    console.print(dlq_table)

    for facade, datum in samples.items():
        console.print(f"[bold]{topics.facade_topic(facade)}[/] first record:")
        console.print_json(orjson.dumps(datum).decode())

    rejected = Counter(
        {
            sample.labels["reason"]: int(sample.value)
            for family in metrics.registry.collect()
            if family.name == "mxp_sync_packages_rejected"
            for sample in family.samples
            if sample.name.endswith("_total")
        }
    )
    console.print(f"rejected by reason: {dict(sorted(rejected.items()))}")


async def api_report(base_url: str, token: str, console: Console) -> None:
    """Ask the running API for the users of the Ares example's first restaurant and print
    the count and a few of them, as an integration team would call it."""
    users_package = orjson.loads((examples_dir() / "sync-users-ares.json").read_bytes())
    first = users_package["processes"]["users_pos"]["records"][0]
    cdn_id, restaurant_id = first["cdnId"], first["restaurantId"]
    expected = sum(
        1
        for row in users_package["processes"]["users_pos"]["records"]
        if (row["cdnId"], row["restaurantId"]) == (cdn_id, restaurant_id)
    )
    path = f"/api/users_pos?cdn_id={cdn_id}&restaurant_id={restaurant_id}"

    started = time.monotonic()
    while True:
        status, body = await asyncio.to_thread(_get_json, base_url + path, token)
        if status == 200 and len(body["details"]) >= expected:
            break
        if time.monotonic() - started > PROCESSING_TIMEOUT_S:
            raise SyncStreamError(f"GET {path} did not return the {expected} users in time")
        await asyncio.sleep(0.2)

    users = body["details"]
    console.print(
        f"[bold]GET {path}[/] → {status} {body['message']!r}: {len(users)} users; the first 3:"
    )
    columns = ("userId", "userName", "fullName", "profile", "status")
    table = Table(*columns)
    for user in users[:3]:
        table.add_row(*(str(user[column]) for column in columns))
    console.print(table)

    sync_status, sync_body = await asyncio.to_thread(
        _get_json, f"{base_url}/api/v1/syncs/{users_package['syncId']}", token
    )
    if sync_status == 200:
        details = sync_body["details"]
        console.print(
            f"[bold]GET /api/v1/syncs/{users_package['syncId']}[/] → {details['state']}, "
            f"{details['chunksDone']}/{details['chunksExpected']} chunks"
        )


def _get_json(url: str, token: str) -> tuple[int, Any]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read() or b"null")


async def run_demo(settings: Settings, console: Console, *, keep_running: bool = False) -> None:
    folder = examples_dir()
    with console.status("starting the embedded broker…"):
        broker = await asyncio.to_thread(EmbeddedBroker().start)
    try:
        # The API listens on a free loopback port with a token made for this run only.
        token = secrets.token_urlsafe(24)
        settings = settings.model_copy(
            update={
                "kafka": settings.kafka.model_copy(
                    update={"bootstrap_servers": broker.bootstrap_servers}
                ),
                "api": settings.api.model_copy(
                    update={"host": "127.0.0.1", "port": 0, "tokens": (SecretStr(token),)}
                ),
            }
        )
        console.print(f"embedded broker on {broker.bootstrap_servers} (memory only)")
        with console.status("creating topics…"):
            created, _ = await create_topics(settings)
        console.print(f"created {len(created)} topics")

        metrics = Metrics()
        async with Service(settings, "all", metrics).running() as service:
            assert service.processor is not None and service.server is not None
            base_url = f"http://127.0.0.1:{service.server.port}"
            with console.status("publishing examples…"):
                sent = await publish_examples(settings, folder)
            console.print(f"published {len(sent)} packages from {folder.name}/")
            elapsed = await wait_processed(service.processor, sent, console)
            console.print(f"every package processed and committed in {elapsed:.2f} s")
            await report(settings, console, metrics)
            await api_report(base_url, token, console)
            if keep_running:
                console.print(
                    f"still running; bootstrap servers {broker.bootstrap_servers}, API on "
                    f"{base_url} with the token {token} (made for this run). Ctrl-C stops."
                )
                await asyncio.Event().wait()
    finally:
        await asyncio.to_thread(broker.stop)
