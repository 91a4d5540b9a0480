"""Shared fixtures: one broker per test session, fresh topics and group per test.

The broker is chosen in this order: an existing cluster named by SYNC_TEST_BOOTSTRAP_SERVERS,
Apache Kafka from testcontainers when a Docker engine responds, else the embedded Tansu broker.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sync_stream.settings import Settings, load_settings


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=5).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def bootstrap_servers() -> Iterator[str]:
    existing = os.environ.get("SYNC_TEST_BOOTSTRAP_SERVERS")
    if existing:
        yield existing
        return
    if _docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as kafka:
            yield kafka.get_bootstrap_server()
        return
    from sync_stream.embedded import EmbeddedBroker

    with EmbeddedBroker() as broker:
        yield broker.bootstrap_servers


@pytest.fixture
def make_settings(bootstrap_servers: str) -> Callable[..., Settings]:
    """Build Settings on the session broker with a topic prefix and group unique to the test."""
    run_id = uuid.uuid4().hex[:10]

    def factory(**overrides: Any) -> Settings:
        kafka = {
            "bootstrap_servers": bootstrap_servers,
            "group_id": f"group-{run_id}",
            "session_timeout_ms": 6000,
            "heartbeat_interval_ms": 1000,
        }
        kafka.update(overrides.pop("kafka", {}))
        topics = {"prefix": f"t{run_id}.", "partitions": 3}
        topics.update(overrides.pop("topics", {}))
        retry = {"tier_delays_ms": (500, 1000), "backoff_initial_ms": 50, "backoff_max_ms": 200}
        retry.update(overrides.pop("retry", {}))
        return load_settings(
            kafka=kafka,
            topics=topics,
            retry=retry,
            commit_interval_ms=200,
            shutdown_timeout_ms=10_000,
            **overrides,
        )

    return factory


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()
