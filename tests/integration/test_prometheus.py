"""A real Prometheus server scrapes a processor and fires the transformer-failure alert.

Needs the `prometheus` server binary (Debian package `prometheus`) and is skipped without
it. The server listens on a free loopback port and keeps its data in the test's tmp_path.
It loads deploy/prometheus/alerts.yml unchanged, because SyncStreamTransformFailures has no
`for:` duration and so fires at the first evaluation that returns a series.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import time
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiokafka import AIOKafkaProducer
from prometheus_client import start_http_server

from sync_stream.embedded.broker import LOOPBACK, free_port
from sync_stream.kafka.topics import create_topics
from sync_stream.observability.metrics import Metrics
from sync_stream.publish import publish_bytes
from sync_stream.runtime.processor import Processor
from sync_stream.settings import Settings
from tests.integration.conftest import EXAMPLES, wait_for

PROMETHEUS_BINARY = shutil.which("prometheus")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(
        PROMETHEUS_BINARY is None,
        reason="prometheus not on PATH; install the Debian package `prometheus` to run this test",
    ),
]

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
ALERTS_FILE = DEPLOY / "alerts.yml"
DEPLOYED_CONFIG = DEPLOY / "prometheus.yml"
PROCESSOR_JOB = "sync-stream-processor"
ALERT = "SyncStreamTransformFailures"
INTERVAL_S = 1
START_TIMEOUT_S = 15.0
SCRAPE_TIMEOUT_S = 15.0
FIRING_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0


@dataclass
class PrometheusServer:
    """A Prometheus process started by the test, and where to reach it."""

    url: str
    process: asyncio.subprocess.Process
    log_path: Path

    def get(self, path: str, **params: str) -> Any:
        """Send a GET to the HTTP API and return the `data` field of its JSON response."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=5) as response:
            document = json.load(response)
        assert document["status"] == "success", document
        return document["data"]

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def write_config(directory: Path, metrics_port: int) -> Path:
    """Write a configuration that scrapes one processor on loopback every second.

    The scrape job keeps the deployed processor job's name and relabelling, which is what
    adds the label role="processor".
    """
    deployed = yaml.safe_load(DEPLOYED_CONFIG.read_text())
    jobs = {job["job_name"]: job for job in deployed["scrape_configs"]}
    config = {
        "global": {
            "scrape_interval": f"{INTERVAL_S}s",
            "scrape_timeout": f"{INTERVAL_S}s",
            "evaluation_interval": f"{INTERVAL_S}s",
        },
        "rule_files": [str(ALERTS_FILE)],
        "scrape_configs": [
            {
                "job_name": PROCESSOR_JOB,
                "static_configs": [{"targets": [f"{LOOPBACK}:{metrics_port}"]}],
                "relabel_configs": jobs[PROCESSOR_JOB]["relabel_configs"],
            }
        ],
    }
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture
def metrics_settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(metrics_port=free_port())


@pytest.fixture
async def prometheus(tmp_path: Path, metrics_settings: Settings) -> AsyncIterator[PrometheusServer]:
    """Start Prometheus as a subprocess, wait until it is ready, and stop it afterwards."""
    assert PROMETHEUS_BINARY is not None
    assert metrics_settings.metrics_port is not None
    config_path = write_config(tmp_path, metrics_settings.metrics_port)
    data_dir = tmp_path / "data"
    port = free_port()
    log_path = tmp_path / "prometheus.log"
    with log_path.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            PROMETHEUS_BINARY,
            f"--config.file={config_path}",
            f"--storage.tsdb.path={data_dir}",
            f"--web.listen-address={LOOPBACK}:{port}",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log_file,
            stderr=asyncio.subprocess.STDOUT,
        )
    server = PrometheusServer(f"http://{LOOPBACK}:{port}", process, log_path)
    try:
        await wait_until_ready(server)

        # The port was free a moment before the start, but another Prometheus, such as the
        # service that the Debian package can start, could have taken it since. The storage
        # path identifies this server.
        flags = await asyncio.to_thread(server.get, "/api/v1/status/flags")
        assert flags["storage.tsdb.path"] == str(data_dir)

        yield server
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            async with asyncio.timeout(STOP_TIMEOUT_S):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()


async def wait_until_ready(server: PrometheusServer) -> None:
    """Poll /-/ready until it returns 200. Fail with the server's log if it exits or times out."""

    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"{server.url}/-/ready", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    async def ready_or_exited() -> bool:
        return server.process.returncode is not None or await asyncio.to_thread(ready)

    try:
        await wait_for(ready_or_exited, START_TIMEOUT_S, "Prometheus to become ready")
    except AssertionError as error:
        raise AssertionError(f"{error}\nPrometheus log:\n{server.log_tail()}") from None
    assert server.process.returncode is None, (
        f"Prometheus exited with code {server.process.returncode}\n{server.log_tail()}"
    )


def alert_rule(server: PrometheusServer, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the alerting rule called `name` and the rule group that contains it."""
    groups = server.get("/api/v1/rules", type="alert")["groups"]
    for group in groups:
        for rule in group["rules"]:
            if rule["name"] == name:
                return group, rule
    raise AssertionError(f"alert rule {name} not loaded from {ALERTS_FILE}")


def active_alerts(server: PrometheusServer, name: str) -> list[dict[str, Any]]:
    alerts: list[dict[str, Any]] = server.get("/api/v1/alerts")["alerts"]
    return [alert for alert in alerts if alert["labels"]["alertname"] == name]


def instant_value(server: PrometheusServer, query: str) -> float | None:
    """Return the value of a query that yields at most one series, or None for no series."""
    result = server.get("/api/v1/query", query=query)["result"]
    assert len(result) <= 1, result
    return float(result[0]["value"][1]) if result else None


async def wait_for_rule_evaluation(server: PrometheusServer, after: float) -> None:
    """Wait until the group of ALERT has started an evaluation later than Unix time `after`."""

    async def evaluated() -> bool:
        group, _rule = await asyncio.to_thread(alert_rule, server, ALERT)
        return datetime.fromisoformat(group["lastEvaluation"]).timestamp() > after

    await wait_for(evaluated, SCRAPE_TIMEOUT_S, f"an evaluation of {ALERT}")


async def test_prometheus_fires_on_t121_failure(
    metrics_settings: Settings, prometheus: PrometheusServer, producer: AIOKafkaProducer
) -> None:
    settings = metrics_settings
    assert settings.metrics_port is not None
    await create_topics(settings)
    metrics = Metrics()
    server, thread = start_http_server(
        settings.metrics_port, addr=LOOPBACK, registry=metrics.registry
    )
    try:
        async with Processor(settings, metrics):
            await check_silent_on_valid_package(prometheus, settings, producer)
            await check_fires_on_t121_failure(prometheus, settings, producer)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


async def check_silent_on_valid_package(
    prometheus: PrometheusServer, settings: Settings, producer: AIOKafkaProducer
) -> None:
    """Check that the alert stays silent while the processor distributes a valid package."""
    valid = (EXAMPLES / "sync-generic.json").read_bytes()
    await publish_bytes(producer, settings.topics.source_topic("fe-build"), valid)

    # The role label comes from the deployed relabelling, so this query also checks it.
    distributed_query = 'sum(mxp_sync_packages_distributed_total{role="processor"})'

    async def distributed_scraped() -> bool:
        value = await asyncio.to_thread(instant_value, prometheus, distributed_query)
        return value is not None and value >= 1

    await wait_for(distributed_scraped, SCRAPE_TIMEOUT_S, "a scrape of the distributed package")
    scraped_at = time.time()
    # One interval of margin, because an evaluation's timestamp is aligned to the interval
    # and can be a little older than the moment the evaluation started.
    await wait_for_rule_evaluation(prometheus, scraped_at + INTERVAL_S)
    _group, rule = await asyncio.to_thread(alert_rule, prometheus, ALERT)
    assert rule["health"] == "ok", rule.get("lastError")

    heartbeat_query = 'mxp_sync_consume_loop_heartbeat_timestamp_seconds{role="processor"}'
    heartbeat = await asyncio.to_thread(instant_value, prometheus, heartbeat_query)
    assert heartbeat is not None
    assert heartbeat > 0
    failures = await asyncio.to_thread(
        instant_value, prometheus, "sum(mxp_sync_transform_failures_total)"
    )
    assert failures is None
    assert await asyncio.to_thread(active_alerts, prometheus, ALERT) == []


async def check_fires_on_t121_failure(
    prometheus: PrometheusServer, settings: Settings, producer: AIOKafkaProducer
) -> None:
    """Publish a package that T121 rejects and wait until Prometheus reports the alert firing."""
    invalid = (EXAMPLES / "invalid" / "t121_failure.json").read_bytes()
    await publish_bytes(producer, settings.topics.source_topic("http"), invalid)

    seen: list[dict[str, Any]] = []

    async def firing() -> bool:
        nonlocal seen
        seen = await asyncio.to_thread(active_alerts, prometheus, ALERT)
        return any(alert["state"] == "firing" for alert in seen)

    try:
        await wait_for(firing, FIRING_TIMEOUT_S, f"{ALERT} to fire")
    except AssertionError as error:
        raise AssertionError(
            f"{error}; last {ALERT} alerts: {seen}\nPrometheus log:\n{prometheus.log_tail()}"
        ) from None

    assert len(seen) == 1, seen
    alert = seen[0]
    assert alert["labels"]["transformer"] == "T121"
    assert alert["labels"]["reason"] == "invalid_users_pos"
    assert alert["labels"]["severity"] == "critical"
    assert alert["annotations"]["summary"] == (
        "T121 failed and rolled packages back (invalid_users_pos)"
    )
