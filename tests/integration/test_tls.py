"""The pipeline over TLS and mutual TLS, through a TLS-terminating proxy in front of a broker.

Each test starts its own embedded broker that advertises the proxy's port, so the bootstrap
connection and every later one go through the proxy.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from sync_stream.embedded import EmbeddedBroker
from sync_stream.embedded.broker import free_port
from sync_stream.errors import SettingsError
from sync_stream.kafka.clients import create_admin, create_producer
from sync_stream.kafka.topics import create_topics
from sync_stream.observability.metrics import Metrics
from sync_stream.publish import publish_package
from sync_stream.runtime.processor import Processor
from sync_stream.settings import Settings, load_settings
from tests.integration.conftest import load_example, wait_for, wait_for_count
from tests.integration.tls_proxy import LOOPBACK, ClientFiles, TestPki, TlsProxy

pytestmark = pytest.mark.integration

# A bad TLS setting must stop the start well before a request would time out.
FAIL_FAST_S = 5.0


@pytest.fixture(scope="module")
def pki() -> TestPki:
    return TestPki()


@pytest.fixture(scope="module")
def client_files(pki: TestPki, tmp_path_factory: pytest.TempPathFactory) -> ClientFiles:
    return pki.write_client_files(tmp_path_factory.mktemp("tls-client"))


@pytest.fixture(scope="module")
def foreign_files(tmp_path_factory: pytest.TempPathFactory) -> ClientFiles:
    """Files from another CA: clients that use them reject the proxy's certificate, and a
    proxy that requires client certificates rejects theirs."""
    return TestPki().write_client_files(tmp_path_factory.mktemp("tls-foreign"))


@asynccontextmanager
async def tls_broker(pki: TestPki, *, require_client_cert: bool) -> AsyncIterator[TlsProxy]:
    """Start a proxy on a free port and a broker behind it that advertises the proxy."""
    broker_port = free_port()
    context = pki.server_context(require_client_cert=require_client_cert)
    async with (
        TlsProxy(broker_port, context) as proxy,
        EmbeddedBroker(broker_port, advertised_port=proxy.port),
    ):
        yield proxy


def tls_settings(proxy: TlsProxy, **kafka: Any) -> Settings:
    run_id = uuid.uuid4().hex[:10]
    return load_settings(
        kafka={
            "bootstrap_servers": f"{LOOPBACK}:{proxy.port}",
            "group_id": f"group-{run_id}",
            "session_timeout_ms": 6000,
            "heartbeat_interval_ms": 1000,
            **kafka,
        },
        topics={"prefix": f"t{run_id}.", "partitions": 3},
        commit_interval_ms=200,
        shutdown_timeout_ms=10_000,
    )


async def advertised_ports(settings: Settings) -> set[int]:
    admin = create_admin(settings.kafka)
    await admin.start()
    try:
        cluster = await admin.describe_cluster()
    finally:
        await admin.close()
    return {broker["port"] for broker in cluster["brokers"]}


async def run_generic_package(settings: Settings) -> dict[str, list[Any]]:
    """Create the topics, run the processor on sync-generic.json and read the facades."""
    generic = load_example("sync-generic.json")
    await create_topics(settings)
    async with Processor(settings, Metrics()):
        producer = create_producer(settings.kafka)
        await producer.start()
        try:
            await publish_package(producer, settings.topics.source_topic("fe-build"), generic)
        finally:
            await producer.stop()
        expected = {"printer": 4, "fe-build": 2, "pos": 2}
        return {
            facade: await wait_for_count(settings, settings.topics.facade_topic(facade), count)
            for facade, count in expected.items()
        }


def check_generic_outputs(outputs: dict[str, list[Any]]) -> None:
    generic = load_example("sync-generic.json")
    builds = {
        f"{b['module']}:{b['version']}:{b['buildNumber']}"
        for b in generic["processes"]["build_info"]["records"]
    }
    printers = {
        f"{p['cdnId']}:{p['restaurantId']}:{p['printerId']}"
        for p in generic["processes"]["printers"]["records"]
    }
    assert {r.key.decode() for r in outputs["fe-build"]} == builds
    assert {r.key.decode() for r in outputs["pos"]} == builds
    assert {r.key.decode() for r in outputs["printer"]} == printers


async def test_pipeline_over_server_tls(pki: TestPki, client_files: ClientFiles) -> None:
    async with tls_broker(pki, require_client_cert=False) as proxy:
        settings = tls_settings(proxy, security_protocol="SSL", ssl_cafile=client_files.cafile)
        outputs = await run_generic_package(settings)
        assert await advertised_ports(settings) == {proxy.port}

    check_generic_outputs(outputs)
    # At least the admin, producer, consumer and facade readers each made a TLS connection.
    assert proxy.handshakes >= 4
    assert proxy.client_subjects == []


async def test_pipeline_over_mutual_tls(pki: TestPki, client_files: ClientFiles) -> None:
    async with tls_broker(pki, require_client_cert=True) as proxy:
        settings = tls_settings(
            proxy,
            security_protocol="SSL",
            ssl_cafile=client_files.cafile,
            ssl_certfile=client_files.certfile,
            ssl_keyfile=client_files.keyfile,
        )
        outputs = await run_generic_package(settings)
        assert await advertised_ports(settings) == {proxy.port}

    check_generic_outputs(outputs)
    assert proxy.handshakes >= 4
    assert len(proxy.client_subjects) == proxy.handshakes
    assert all("commonName=sync-stream test client" in s for s in proxy.client_subjects)


def processor_start(settings: Settings) -> Awaitable[None]:
    return Processor(settings, Metrics()).start()


def topic_creation(settings: Settings) -> Awaitable[Any]:
    return create_topics(settings)


START_PATHS: list[Callable[[Settings], Awaitable[Any]]] = [processor_start, topic_creation]


async def start_error(start: Callable[[Settings], Awaitable[Any]], settings: Settings) -> str:
    """Run a start path that must fail; return its message after checking it failed fast."""
    started = time.monotonic()
    with pytest.raises(SettingsError) as raised:
        await start(settings)
    elapsed = time.monotonic() - started
    assert elapsed < FAIL_FAST_S, f"failed after {elapsed:.1f} s"
    return str(raised.value)


async def failed_handshakes(proxy: TlsProxy) -> list[str]:
    """Wait until the proxy has recorded a failed handshake; return every one it recorded.

    The client may report its error before the proxy's side of the connection has ended.
    """

    async def recorded() -> bool:
        return bool(proxy.handshake_errors)

    await wait_for(recorded, 5, "the proxy to record a failed handshake")
    return list(proxy.handshake_errors)


@pytest.mark.parametrize("start", START_PATHS)
async def test_wrong_ca_names_cafile(
    pki: TestPki, foreign_files: ClientFiles, start: Callable[[Settings], Awaitable[Any]]
) -> None:
    async with tls_broker(pki, require_client_cert=False) as proxy:
        settings = tls_settings(proxy, security_protocol="SSL", ssl_cafile=foreign_files.cafile)
        message = await start_error(start, settings)
        handshake_errors = await failed_handshakes(proxy)

    assert message.startswith("SYNC_KAFKA__SSL_CAFILE: the TLS certificate of 127.0.0.1:")
    assert "not trusted" in message
    assert str(foreign_files.cafile) in message
    assert proxy.handshakes == 0
    assert len(handshake_errors) == 1  # the client gave up after one attempt


@pytest.mark.parametrize("start", START_PATHS)
async def test_missing_client_cert_names_certfile(
    pki: TestPki, client_files: ClientFiles, start: Callable[[Settings], Awaitable[Any]]
) -> None:
    async with tls_broker(pki, require_client_cert=True) as proxy:
        settings = tls_settings(proxy, security_protocol="SSL", ssl_cafile=client_files.cafile)
        message = await start_error(start, settings)
        handshake_errors = await failed_handshakes(proxy)

    assert message.startswith("SYNC_KAFKA__SSL_CERTFILE: 127.0.0.1:")
    assert "requires a client certificate" in message
    assert "SYNC_KAFKA__SSL_KEYFILE" in message
    assert proxy.handshakes == 0
    assert handshake_errors == ["PEER_DID_NOT_RETURN_A_CERTIFICATE"]


async def test_untrusted_client_cert_names_certfile(
    pki: TestPki, client_files: ClientFiles, foreign_files: ClientFiles
) -> None:
    async with tls_broker(pki, require_client_cert=True) as proxy:
        settings = tls_settings(
            proxy,
            security_protocol="SSL",
            ssl_cafile=client_files.cafile,
            ssl_certfile=foreign_files.certfile,
            ssl_keyfile=foreign_files.keyfile,
        )
        message = await start_error(processor_start, settings)
        handshake_errors = await failed_handshakes(proxy)

    assert message.startswith("SYNC_KAFKA__SSL_CERTFILE: 127.0.0.1:")
    assert "rejected the client certificate" in message
    assert str(foreign_files.certfile) in message
    assert handshake_errors == ["CERTIFICATE_VERIFY_FAILED"]


async def test_plaintext_client_names_security_protocol(pki: TestPki) -> None:
    async with tls_broker(pki, require_client_cert=False) as proxy:
        message = await start_error(processor_start, tls_settings(proxy))

    assert message.startswith("SYNC_KAFKA__SECURITY_PROTOCOL: 127.0.0.1:")
    assert "SECURITY_PROTOCOL=PLAINTEXT" in message


async def test_certificate_for_other_host_names_bootstrap(tmp_path: Path) -> None:
    other_host = TestPki(server_names=("broker.other.test",))
    files = other_host.write_client_files(tmp_path)
    async with tls_broker(other_host, require_client_cert=False) as proxy:
        settings = tls_settings(proxy, security_protocol="SSL", ssl_cafile=files.cafile)
        message = await start_error(processor_start, settings)

    assert message.startswith("SYNC_KAFKA__BOOTSTRAP_SERVERS: the TLS certificate of 127.0.0.1:")
    assert "does not name 127.0.0.1" in message
    assert proxy.handshakes == 0


async def test_silent_close_names_certfile(pki: TestPki, client_files: ClientFiles) -> None:
    """A server that drops a client without a certificate and sends no alert."""
    broker_port = free_port()
    context = pki.server_context(require_client_cert=True)
    async with (
        TlsProxy(broker_port, context, send_alerts=False) as proxy,
        EmbeddedBroker(broker_port, advertised_port=proxy.port),
    ):
        settings = tls_settings(proxy, security_protocol="SSL", ssl_cafile=client_files.cafile)
        message = await start_error(processor_start, settings)
        handshake_errors = await failed_handshakes(proxy)

    assert message.startswith("SYNC_KAFKA__SSL_CERTFILE: 127.0.0.1:")
    assert "closed the connection right after the TLS handshake" in message
    assert "SYNC_KAFKA__SSL_CERTFILE (now unset)" in message
    assert handshake_errors == ["PEER_DID_NOT_RETURN_A_CERTIFICATE"]
