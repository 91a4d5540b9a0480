"""Build aiokafka clients from settings, with the same security options on every client."""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import Any, TypeVar

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.conn import collect_hosts, create_conn
from aiokafka.errors import (
    IllegalSaslStateError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)

from sync_stream.errors import SettingsError
from sync_stream.kafka.partitioner import Murmur2Partitioner
from sync_stream.settings import KafkaSettings

log = structlog.get_logger(__name__)

_E = TypeVar("_E", bound=BaseException)

# OpenSSL verify codes of a certificate that is valid but names another host.
_NAME_MISMATCH_CODES = frozenset({62, 64})  # X509_V_ERR_HOSTNAME_MISMATCH, _IP_ADDRESS_MISMATCH

# OpenSSL reasons for TLS alerts a server sends when it rejects the client certificate or
# receives none. TLS 1.3 servers send them after the handshake, so the client sees them on
# its first read.
_CLIENT_CERTIFICATE_ALERTS = frozenset(
    {
        "TLSV13_ALERT_CERTIFICATE_REQUIRED",
        "SSLV3_ALERT_BAD_CERTIFICATE",
        "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
        "SSLV3_ALERT_CERTIFICATE_EXPIRED",
        "SSLV3_ALERT_CERTIFICATE_REVOKED",
        "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
        "TLSV1_ALERT_UNKNOWN_CA",
        "TLSV1_ALERT_ACCESS_DENIED",
    }
)


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
        partitioner=Murmur2Partitioner(),
        max_batch_size=kafka.producer_batch_bytes,
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
        fetch_max_wait_ms=kafka.fetch_max_wait_ms,
        isolation_level="read_committed",
    )
    options.update(overrides)
    return AIOKafkaConsumer(*topics, **options)


def create_admin(kafka: KafkaSettings) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**common_options(kafka))


async def check_connection(kafka: KafkaSettings) -> None:
    """Connect to a bootstrap server as the clients do; raise SettingsError if none accepts.

    The connection makes the TLS handshake, sends an ApiVersions request and, with SASL,
    authenticates. The request matters because a TLS 1.3 server rejects a missing or
    untrusted client certificate only after the handshake. The aiokafka clients would fail
    too, but with "Unable to bootstrap" and no hint of the setting to fix.
    The check waits up to `request_timeout_ms` for each server.
    """
    options = common_options(kafka)
    del options["bootstrap_servers"]
    timeout_s = kafka.request_timeout_ms / 1000
    problems: list[str] = []
    for host, port in _bootstrap_addresses(kafka.bootstrap_servers):
        started = time.monotonic()
        try:
            async with asyncio.timeout(timeout_s):
                connection = await create_conn(host, port, **options)
                await connection.close()
        except (OSError, EOFError, KafkaError, TimeoutError) as exc:
            problems.append(_describe_failure(kafka, host, port, exc))
            continue
        if problems:
            log.warning("kafka bootstrap servers skipped", errors=problems)
        log.info(
            "kafka connection checked",
            server=f"{host}:{port}",
            security_protocol=kafka.security_protocol,
            seconds=round(time.monotonic() - started, 3),
        )
        return
    raise SettingsError("; ".join(dict.fromkeys(problems)))


def _bootstrap_addresses(bootstrap_servers: str) -> list[tuple[str, int]]:
    try:
        hosts = collect_hosts(bootstrap_servers, randomize=False)
    except ValueError:
        raise SettingsError(
            f"SYNC_KAFKA__BOOTSTRAP_SERVERS: invalid value {bootstrap_servers!r}; "
            "expected host:port[,host:port]"
        ) from None
    return [(host, port) for host, port, _family in hosts]


def _describe_failure(kafka: KafkaSettings, host: str, port: int, exc: BaseException) -> str:
    """Explain a failed connection check in a message that starts with the setting to fix.

    Only the messages of the TLS library and the broker are quoted, never the SASL password.
    """
    chain = _exception_chain(exc)
    return (
        _describe_tls_failure(kafka, host, port, chain)
        or _describe_sasl_failure(kafka, host, port, chain)
        or _describe_connection_failure(kafka, host, port, chain)
    )


def _describe_tls_failure(
    kafka: KafkaSettings, host: str, port: int, chain: list[BaseException]
) -> str | None:
    server = f"{host}:{port}"
    verify_error = _first(chain, ssl.SSLCertVerificationError)
    if verify_error is not None:
        reason = verify_error.verify_message.rstrip(".")
        if verify_error.verify_code in _NAME_MISMATCH_CODES:
            return (
                f"SYNC_KAFKA__BOOTSTRAP_SERVERS: the TLS certificate of {server} does not "
                f"name {host} ({reason}); connect by a name or address the certificate lists"
            )
        cafile = (
            f"now {kafka.ssl_cafile}"
            if kafka.ssl_cafile
            else "now unset, so the system CA store is used"
        )
        return (
            f"SYNC_KAFKA__SSL_CAFILE: the TLS certificate of {server} is not trusted "
            f"({reason}); set SYNC_KAFKA__SSL_CAFILE ({cafile}) to the PEM file of the CA "
            "that signed the broker certificate"
        )

    tls_error = _first(chain, ssl.SSLError)
    if tls_error is None:
        return None
    if tls_error.reason not in _CLIENT_CERTIFICATE_ALERTS:
        return (
            f"SYNC_KAFKA__SECURITY_PROTOCOL: the TLS handshake with {server} failed "
            f"({tls_error.reason or tls_error}); check that the listener at that address "
            f"serves TLS as SYNC_KAFKA__SECURITY_PROTOCOL={kafka.security_protocol} expects, "
            "and whether it requires a client certificate"
        )
    if kafka.ssl_certfile is None:
        return (
            f"SYNC_KAFKA__SSL_CERTFILE: {server} requires a client certificate "
            f"({tls_error.reason}); set SYNC_KAFKA__SSL_CERTFILE and SYNC_KAFKA__SSL_KEYFILE"
        )
    return (
        f"SYNC_KAFKA__SSL_CERTFILE: {server} rejected the client certificate "
        f"{kafka.ssl_certfile} ({tls_error.reason}); use a certificate signed by a CA the "
        "broker trusts"
    )


def _describe_sasl_failure(
    kafka: KafkaSettings, host: str, port: int, chain: list[BaseException]
) -> str | None:
    server = f"{host}:{port}"
    login_error = _first(chain, SaslAuthenticationFailed)
    if login_error is not None:
        # The broker's error message names the mechanism and the failure, not the password.
        return (
            f"SYNC_KAFKA__SASL_USERNAME/SYNC_KAFKA__SASL_PASSWORD: {server} rejected the "
            f"{kafka.sasl_mechanism} login of user {kafka.sasl_username!r} ({login_error})"
        )
    if _first(chain, UnsupportedSaslMechanismError) is not None:
        return (
            f"SYNC_KAFKA__SASL_MECHANISM: {server} does not accept SASL {kafka.sasl_mechanism}; "
            "set a mechanism its listener enables, or check that the listener takes SASL "
            f"as SYNC_KAFKA__SECURITY_PROTOCOL={kafka.security_protocol} expects"
        )
    if _first(chain, IllegalSaslStateError) is not None:
        return (
            f"SYNC_KAFKA__SECURITY_PROTOCOL: {server} does not expect SASL authentication "
            "(IllegalSaslStateError); check that its listener matches "
            f"SYNC_KAFKA__SECURITY_PROTOCOL={kafka.security_protocol}"
        )
    return None


def _describe_connection_failure(
    kafka: KafkaSettings, host: str, port: int, chain: list[BaseException]
) -> str:
    server = f"{host}:{port}"
    protocol = f"SYNC_KAFKA__SECURITY_PROTOCOL={kafka.security_protocol}"
    error = chain[0]
    if isinstance(error, TimeoutError):
        return (
            f"SYNC_KAFKA__BOOTSTRAP_SERVERS: connecting to {server} timed out after "
            f"{kafka.request_timeout_ms} ms (SYNC_KAFKA__REQUEST_TIMEOUT_MS); check the "
            f"address and that the listener there matches {protocol}"
        )
    if kafka.uses_ssl and isinstance(error, KafkaError):
        # A failed handshake raises ssl.SSLError, so the handshake passed and the server
        # then closed the connection without sending a TLS alert. A TLS 1.3 server that
        # rejects the client certificate but sends no alert looks like this.
        certfile = f"now {kafka.ssl_certfile}" if kafka.ssl_certfile else "now unset"
        return (
            f"SYNC_KAFKA__SSL_CERTFILE: {server} closed the connection right after the TLS "
            f"handshake ({type(chain[-1]).__name__}). A server that requires a client "
            "certificate may do this when it gets none or one it does not trust: set "
            f"SYNC_KAFKA__SSL_CERTFILE ({certfile}) and SYNC_KAFKA__SSL_KEYFILE to a "
            "certificate signed by a CA the broker trusts. If it requires none, check that "
            f"its listener matches {protocol}"
        )
    if isinstance(error, KafkaError) or _first(chain, EOFError) is not None:
        # The TCP connection worked, but the broker closed it or sent a response the client
        # could not parse. The usual cause is plaintext sent to a TLS listener, or SASL sent
        # to a listener without it.
        return (
            f"SYNC_KAFKA__SECURITY_PROTOCOL: {server} closed the connection during the "
            f"first request ({type(chain[-1]).__name__}); check that the listener at that "
            f"address matches {protocol}"
        )
    return (
        f"SYNC_KAFKA__BOOTSTRAP_SERVERS: cannot connect to {server} ({error}); check the "
        "address and that the broker is running"
    )


def _exception_chain(exc: BaseException) -> list[BaseException]:
    """List the error and the errors it was raised from, outermost first.

    aiokafka reports a connection broken by a TLS alert as KafkaConnectionError whose
    cause is the ssl.SSLError.
    """
    chain = [exc]
    nested = exc.__cause__ or exc.__context__
    while nested is not None and nested not in chain:
        chain.append(nested)
        nested = nested.__cause__ or nested.__context__
    return chain


def _first(chain: list[BaseException], kind: type[_E]) -> _E | None:
    return next((error for error in chain if isinstance(error, kind)), None)
