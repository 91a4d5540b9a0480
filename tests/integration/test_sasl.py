"""The pipeline over SASL PLAIN and SCRAM, against Apache Kafka.

The embedded broker cannot create SASL users in memory mode, so these tests run against the
cluster named by SYNC_TEST_SASL_BOOTSTRAP_SERVERS, or against a testcontainers Kafka started
with a SASL listener when a Docker engine is running. They are skipped otherwise.

SYNC_TEST_SASL_BOOTSTRAP_SERVERS needs SYNC_TEST_SASL_USERNAME and SYNC_TEST_SASL_PASSWORD;
SYNC_TEST_SASL_MECHANISM (default SCRAM-SHA-512), SYNC_TEST_SASL_SECURITY_PROTOCOL (default
SASL_PLAINTEXT) and SYNC_TEST_SASL_CAFILE are optional.
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from sync_stream.embedded import EmbeddedBroker
from sync_stream.errors import SettingsError
from sync_stream.kafka.clients import create_producer
from sync_stream.kafka.topics import create_topics
from sync_stream.observability.metrics import Metrics
from sync_stream.publish import publish_package
from sync_stream.runtime.processor import Processor
from sync_stream.settings import Settings, load_settings
from tests.conftest import _docker_answers
from tests.integration.conftest import load_example, wait_for_count

pytestmark = pytest.mark.integration

SKIP_REASON = (
    "SASL needs Apache Kafka: the embedded broker has no SASL users in memory mode. Set "
    "SYNC_TEST_SASL_BOOTSTRAP_SERVERS, SYNC_TEST_SASL_USERNAME and SYNC_TEST_SASL_PASSWORD, "
    "or run a Docker engine"
)
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True, slots=True)
class SaslCluster:
    bootstrap_servers: str
    security_protocol: str
    mechanisms: tuple[str, ...]
    username: str
    password: str
    cafile: str | None = None


def cluster_from_environment(servers: str) -> SaslCluster:
    missing = [
        name
        for name in ("SYNC_TEST_SASL_USERNAME", "SYNC_TEST_SASL_PASSWORD")
        if not os.environ.get(name)
    ]
    if missing:
        pytest.fail(f"SYNC_TEST_SASL_BOOTSTRAP_SERVERS is set but {', '.join(missing)} is not")
    return SaslCluster(
        bootstrap_servers=servers,
        security_protocol=os.environ.get("SYNC_TEST_SASL_SECURITY_PROTOCOL", "SASL_PLAINTEXT"),
        mechanisms=(os.environ.get("SYNC_TEST_SASL_MECHANISM", "SCRAM-SHA-512"),),
        username=os.environ["SYNC_TEST_SASL_USERNAME"],
        password=os.environ["SYNC_TEST_SASL_PASSWORD"],
        cafile=os.environ.get("SYNC_TEST_SASL_CAFILE") or None,
    )


def sasl_container(username: str, password: str) -> Any:
    """Build a single-node KRaft Kafka whose client listener takes PLAIN and both SCRAMs.

    NOTE: written for testcontainers 4.15 and confluentinc/cp-kafka 7.6.0, and not run on a
    machine without a Docker engine. The SCRAM credentials are stored when the storage is
    formatted (kafka-storage --add-scram, Kafka 3.5 or later).
    """
    from testcontainers.kafka import KafkaContainer

    scram_module = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    plain_module = (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'user_{username}="{password}";'
    )

    class SaslKafkaContainer(KafkaContainer):  # type: ignore[misc]
        def _configure_kraft(self) -> None:
            super()._configure_kraft()
            credentials = " ".join(
                f'--add-scram "{mechanism}=[name={username},password={password}]"'
                for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512")
            )
            self.boot_command = self.boot_command.replace(
                "kafka-storage format --ignore-formatted",
                f"kafka-storage format --ignore-formatted {credentials}",
            )

    container = SaslKafkaContainer(listener_name="SASL", security_protocol="SASL_PLAINTEXT")
    container.with_env("KAFKA_SASL_ENABLED_MECHANISMS", ",".join(MECHANISMS))
    container.with_env("KAFKA_LISTENER_NAME_SASL_PLAIN_SASL_JAAS_CONFIG", plain_module)
    for suffix in ("256", "512"):
        container.with_env(
            f"KAFKA_LISTENER_NAME_SASL_SCRAM___SHA___{suffix}_SASL_JAAS_CONFIG", scram_module
        )
    return container.with_kraft()


@pytest.fixture(scope="module")
def sasl_cluster() -> Iterator[SaslCluster]:
    servers = os.environ.get("SYNC_TEST_SASL_BOOTSTRAP_SERVERS")
    if servers:
        yield cluster_from_environment(servers)
        return
    if not _docker_answers():
        pytest.skip(SKIP_REASON)
    username, password = "sync-stream", secrets.token_urlsafe(16)
    with sasl_container(username, password) as kafka:
        yield SaslCluster(
            bootstrap_servers=kafka.get_bootstrap_server(),
            security_protocol="SASL_PLAINTEXT",
            mechanisms=MECHANISMS,
            username=username,
            password=password,
        )


def sasl_settings(cluster: SaslCluster, mechanism: str, **kafka: Any) -> Settings:
    run_id = uuid.uuid4().hex[:10]
    options: dict[str, Any] = {
        "bootstrap_servers": cluster.bootstrap_servers,
        "security_protocol": cluster.security_protocol,
        "sasl_mechanism": mechanism,
        "sasl_username": cluster.username,
        "sasl_password": cluster.password,
        "group_id": f"group-{run_id}",
        "session_timeout_ms": 6000,
        "heartbeat_interval_ms": 1000,
    }
    if cluster.cafile:
        options["ssl_cafile"] = cluster.cafile
    options.update(kafka)
    return load_settings(
        kafka=options,
        topics={"prefix": f"t{run_id}.", "partitions": 3},
        commit_interval_ms=200,
        shutdown_timeout_ms=10_000,
    )


def require_mechanism(cluster: SaslCluster, mechanism: str) -> None:
    if mechanism not in cluster.mechanisms:
        pytest.skip(f"the SASL test cluster is set up for {', '.join(cluster.mechanisms)} only")


@pytest.mark.parametrize("mechanism", MECHANISMS)
async def test_pipeline_over_sasl(sasl_cluster: SaslCluster, mechanism: str) -> None:
    require_mechanism(sasl_cluster, mechanism)
    settings = sasl_settings(sasl_cluster, mechanism)
    generic = load_example("sync-generic.json")

    await create_topics(settings)
    async with Processor(settings, Metrics()):
        producer = create_producer(settings.kafka)
        await producer.start()
        try:
            await publish_package(producer, settings.topics.source_topic("fe-build"), generic)
        finally:
            await producer.stop()
        printers = await wait_for_count(settings, settings.topics.facade_topic("printer"), 4)
        builds = await wait_for_count(settings, settings.topics.facade_topic("fe-build"), 2)

    expected_printers = {
        f"{p['cdnId']}:{p['restaurantId']}:{p['printerId']}"
        for p in generic["processes"]["printers"]["records"]
    }
    assert {r.key.decode() for r in printers} == expected_printers
    assert len(builds) == 2


async def test_wrong_sasl_password_names_settings(sasl_cluster: SaslCluster) -> None:
    mechanism = sasl_cluster.mechanisms[-1]
    wrong_password = "wrong-" + secrets.token_urlsafe(12)
    settings = sasl_settings(sasl_cluster, mechanism, sasl_password=wrong_password)

    with pytest.raises(SettingsError) as raised:
        await Processor(settings, Metrics()).start()

    message = str(raised.value)
    assert "SYNC_KAFKA__SASL_USERNAME/SYNC_KAFKA__SASL_PASSWORD" in message
    assert wrong_password not in message
    assert sasl_cluster.password not in message


@pytest.mark.parametrize("mechanism", MECHANISMS)
async def test_sasl_to_broker_without_sasl_fails_clearly(mechanism: str) -> None:
    """The embedded broker offers no SASL mechanism, so the start fails naming the setting."""
    password = secrets.token_urlsafe(12)
    async with EmbeddedBroker() as broker:
        settings = load_settings(
            kafka={
                "bootstrap_servers": broker.bootstrap_servers,
                "security_protocol": "SASL_PLAINTEXT",
                "sasl_mechanism": mechanism,
                "sasl_username": "sync-stream",
                "sasl_password": password,
            }
        )
        with pytest.raises(SettingsError) as raised:
            await Processor(settings, Metrics()).start()

    message = str(raised.value)
    assert message.startswith("SYNC_KAFKA__SASL_MECHANISM: 127.0.0.1:")
    assert f"does not accept SASL {mechanism}" in message
    assert password not in message
