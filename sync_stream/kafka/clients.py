"""Build aiokafka clients from settings, with the same security options on every client."""

from __future__ import annotations

import ssl
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from sync_stream.errors import SettingsError
from sync_stream.settings import KafkaSettings


def ssl_context(kafka: KafkaSettings) -> ssl.SSLContext:
    """Create the TLS context; a bad CA, certificate or key fails here naming the setting."""
    try:
        context = ssl.create_default_context(
            cafile=str(kafka.ssl_cafile) if kafka.ssl_cafile else None
        )
    except (ssl.SSLError, OSError) as exc:
        raise SettingsError(f"SYNC_KAFKA__SSL_CAFILE: cannot load CA file: {exc}") from None
    context.check_hostname = kafka.ssl_check_hostname
    if kafka.ssl_certfile and kafka.ssl_keyfile:
        password = kafka.ssl_key_password.get_secret_value() if kafka.ssl_key_password else None
        try:
            context.load_cert_chain(str(kafka.ssl_certfile), str(kafka.ssl_keyfile), password)
        except (ssl.SSLError, OSError) as exc:
            raise SettingsError(
                "SYNC_KAFKA__SSL_CERTFILE/SYNC_KAFKA__SSL_KEYFILE: cannot load the client "
                f"certificate and key: {exc}"
            ) from None
    return context


def common_options(kafka: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments shared by the consumer, producer and admin client."""
    if not kafka.bootstrap_servers:
        raise SettingsError("SYNC_KAFKA__BOOTSTRAP_SERVERS: not set (host:port[,host:port])")
    options: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap_servers,
        "client_id": kafka.client_id,
        "security_protocol": kafka.security_protocol,
        "request_timeout_ms": kafka.request_timeout_ms,
    }
    if kafka.uses_ssl:
        options["ssl_context"] = ssl_context(kafka)
    if kafka.security_protocol.startswith("SASL"):
        assert kafka.sasl_password is not None  # KafkaSettings checks this.
        options["sasl_mechanism"] = kafka.sasl_mechanism
        options["sasl_plain_username"] = kafka.sasl_username
        options["sasl_plain_password"] = kafka.sasl_password.get_secret_value()
    return options


def create_producer(kafka: KafkaSettings, **overrides: Any) -> AIOKafkaProducer:
    options = common_options(kafka)
    options.update(
        acks="all",
        request_timeout_ms=kafka.producer_request_timeout_ms,
        linger_ms=kafka.producer_linger_ms,
        max_request_size=kafka.producer_max_request_bytes,
        compression_type=None
        if kafka.producer_compression == "none"
        else kafka.producer_compression,
    )
    options.update(overrides)
    return AIOKafkaProducer(**options)


def create_consumer(kafka: KafkaSettings, *topics: str, **overrides: Any) -> AIOKafkaConsumer:
    options = common_options(kafka)
    options.update(
        group_id=kafka.group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=kafka.session_timeout_ms,
        heartbeat_interval_ms=kafka.heartbeat_interval_ms,
        max_poll_interval_ms=kafka.max_poll_interval_ms,
        isolation_level="read_committed",
    )
    options.update(overrides)
    return AIOKafkaConsumer(*topics, **options)


def create_admin(kafka: KafkaSettings) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**common_options(kafka))
