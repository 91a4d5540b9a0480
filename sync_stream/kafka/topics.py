"""Create every topic of the design, idempotently."""

from __future__ import annotations

from dataclasses import dataclass, field

import structlog
from aiokafka.admin import NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from sync_stream.kafka.clients import check_connection, create_admin
from sync_stream.settings import Settings

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    configs: dict[str, str] = field(default_factory=dict)


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """List every topic the service reads or writes, with partitions and configs."""
    topics = settings.topics
    partitions, replicas = topics.partitions, topics.replication_factor
    compact = {"cleanup.policy": "compact"}
    # Input, retry and DLQ topics must take any package the gate accepts, plus headers;
    # Apache Kafka's default message.max.bytes is about 1 MiB.
    package_sized = {"max.message.bytes": str(settings.failure_request_bytes)}
    specs = [
        TopicSpec(name, partitions, replicas, dict(package_sized)) for name in topics.input_topics
    ]
    for facade in settings.facades:
        configs = dict(compact) if facade in topics.compacted_facades else {}
        specs.append(TopicSpec(topics.facade_topic(facade), partitions, replicas, configs))
    specs += [
        TopicSpec(topics.retry_topic(tier), partitions, replicas, dict(package_sized))
        for tier in range(1, len(settings.retry.tier_delays_ms) + 1)
    ]
    specs.append(
        TopicSpec(
            topics.dlq_topic, partitions, replicas, {"retention.ms": str(topics.dlq_retention_ms)}
        )
    )
    specs.append(TopicSpec(topics.status_topic, partitions, replicas, dict(compact)))
    return specs


async def create_topics(settings: Settings) -> tuple[list[str], list[str]]:
    """Create missing topics; return (created, already present). Safe to run again."""
    await check_connection(settings.kafka)
    admin = create_admin(settings.kafka)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        specs = [spec for spec in topic_specs(settings) if spec.name not in existing]
        created: list[str] = []
        for spec in specs:
            try:
                await admin.create_topics(
                    [
                        NewTopic(
                            spec.name,
                            spec.partitions,
                            spec.replication_factor,
                            topic_configs=spec.configs,
                        )
                    ]
                )
                created.append(spec.name)
            except TopicAlreadyExistsError:
                pass
        present = sorted(s.name for s in topic_specs(settings) if s.name not in created)
        if created:
            log.info("topics created", count=len(created), topics=created)
        return created, present
    finally:
        await admin.close()
