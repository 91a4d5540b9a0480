"""The Prometheus endpoint after the demo's packages: every counter matches what was sent."""

from __future__ import annotations

import asyncio
import urllib.request
from collections import Counter
from collections.abc import Callable

import pytest
from prometheus_client import start_http_server
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

from sync_stream.demo import Published, publish_examples, wait_processed
from sync_stream.distribution import headers as h
from sync_stream.embedded.broker import LOOPBACK, free_port
from sync_stream.kafka.reader import read_topic
from sync_stream.kafka.topics import create_topics
from sync_stream.observability.metrics import Metrics
from sync_stream.publish import split_package
from sync_stream.runtime.processor import Processor
from sync_stream.settings import Settings
from tests.integration.conftest import EXAMPLES, load_example, wait_for

pytestmark = pytest.mark.integration

# Invalid examples that pass the F008 gate and fail in a transformer: (stage, reason).
TRANSFORM_FAILURES = {
    "t080_failure": ("T080", "invalid_build_info"),
    "t121_failure": ("T121", "invalid_users_pos"),
}
# Rejections raised while decoding the bytes, before the F008 rules run.
DECODE_REASONS = {
    "empty_value",
    "too_large",
    "unsupported_content_type",
    "invalid_json",
    "invalid_avro",
}
# Packages publish_examples sends besides examples/invalid/*.json, each with its reason.
EXTRA_REJECTIONS = ("too_large", "unsupported_content_type", "invalid_avro")
PROCESSING_TIMEOUT_S = 60.0

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def metrics_settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(metrics_port=free_port())


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def counter_values(samples: Samples, name: str, label: str) -> dict[str, float]:
    """Return a counter's `_total` values keyed by one label."""
    values: dict[str, float] = {}
    for (sample_name, labels), value in samples.items():
        if sample_name == f"{name}_total":
            values[dict(labels)[label]] = value
    return values


def expected_outputs(settings: Settings) -> dict[str, int]:
    """Count the facade records the valid examples must produce, per facade topic."""
    generic = load_example("sync-generic.json")
    users = load_example("sync-users-ares.json")
    packages = [generic, users, {"processes": {"printers": generic["processes"]["printers"]}}]
    produced: Counter[str] = Counter()
    for package in packages:
        for process, content in package["processes"].items():
            for facade in settings.routes[process].facades:
                produced[settings.topics.facade_topic(facade)] += len(content["records"])
    return dict(produced)


def expected_accepted() -> dict[str, int]:
    """Count the packages that must pass the F008 gate, per source module."""
    generic = load_example("sync-generic.json")
    users = load_example("sync-users-ares.json")
    accepted: Counter[str] = Counter()
    accepted[generic["source"]] += 1
    accepted[users["source"]] += len(split_package(users))
    accepted["printer"] += 1  # publish_examples sends the printers as an Avro package
    for name in TRANSFORM_FAILURES:
        accepted[load_example(f"invalid/{name}.json")["source"]] += 1
    return dict(accepted)


def expected_rejections() -> dict[str, int]:
    stems = [path.stem for path in sorted((EXAMPLES / "invalid").glob("*.json"))]
    reasons = [stem for stem in stems if stem not in TRANSFORM_FAILURES]
    return dict(Counter([*reasons, *EXTRA_REJECTIONS]))


async def test_metrics_match_demo_run(metrics_settings: Settings) -> None:
    settings = metrics_settings
    assert settings.metrics_port is not None
    await create_topics(settings)
    metrics = Metrics()
    # Serve the registry on SYNC_METRICS_PORT as the service does, but on loopback only.
    server, thread = start_http_server(
        settings.metrics_port, addr=LOOPBACK, registry=metrics.registry
    )
    try:
        async with Processor(settings, metrics) as processor:
            sent = await publish_examples(settings, EXAMPLES)
            async with asyncio.timeout(PROCESSING_TIMEOUT_S):
                await wait_processed(processor, sent, Console(quiet=True))
            partitions = {(p.metadata.topic, p.metadata.partition) for p in sent}
            samples = await wait_for_zero_lag(settings.metrics_port, partitions)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)

    valid_count = sum(expected_accepted().values()) - len(TRANSFORM_FAILURES)
    invalid_count = sum(expected_rejections().values()) + len(TRANSFORM_FAILURES)
    assert len(sent) == valid_count + invalid_count
    check_gate_counters(samples, sent)
    await check_output_counters(samples, settings)
    await check_dead_letter_counters(samples, settings)


async def wait_for_zero_lag(port: int, partitions: set[tuple[str, int]]) -> Samples:
    """Scrape until the lag of every partition that received data is 0; return that scrape."""
    samples: Samples = {}

    async def caught_up() -> bool:
        nonlocal samples
        samples = await asyncio.to_thread(scrape, port)
        lag: dict[tuple[str, int], float] = {}
        for (name, label_set), value in samples.items():
            if name == "mxp_sync_consumer_lag_records":
                labels = dict(label_set)
                lag[(labels["topic"], int(labels["partition"]))] = value
        return all(lag.get(tp) == 0 for tp in partitions)

    await wait_for(caught_up, 15, "mxp_sync_consumer_lag_records to reach 0")
    return samples


def check_gate_counters(samples: Samples, sent: list[Published]) -> None:
    consumed = counter_values(samples, "mxp_sync_records_consumed", "topic")
    assert consumed == dict(Counter(p.metadata.topic for p in sent))

    accepted = counter_values(samples, "mxp_sync_packages_accepted", "source")
    assert accepted == expected_accepted()

    rejected = counter_values(samples, "mxp_sync_packages_rejected", "reason")
    assert rejected == expected_rejections()

    in_flight = [v for (name, _), v in samples.items() if name == "mxp_sync_in_flight_packages"]
    assert in_flight == [0.0]

    failures: dict[tuple[str, str], float] = {}
    for (name, label_set), value in samples.items():
        if name == "mxp_sync_transform_failures_total":
            labels = dict(label_set)
            failures[(labels["transformer"], labels["reason"])] = value
    assert failures == {stage_and_reason: 1 for stage_and_reason in TRANSFORM_FAILURES.values()}


async def check_output_counters(samples: Samples, settings: Settings) -> None:
    produced = counter_values(samples, "mxp_sync_records_produced", "topic")
    expected = expected_outputs(settings)
    for topic, count in expected.items():
        assert produced.get(topic) == count, topic
        records = await read_topic(settings.kafka, topic)
        assert len(records) == count, f"{topic} holds {len(records)} records"
    facade_topics = {settings.topics.facade_topic(f) for f in settings.facades}
    assert {t for t in produced if t in facade_topics} == set(expected)


async def check_dead_letter_counters(samples: Samples, settings: Settings) -> None:
    rejections = expected_rejections()
    invalid_count = sum(rejections.values()) + len(TRANSFORM_FAILURES)
    produced = counter_values(samples, "mxp_sync_records_produced", "topic")
    assert produced.get(settings.topics.dlq_topic) == invalid_count

    dead = await read_topic(settings.kafka, settings.topics.dlq_topic)
    assert len(dead) == invalid_count
    stages_in_dlq = Counter(h.header_text(r.headers, h.ERROR_STAGE) for r in dead)

    decode_count = sum(count for reason, count in rejections.items() if reason in DECODE_REASONS)
    expected_stages = {
        "decode": decode_count,
        "f008": sum(rejections.values()) - decode_count,
        **{stage: 1 for stage, _reason in TRANSFORM_FAILURES.values()},
    }
    dead_letters = counter_values(samples, "mxp_sync_dead_letters", "stage")
    assert dead_letters == expected_stages
    assert dict(stages_in_dlq) == expected_stages
