"""Service settings: one frozen model read from `SYNC_*` environment variables or a file.

Nested groups use `__` in variable names, for example `SYNC_KAFKA__BOOTSTRAP_SERVERS` or
`SYNC_LIMITS__MAX_PACKAGE_BYTES`. Mappings such as the routing table take JSON.
"""

from __future__ import annotations

import json
import os
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings import SettingsError as PydanticSettingsError

from sync_stream.errors import SettingsError

TransformerName = Literal["T080", "T121"]

ENV_PREFIX = "SYNC_"
ENV_NESTED_DELIMITER = "__"
FAILURE_HEADERS_ALLOWANCE_BYTES = 64 * 1024
KAFKA_VAR = f"{ENV_PREFIX}KAFKA{ENV_NESTED_DELIMITER}"


class _Group(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KafkaSettings(_Group):
    """Connection and security options passed to every Kafka client."""

    bootstrap_servers: str = Field(
        default="",
        description="Comma-separated host:port list; empty means the embedded broker (demo only).",
    )
    client_id: str = "sync-stream"
    group_id: str = "mxp-sync"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_key_password: SecretStr | None = None
    ssl_check_hostname: bool = True
    request_timeout_ms: int = Field(
        default=40_000, ge=1_000, description="Consumer and admin requests; above session timeout."
    )
    producer_request_timeout_ms: int = Field(
        default=30_000,
        ge=1_000,
        description="How long a produced batch may wait for its acknowledgement before it fails.",
    )
    session_timeout_ms: int = Field(default=10_000, ge=1_000)
    heartbeat_interval_ms: int = Field(default=3_000, ge=100)
    max_poll_interval_ms: int = Field(default=300_000, ge=1_000)
    fetch_max_records: int = Field(default=500, ge=1, description="Records per getmany call.")
    producer_linger_ms: int = Field(default=0, ge=0)
    producer_max_request_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    producer_batch_bytes: int = Field(
        default=256 * 1024, ge=1024, description="Size of one record batch per partition."
    )
    fetch_max_wait_ms: int = Field(
        default=100,
        ge=0,
        description="How long the broker may hold a fetch that finds no new record.",
    )
    producer_compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = "none"

    @field_validator("ssl_cafile", "ssl_certfile", "ssl_keyfile")
    @classmethod
    def _file_exists(cls, path: Path | None) -> Path | None:
        if path is not None and not path.is_file():
            raise ValueError(f"file not found: {path}")
        return path

    @model_validator(mode="after")
    def _check_security(self) -> KafkaSettings:
        # Messages name the variables themselves: these rules span several fields.
        uses_sasl = self.security_protocol.startswith("SASL")
        if uses_sasl and (
            not self.sasl_mechanism or not self.sasl_username or self.sasl_password is None
        ):
            raise ValueError(
                f"{KAFKA_VAR}SECURITY_PROTOCOL={self.security_protocol} needs "
                f"{KAFKA_VAR}SASL_MECHANISM, {KAFKA_VAR}SASL_USERNAME and "
                f"{KAFKA_VAR}SASL_PASSWORD"
            )
        if self.request_timeout_ms <= self.session_timeout_ms:
            raise ValueError(
                f"{KAFKA_VAR}REQUEST_TIMEOUT_MS must be greater than {KAFKA_VAR}SESSION_TIMEOUT_MS"
            )
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ValueError(
                f"{KAFKA_VAR}SSL_CERTFILE and {KAFKA_VAR}SSL_KEYFILE must be set together"
            )
        return self

    @property
    def uses_ssl(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")


class TopicSettings(_Group):
    """Topic names (after the prefix) and the layout used when the service creates them."""

    prefix: str = "mxp."
    sources: dict[str, str] = Field(
        default_factory=lambda: {
            "init": "etl.init",
            "fe-build": "etl.fe-build",
            "printer": "etl.printer",
            "http": "etl.http",
        },
        description="Source module -> input topic name without the prefix.",
    )
    facade_pattern: str = "facade.{facade}"
    retry_pattern: str = "sync.retry.{tier}"
    dlq: str = "sync.dlq"
    status: str = "sync.status"
    compacted_facades: tuple[str, ...] = ("users-pos",)
    partitions: int = Field(default=6, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    dlq_retention_ms: int = Field(default=30 * 24 * 3600 * 1000, ge=3_600_000)

    def full(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def source_topic(self, source: str) -> str:
        return self.full(self.sources[source])

    def facade_topic(self, facade: str) -> str:
        return self.full(self.facade_pattern.format(facade=facade))

    def retry_topic(self, tier: int) -> str:
        return self.full(self.retry_pattern.format(tier=tier))

    @property
    def dlq_topic(self) -> str:
        return self.full(self.dlq)

    @property
    def status_topic(self) -> str:
        return self.full(self.status)

    @property
    def input_topics(self) -> tuple[str, ...]:
        return tuple(self.source_topic(source) for source in self.sources)


class Route(_Group):
    """Route of one process: the transformer that maps its records and the destination facades."""

    transformer: TransformerName
    facades: tuple[str, ...] = Field(min_length=1)


def _default_routes() -> dict[str, Route]:
    return {
        "build_info": Route(transformer="T080", facades=("fe-build", "pos")),
        "users_pos": Route(transformer="T121", facades=("users-pos",)),
        "printers": Route(transformer="T121", facades=("printer",)),
    }


class Limits(_Group):
    """Bounds the F008 gate enforces on every package."""

    max_chunk_load: int = Field(default=1000, ge=1)
    max_package_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_chunks: int = Field(default=10_000, ge=1)


class RetrySettings(_Group):
    """In-process attempts for distribution failures, then the retry tiers, then the DLQ."""

    attempts: int = Field(default=3, ge=1, description="In-process attempts per package.")
    backoff_initial_ms: int = Field(default=200, ge=1)
    backoff_max_ms: int = Field(default=5_000, ge=1)
    backoff_multiplier: float = Field(default=2.0, ge=1.0)
    backoff_jitter: float = Field(default=0.2, ge=0.0, le=1.0)
    tier_delays_ms: tuple[int, ...] = Field(default=(5_000, 30_000, 300_000))

    @field_validator("tier_delays_ms")
    @classmethod
    def _positive_delays(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(delay <= 0 for delay in value):
            raise ValueError("every retry tier delay must be > 0 ms")
        return value


class ApiSettings(_Group):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    tokens: tuple[SecretStr, ...] = ()
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    publish_timeout_ms: int = Field(
        default=10_000,
        ge=100,
        description="How long POST /api/v1/facade waits for Kafka to acknowledge its chunks.",
    )
    loop_stale_after_ms: int = Field(
        default=60_000,
        ge=1_000,
        description="/healthz fails when the consume loop has not completed an iteration for "
        "this long.",
    )


class Settings(BaseSettings):
    """Every setting of the service. Read once at start; invalid values stop the start."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        frozen=True,
        extra="forbid",
        env_file=None,
    )

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    topics: TopicSettings = Field(default_factory=TopicSettings)
    routes: dict[str, Route] = Field(default_factory=_default_routes)
    limits: Limits = Field(default_factory=Limits)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    api: ApiSettings = Field(default_factory=ApiSettings)

    create_topics_on_start: bool = True
    processing_guarantee: Literal["at_least_once", "exactly_once"] = "at_least_once"
    partition_queue_batches: int = Field(
        default=2, ge=1, description="Fetched batches queued per partition before it is paused."
    )
    commit_interval_ms: int = Field(default=1_000, ge=10)
    shutdown_timeout_ms: int = Field(default=30_000, ge=100)
    log_format: Literal["json", "console"] = "json"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    metrics_port: int | None = Field(default=None, ge=0, le=65535)

    @field_validator("routes")
    @classmethod
    def _some_route(cls, routes: dict[str, Route]) -> dict[str, Route]:
        if not routes:
            raise ValueError("at least one process must be routed")
        return routes

    @property
    def failure_request_bytes(self) -> int:
        """Request size limit for retry and DLQ writes: any accepted package plus headers."""
        return max(
            self.kafka.producer_max_request_bytes,
            self.limits.max_package_bytes + FAILURE_HEADERS_ALLOWANCE_BYTES,
        )

    @cached_property
    def facades(self) -> tuple[str, ...]:
        """Every destination facade named in the routing table, in first-seen order."""
        seen: dict[str, None] = {}
        for route in self.routes.values():
            for facade in route.facades:
                seen.setdefault(facade)
        return tuple(seen)


def _variable_name(location: tuple[int | str, ...]) -> str:
    """Map a pydantic error location to the environment variable a user would set."""
    parts = [str(part) for part in location if not isinstance(part, int)]
    return ENV_PREFIX + ENV_NESTED_DELIMITER.join(part.upper() for part in parts)


def _problem(error: Any) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    if message.startswith(ENV_PREFIX):
        return message
    return f"{_variable_name(error['loc'])}: {message}"


def _unparsable_variables(env_file: str | os.PathLike[str] | None) -> list[str]:
    """Name the SYNC_* variables whose value looks like JSON but does not parse."""
    candidates = {k: v for k, v in os.environ.items() if k.upper().startswith(ENV_PREFIX)}
    if env_file is not None and Path(env_file).is_file():
        for line in Path(env_file).read_text(encoding="utf-8").splitlines():
            name, _, value = line.partition("=")
            if name.strip().upper().startswith(ENV_PREFIX):
                candidates[name.strip()] = value.strip().strip("'\"")
    bad = []
    for name, value in candidates.items():
        if value.lstrip()[:1] in ("[", "{"):
            try:
                json.loads(value)
            except ValueError:
                bad.append(name.upper())
    return sorted(bad)


def load_settings(env_file: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """Read the settings, raising SettingsError that names each invalid variable."""
    try:
        return Settings(_env_file=Path(env_file) if env_file else None, **overrides)
    except ValidationError as exc:
        problems = [_problem(error) for error in exc.errors(include_input=False)]
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None
    except PydanticSettingsError:
        names = ", ".join(_unparsable_variables(env_file)) or "a SYNC_* variable"
        raise SettingsError(f"invalid settings: {names}: value is not valid JSON") from None
