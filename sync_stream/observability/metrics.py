"""Prometheus metrics of the service. The registry is passed in; labels stay few and bounded.

Label values come only from settings and code (topic names, facades, stages, reason codes),
never from record contents, keys, offsets or sync ids.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

PREFIX = "mxp_sync_"

STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
LATENCY_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
)


class Metrics:
    """Every metric the service exports, registered in one registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry

        self.records_consumed = Counter(
            PREFIX + "records_consumed", "Records read from input topics.", ["topic"], registry=r
        )
        self.records_produced = Counter(
            PREFIX + "records_produced",
            "Records acknowledged by the broker, per topic.",
            ["topic"],
            registry=r,
        )
        self.packages_accepted = Counter(
            PREFIX + "packages_accepted",
            "Packages that passed the F008 gate.",
            ["source"],
            registry=r,
        )
        self.packages_rejected = Counter(
            PREFIX + "packages_rejected",
            "Packages rejected at decode or the F008 gate.",
            ["reason"],
            registry=r,
        )
        self.packages_distributed = Counter(
            PREFIX + "packages_distributed",
            "Packages whose every output was acknowledged.",
            ["source"],
            registry=r,
        )
        self.transform_failures = Counter(
            PREFIX + "transform_failures",
            "Packages rolled back because a transformer failed.",
            ["transformer", "reason"],
            registry=r,
        )
        self.build_metadata_ok = Counter(
            PREFIX + "build_metadata_ok", "Packages whose build metadata passed T080.", registry=r
        )
        self.distribution_attempt_failures = Counter(
            PREFIX + "distribution_attempt_failures",
            "In-process distribution attempts that failed.",
            ["retriable"],
            registry=r,
        )
        self.retries = Counter(
            PREFIX + "retries", "Packages sent to a retry tier.", ["tier"], registry=r
        )
        self.retry_overshoot_seconds = Histogram(
            PREFIX + "retry_delay_overshoot_seconds",
            "How long after its due time a retry-tier record was processed.",
            ["tier"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.dead_letters = Counter(
            PREFIX + "dead_letters", "Records written to the DLQ.", ["stage"], registry=r
        )
        self.stale_dropped = Counter(
            PREFIX + "stale_records_dropped",
            "Output records not written because the facade holds a newer version.",
            ["facade"],
            registry=r,
        )
        self.stage_seconds = Histogram(
            PREFIX + "stage_duration_seconds",
            "Processing time per stage and package.",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.end_to_end_seconds = Histogram(
            PREFIX + "end_to_end_latency_seconds",
            "From the input record's timestamp to the acknowledgement of its last output.",
            ["source"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.consumer_lag = Gauge(
            PREFIX + "consumer_lag_records",
            "High watermark minus committed offset, per input partition.",
            ["topic", "partition"],
            registry=r,
        )
        self.in_flight_packages = Gauge(
            PREFIX + "in_flight_packages", "Packages fetched and not yet committed.", registry=r
        )
        self.assigned_partitions = Gauge(
            PREFIX + "assigned_partitions",
            "Input partitions assigned to this processor.",
            registry=r,
        )
        self.rebalances = Counter(
            PREFIX + "rebalances",
            "Partition assignment changes seen by this processor.",
            ["kind"],
            registry=r,
        )
        self.commit_failures = Counter(
            PREFIX + "commit_failures", "Offset commits that failed.", registry=r
        )
        self.loop_heartbeat = Gauge(
            PREFIX + "consume_loop_heartbeat_timestamp_seconds",
            "Unix time the consume loop last completed an iteration.",
            registry=r,
        )
        self.projection_users = Gauge(
            PREFIX + "projection_users", "Users held by the users_pos projection.", registry=r
        )
        self.projection_ready = Gauge(
            PREFIX + "projection_ready",
            "1 once the users_pos projection has caught up.",
            registry=r,
        )
        self.http_requests = Counter(
            PREFIX + "http_requests",
            "HTTP requests served.",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_seconds = Histogram(
            PREFIX + "http_request_duration_seconds",
            "HTTP request latency.",
            ["route", "method"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
