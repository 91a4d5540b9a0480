"""Client options built from settings, inspected without connecting, and the connection check."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from sync_stream.embedded.broker import free_port
from sync_stream.errors import SettingsError
from sync_stream.kafka.clients import (
    check_connection,
    common_options,
    create_admin,
    create_consumer,
    create_producer,
)
from sync_stream.settings import KafkaSettings, load_settings

PASSWORD = "s3cret-Pa55word"
MECHANISMS = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


def sasl_env(monkeypatch: pytest.MonkeyPatch, protocol: str, mechanism: str) -> None:
    monkeypatch.setenv("SYNC_KAFKA__BOOTSTRAP_SERVERS", "broker-1.test:9093,broker-2.test:9093")
    monkeypatch.setenv("SYNC_KAFKA__SECURITY_PROTOCOL", protocol)
    monkeypatch.setenv("SYNC_KAFKA__SASL_MECHANISM", mechanism)
    monkeypatch.setenv("SYNC_KAFKA__SASL_USERNAME", "sync-stream")
    monkeypatch.setenv("SYNC_KAFKA__SASL_PASSWORD", PASSWORD)


def inner_client(client: AIOKafkaProducer | AIOKafkaConsumer | AIOKafkaAdminClient) -> Any:
    """Return the AIOKafkaClient that stores the connection options of a public client."""
    if isinstance(client, AIOKafkaProducer):
        return client.client
    return client._client


async def built_clients(kafka: KafkaSettings) -> AsyncIterator[tuple[str, Any]]:
    producer = create_producer(kafka)
    consumer = create_consumer(kafka, "mxp.etl.init")
    admin = create_admin(kafka)
    try:
        for name, client in (("producer", producer), ("consumer", consumer), ("admin", admin)):
            yield name, inner_client(client)
    finally:
        await producer.stop()
        await consumer.stop()
        await admin.close()


@pytest.mark.parametrize("mechanism", MECHANISMS)
@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
async def test_sasl_settings_reach_every_client(
    monkeypatch: pytest.MonkeyPatch, protocol: str, mechanism: str
) -> None:
    sasl_env(monkeypatch, protocol, mechanism)
    kafka = load_settings().kafka

    seen = []
    async for name, client in built_clients(kafka):
        seen.append(name)
        assert client._security_protocol == protocol, name
        assert client._sasl_mechanism == mechanism, name
        assert client._sasl_plain_username == "sync-stream", name
        assert client._sasl_plain_password == PASSWORD, name
        assert sorted((host, port) for host, port, _ in client.hosts) == [
            ("broker-1.test", 9093),
            ("broker-2.test", 9093),
        ], name
        if protocol == "SASL_SSL":
            assert isinstance(client._ssl_context, ssl.SSLContext), name
            assert client._ssl_context.verify_mode == ssl.CERT_REQUIRED, name
            assert client._ssl_context.check_hostname, name
        else:
            assert client._ssl_context is None, name
    assert seen == ["producer", "consumer", "admin"]


async def test_plaintext_clients_get_no_sasl_options() -> None:
    kafka = KafkaSettings(bootstrap_servers="127.0.0.1:9092")
    assert "sasl_mechanism" not in common_options(kafka)
    async for name, client in built_clients(kafka):
        assert client._security_protocol == "PLAINTEXT", name
        assert client._sasl_plain_username is None, name
        assert client._sasl_plain_password is None, name
        assert client._ssl_context is None, name


def test_sasl_password_hidden_in_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    sasl_env(monkeypatch, "SASL_SSL", "SCRAM-SHA-512")
    settings = load_settings()
    assert PASSWORD not in repr(settings)
    assert PASSWORD not in str(settings.kafka)


def test_sasl_without_password_names_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    sasl_env(monkeypatch, "SASL_SSL", "PLAIN")
    monkeypatch.delenv("SYNC_KAFKA__SASL_PASSWORD")
    with pytest.raises(SettingsError, match="SYNC_KAFKA"):
        load_settings()


async def test_check_connection_refused_names_bootstrap() -> None:
    port = free_port()  # bound and released, so nothing listens there
    kafka = KafkaSettings(
        bootstrap_servers=f"127.0.0.1:{port}",
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-256",
        sasl_username="sync-stream",
        sasl_password=PASSWORD,  # type: ignore[arg-type]
    )
    with pytest.raises(SettingsError) as raised:
        await check_connection(kafka)
    message = str(raised.value)
    assert message.startswith("SYNC_KAFKA__BOOTSTRAP_SERVERS: cannot connect to 127.0.0.1:")
    assert str(port) in message
    assert PASSWORD not in message


async def test_check_connection_rejects_invalid_port() -> None:
    kafka = KafkaSettings(bootstrap_servers="127.0.0.1:ninety")
    with pytest.raises(SettingsError, match="SYNC_KAFKA__BOOTSTRAP_SERVERS: invalid value"):
        await check_connection(kafka)


async def test_check_connection_needs_bootstrap_servers() -> None:
    with pytest.raises(SettingsError, match="SYNC_KAFKA__BOOTSTRAP_SERVERS: not set"):
        await check_connection(KafkaSettings())
