"""load_settings: SYNC_* variables, nested groups, JSON values and error messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from sync_stream.errors import SettingsError
from sync_stream.routing import Router
from sync_stream.settings import Route, load_settings

PASSWORD = "s3cr3t-Kafka-pw-9931"


def test_settings_read_nested_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNC_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:19092,127.0.0.1:19093")
    monkeypatch.setenv("SYNC_KAFKA__GROUP_ID", "mxp-sync-test")
    monkeypatch.setenv("SYNC_TOPICS__PARTITIONS", "12")
    monkeypatch.setenv("SYNC_TOPICS__PREFIX", "qa.")
    monkeypatch.setenv("SYNC_LIMITS__MAX_CHUNK_LOAD", "250")
    monkeypatch.setenv("SYNC_CREATE_TOPICS_ON_START", "false")
    monkeypatch.setenv("SYNC_LOG_FORMAT", "console")

    settings = load_settings()

    assert settings.kafka.bootstrap_servers == "127.0.0.1:19092,127.0.0.1:19093"
    assert settings.kafka.group_id == "mxp-sync-test"
    assert settings.topics.partitions == 12
    assert settings.topics.dlq_topic == "qa.sync.dlq"
    assert settings.limits.max_chunk_load == 250
    assert settings.create_topics_on_start is False
    assert settings.log_format == "console"


def test_settings_read_json_maps_and_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "SYNC_ROUTES",
        '{"users_pos": {"transformer": "T121", "facades": ["users-pos", "audit"]}}',
    )
    monkeypatch.setenv("SYNC_TOPICS__SOURCES", '{"ares": "etl.ares"}')
    monkeypatch.setenv("SYNC_RETRY__TIER_DELAYS_MS", "[1000, 60000]")

    settings = load_settings()

    assert settings.routes == {
        "users_pos": Route(transformer="T121", facades=("users-pos", "audit"))
    }
    assert settings.facades == ("users-pos", "audit")
    assert settings.topics.sources == {"ares": "etl.ares"}
    assert settings.topics.input_topics == ("mxp.etl.ares",)
    assert settings.retry.tier_delays_ms == (1000, 60000)


def test_settings_read_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / "sync.env"
    env_file.write_text(
        "SYNC_TOPICS__PARTITIONS=3\nSYNC_LIMITS__MAX_CHUNKS=20\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("SYNC_LIMITS__MAX_CHUNKS", "30")

    settings = load_settings(env_file)

    assert settings.topics.partitions == 3
    # A variable of the environment takes precedence over the same name in the file.
    assert settings.limits.max_chunks == 30


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SYNC_TOPICS__PARTITIONS", "abc"),
        ("SYNC_TOPICS__PARTITIONS", "0"),
        ("SYNC_TOPICS__REPLICATION_FACTOR", "-1"),
        ("SYNC_KAFKA__SECURITY_PROTOCOL", "TLS"),
        ("SYNC_KAFKA__FETCH_MAX_RECORDS", "0"),
        ("SYNC_LIMITS__MAX_PACKAGE_BYTES", "100"),
        ("SYNC_LIMITS__MAX_CHUNK_LOADS", "10"),
        ("SYNC_RETRY__TIER_DELAYS_MS", "[5000, 0]"),
        ("SYNC_RETRY__BACKOFF_JITTER", "1.5"),
        ("SYNC_TOPICS__SOURCES", '["init"]'),
        ("SYNC_LOG_LEVEL", "LOUD"),
        ("SYNC_METRICS_PORT", "70000"),
    ],
)
def test_settings_error_names_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(SettingsError) as caught:
        load_settings()

    assert variable in str(caught.value)


def test_settings_error_names_route_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNC_ROUTES", '{"build_info": {"transformer": "T999", "facades": ["x"]}}')

    with pytest.raises(SettingsError) as caught:
        load_settings()

    assert "SYNC_ROUTES" in str(caught.value)
    assert "T080" in str(caught.value)


@pytest.mark.parametrize(
    ("variable", "value"),
    [("SYNC_ROUTES", '{"build_info": '), ("SYNC_RETRY__TIER_DELAYS_MS", "[5000,")],
    ids=["routes", "tier-delays"],
)
def test_settings_malformed_json_value(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(SettingsError) as caught:
        load_settings()

    assert variable in str(caught.value)


def test_settings_empty_routes_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNC_ROUTES", "{}")

    with pytest.raises(SettingsError) as caught:
        load_settings()

    assert "SYNC_ROUTES" in str(caught.value)


@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_settings_sasl_needs_password(monkeypatch: pytest.MonkeyPatch, protocol: str) -> None:
    monkeypatch.setenv("SYNC_KAFKA__SECURITY_PROTOCOL", protocol)
    monkeypatch.setenv("SYNC_KAFKA__SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("SYNC_KAFKA__SASL_USERNAME", "sync-stream")

    with pytest.raises(SettingsError) as caught:
        load_settings()

    assert "SYNC_KAFKA__SASL_PASSWORD" in str(caught.value)
    assert "SYNC_KAFKA" in str(caught.value)


def test_settings_sasl_with_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNC_KAFKA__SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("SYNC_KAFKA__SASL_MECHANISM", "PLAIN")
    monkeypatch.setenv("SYNC_KAFKA__SASL_USERNAME", "sync-stream")
    monkeypatch.setenv("SYNC_KAFKA__SASL_PASSWORD", PASSWORD)

    settings = load_settings()

    assert settings.kafka.sasl_password is not None
    assert settings.kafka.sasl_password.get_secret_value() == PASSWORD
    assert PASSWORD not in repr(settings)


@pytest.mark.parametrize(
    "broken",
    [
        {"SYNC_KAFKA__SASL_MECHANISM": ""},
        {"SYNC_KAFKA__SASL_USERNAME": ""},
        {"SYNC_KAFKA__SSL_CAFILE": "/nonexistent/ca.pem"},
        {"SYNC_TOPICS__PARTITIONS": "many"},
        {"SYNC_KAFKA__SASL_MECHANISM": "GSSAPI"},
    ],
    ids=["no-mechanism", "no-username", "missing-ca-file", "bad-partitions", "bad-mechanism"],
)
def test_settings_error_hides_password(
    monkeypatch: pytest.MonkeyPatch, broken: dict[str, str]
) -> None:
    monkeypatch.setenv("SYNC_KAFKA__SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("SYNC_KAFKA__SASL_MECHANISM", "PLAIN")
    monkeypatch.setenv("SYNC_KAFKA__SASL_USERNAME", "sync-stream")
    monkeypatch.setenv("SYNC_KAFKA__SASL_PASSWORD", PASSWORD)
    for variable, value in broken.items():
        monkeypatch.setenv(variable, value)

    with pytest.raises(SettingsError) as caught:
        load_settings()

    assert PASSWORD not in str(caught.value)
    assert PASSWORD not in repr(caught.value)


@pytest.mark.parametrize("setting", ["ssl_cafile", "ssl_certfile", "ssl_keyfile"])
def test_settings_missing_tls_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setting: str
) -> None:
    for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
        path = tmp_path / f"{name}.pem"
        path.write_text("-----BEGIN CERTIFICATE-----\n", encoding="utf-8")
        monkeypatch.setenv(f"SYNC_KAFKA__{name.upper()}", str(path))
    missing = tmp_path / "absent" / f"{setting}.pem"
    monkeypatch.setenv("SYNC_KAFKA__SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv(f"SYNC_KAFKA__{setting.upper()}", str(missing))

    with pytest.raises(SettingsError) as caught:
        load_settings()

    assert setting in str(caught.value)
    assert str(missing) in str(caught.value)


def test_settings_tls_files_present(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
        path = tmp_path / f"{name}.pem"
        path.write_text("-----BEGIN CERTIFICATE-----\n", encoding="utf-8")
        monkeypatch.setenv(f"SYNC_KAFKA__{name.upper()}", str(path))
    monkeypatch.setenv("SYNC_KAFKA__SECURITY_PROTOCOL", "SSL")

    settings = load_settings()

    assert settings.kafka.uses_ssl is True
    assert settings.kafka.ssl_cafile == tmp_path / "ssl_cafile.pem"


def test_settings_cert_without_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    certificate = tmp_path / "client.pem"
    certificate.write_text("-----BEGIN CERTIFICATE-----\n", encoding="utf-8")
    monkeypatch.setenv("SYNC_KAFKA__SSL_CERTFILE", str(certificate))

    with pytest.raises(SettingsError) as caught:
        load_settings()

    assert "SYNC_KAFKA__SSL_KEYFILE" in str(caught.value)


def test_settings_tls_error_names_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNC_KAFKA__SSL_CAFILE", "/nonexistent/ca.pem")

    with pytest.raises(SettingsError) as caught:
        load_settings()

    assert "SYNC_KAFKA__SSL_CAFILE" in str(caught.value)


# The routing table is checked against the transformers when the Router is built.


@pytest.mark.parametrize(
    ("routes", "process"),
    [
        ({"build_info": {"transformer": "T121", "facades": ["fe-build"]}}, "build_info"),
        ({"users_pos": {"transformer": "T080", "facades": ["users-pos"]}}, "users_pos"),
        ({"menu_items": {"transformer": "T121", "facades": ["menu"]}}, "menu_items"),
    ],
    ids=["build-info-to-t121", "users-to-t080", "unknown-process"],
)
def test_router_rejects_unservable_route(routes: dict[str, object], process: str) -> None:
    settings = load_settings(routes=routes)

    with pytest.raises(SettingsError) as caught:
        Router(settings)

    assert "SYNC_ROUTES" in str(caught.value)
    assert process in str(caught.value)


def test_router_accepts_custom_route() -> None:
    settings = load_settings(
        routes={"printers": {"transformer": "T121", "facades": ["printer", "kds-printer"]}}
    )

    router = Router(settings)

    assert list(router.facades_of("printers")) == ["printer", "kds-printer"]
