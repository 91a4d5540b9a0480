"""Static checks of the deployment files. No broker and no Docker engine needed.

- Kubernetes manifests: validated with kubernetes-validate (schemas shipped in the package).
- docker-compose.kafka.yml: validated against the Compose Specification JSON schema in
  compose-spec.json, vendored from
  https://github.com/compose-spec/compose-spec/blob/00655e2222608fa6eaecdf12ac5195889ca2244a/schema/compose-spec.json
- Grafana dashboard and alert rules: every PromQL expression names only metrics that
  `Metrics` exports.
- promtool (Debian package `prometheus`): `check rules`, `test rules` and `check config`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate import utils as kubernetes_validate_utils
from prometheus_client import start_http_server

from sync_stream.observability.metrics import Metrics
from sync_stream.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "sync-stream.json"
COMPOSE = ROOT / "docker-compose.kafka.yml"
COMPOSE_SCHEMA = Path(__file__).with_name("compose-spec.json")
COMPOSE_SECRETS_EXAMPLE = ROOT / "deploy" / "compose" / "secrets.env.example"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
OPERATIONS_DOCS = [ROOT / "docs" / "operations.md", ROOT / "docs" / "es" / "operacion.md"]

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool not on PATH; install the Debian package `prometheus` to run this check",
)

# Read by sync_stream.codec.avro directly, not a field of Settings.
ENV_NAMES_OUTSIDE_SETTINGS = {"SYNC_SCHEMAS_DIR"}


# ---------------------------------------------------------------------------------------
# Helpers


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc is not None]


def k8s_manifest_paths() -> list[Path]:
    return sorted(path for path in K8S.glob("*.yaml") if path.name != "kustomization.yaml")


def k8s_documents() -> list[dict[str, Any]]:
    return [doc for path in k8s_manifest_paths() for doc in load_yaml_documents(path)]


def deployment(name: str) -> dict[str, Any]:
    for doc in k8s_documents():
        if doc["kind"] == "Deployment" and doc["metadata"]["name"] == name:
            return doc
    raise AssertionError(f"Deployment {name} not found in {K8S}")


def only_container(deployment_doc: dict[str, Any]) -> dict[str, Any]:
    containers = deployment_doc["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def compose_file() -> dict[str, Any]:
    with COMPOSE.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def alert_rules() -> list[dict[str, Any]]:
    with (PROMETHEUS / "alerts.yml").open(encoding="utf-8") as handle:
        groups = yaml.safe_load(handle)["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard_panels() -> list[dict[str, Any]]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))["panels"]


def dashboard_exprs() -> list[str]:
    return [
        target["expr"]
        for panel in dashboard_panels()
        for target in panel.get("targets", [])
        if "expr" in target
    ]


def exported_series_names() -> set[str]:
    """Collect every series name `Metrics` exports, with the `_total` and histogram suffixes."""
    suffixes = {
        "counter": ("_total",),
        "gauge": ("",),
        "histogram": ("_bucket", "_sum", "_count"),
    }
    names: set[str] = set()
    for family in Metrics().registry.collect():
        for suffix in suffixes[family.type]:
            names.add(family.name + suffix)
    return names


PROMQL_WORDS = {
    # Binary and modifier keywords.
    "and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
    "group_left", "group_right", "inf", "nan",
    # Aggregation operators, which may be followed by `by (...)` instead of `(`.
    "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk",
    "quantile", "count_values", "group",
}  # fmt: skip


def promql_metric_names(expr: str) -> set[str]:
    """Return the metric names an expression selects (functions and keywords excluded)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.$])[A-Za-z_:][\w:]*", text):
        word = match.group(0)
        followed_by_call = re.match(r"\s*\(", text[match.end() :]) is not None
        if word not in PROMQL_WORDS and not followed_by_call:
            names.add(word)
    return names


def settings_field_exists(variable: str) -> bool:
    """Tell whether SYNC_A__B names the field b of group a of Settings."""
    parts = variable.removeprefix("SYNC_").lower().split("__")
    model: Any = Settings
    for part in parts:
        fields = getattr(model, "model_fields", None)
        if fields is None or part not in fields:
            return False
        model = fields[part].annotation
    return True


def github_anchor(heading: str) -> str:
    """Return the anchor GitHub renders for a Markdown heading."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def markdown_anchors(path: Path) -> set[str]:
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*$", path.read_text(encoding="utf-8"), re.M)
    return {github_anchor(heading) for heading in headings}


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """Split the Dockerfile into stages of (INSTRUCTION, arguments), continuations joined."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    text = re.sub(r"\\\n", " ", text)
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, arguments = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        assert stages, f"instruction before the first FROM: {line}"
        stages[-1].append((instruction.upper(), arguments.strip()))
    return stages


def run_promtool(*args: str, cwd: Path = PROMETHEUS) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


# ---------------------------------------------------------------------------------------
# Kubernetes


def kubernetes_versions() -> list[str]:
    """The oldest and the newest Kubernetes versions the installed package has schemas for."""
    versions = sorted(
        set(kubernetes_validate_utils.all_versions()),
        key=lambda v: tuple(int(n) for n in v.split(".")),
    )
    return [versions[0], versions[-1]]


@pytest.mark.parametrize("version", kubernetes_versions())
@pytest.mark.parametrize("path", k8s_manifest_paths(), ids=lambda p: p.name)
def test_k8s_manifest_valid(path: Path, version: str) -> None:
    documents = load_yaml_documents(path)
    assert documents, f"{path.name} has no YAML document"
    for doc in documents:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{path.name} ({doc.get('kind')}), Kubernetes {version}: {exc.message}")


def test_k8s_manifests_namespace_agnostic() -> None:
    for doc in k8s_documents():
        assert "namespace" not in doc["metadata"], doc["metadata"]["name"]


def test_kustomization_lists_every_manifest() -> None:
    (kustomization,) = load_yaml_documents(K8S / "kustomization.yaml")
    listed = set(kustomization["resources"])
    expected = {path.name for path in k8s_manifest_paths()} - {"secret.example.yaml"}

    assert listed == expected
    assert all((K8S / name).is_file() for name in listed)


def test_k8s_secret_values_only_in_example() -> None:
    for doc in k8s_documents():
        if doc["kind"] == "Secret":
            assert doc["metadata"]["name"] == "sync-stream-secrets"
    kinds_by_file = {
        path.name: {doc["kind"] for doc in load_yaml_documents(path)}
        for path in k8s_manifest_paths()
    }
    files_with_secrets = {name for name, kinds in kinds_by_file.items() if "Secret" in kinds}
    assert files_with_secrets == {"secret.example.yaml"}


def test_k8s_secret_refs_match_example() -> None:
    (example,) = load_yaml_documents(K8S / "secret.example.yaml")
    keys = set(example["stringData"])
    refs = []
    for name in ("sync-stream-processor", "sync-stream-api"):
        for env in only_container(deployment(name)).get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref is not None:
                refs.append((env["name"], ref))

    assert refs
    for variable, ref in refs:
        assert ref["name"] == example["metadata"]["name"], variable
        assert ref["key"] in keys, variable


def test_k8s_secrets_never_in_plain_env() -> None:
    secret_variables = {
        "SYNC_API__TOKENS",
        "SYNC_KAFKA__SASL_PASSWORD",
        "SYNC_KAFKA__SASL_USERNAME",
        "SYNC_KAFKA__SSL_KEY_PASSWORD",
    }
    (configmap,) = [doc for doc in k8s_documents() if doc["kind"] == "ConfigMap"]

    assert not secret_variables & set(configmap["data"])
    for name in ("sync-stream-processor", "sync-stream-api"):
        for env in only_container(deployment(name)).get("env", []):
            if env["name"] in secret_variables:
                assert "value" not in env, env["name"]


def test_k8s_roles_ports_and_probes() -> None:
    processor = only_container(deployment("sync-stream-processor"))
    api = only_container(deployment("sync-stream-api"))
    processor_env = {env["name"]: env.get("value") for env in processor["env"]}

    assert processor["args"] == ["run", "--role", "processor"]
    assert processor_env["SYNC_METRICS_PORT"] == "9464"
    assert [p["containerPort"] for p in processor["ports"]] == [9464]
    assert "exec" in processor["livenessProbe"]
    assert processor["startupProbe"]["exec"] == processor["livenessProbe"]["exec"]

    assert api["args"] == ["run", "--role", "api"]
    assert [p["containerPort"] for p in api["ports"]] == [8080]
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_k8s_pods_non_root_with_resources() -> None:
    for name in ("sync-stream-processor", "sync-stream-api"):
        pod = deployment(name)["spec"]["template"]["spec"]
        container = only_container(deployment(name))

        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] != 0, name
        assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"], name
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][kind]), (name, kind)


def test_k8s_selectors_match_pod_labels() -> None:
    pod_labels = {
        name: deployment(name)["spec"]["template"]["metadata"]["labels"]
        for name in ("sync-stream-processor", "sync-stream-api")
    }

    def selected(selector: dict[str, str]) -> set[str]:
        return {
            name
            for name, labels in pod_labels.items()
            if all(labels.get(k) == v for k, v in selector.items())
        }

    pdbs = {
        doc["metadata"]["name"]: doc
        for doc in k8s_documents()
        if doc["kind"] == "PodDisruptionBudget"
    }
    (service,) = [doc for doc in k8s_documents() if doc["kind"] == "Service"]

    assert set(pdbs) == {"sync-stream-processor", "sync-stream-api"}
    for name, pdb in pdbs.items():
        assert selected(pdb["spec"]["selector"]["matchLabels"]) == {name}
    for name in pod_labels:
        match_labels = deployment(name)["spec"]["selector"]["matchLabels"]
        assert selected(match_labels) == {name}
    assert selected(service["spec"]["selector"]) == {"sync-stream-api"}
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_k8s_settings_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every SYNC_* variable the manifests set is a setting and has a valid value."""
    (configmap,) = [doc for doc in k8s_documents() if doc["kind"] == "ConfigMap"]
    (example,) = load_yaml_documents(K8S / "secret.example.yaml")
    for name in ("sync-stream-processor", "sync-stream-api"):
        container = only_container(deployment(name))
        environment = dict(configmap["data"])
        for env in container["env"]:
            if "value" in env:
                environment[env["name"]] = env["value"]
            else:
                environment[env["name"]] = example["stringData"][
                    env["valueFrom"]["secretKeyRef"]["key"]
                ]

        for variable in environment:
            assert settings_field_exists(variable), f"{name}: {variable} is not a setting"
        for variable in list(os.environ):
            if variable.startswith("SYNC_"):
                monkeypatch.delenv(variable)
        for variable, value in environment.items():
            monkeypatch.setenv(variable, value)
        settings = load_settings()

        assert settings.kafka.security_protocol == "SASL_SSL"
        assert settings.kafka.sasl_password is not None
        assert settings.api.host == "0.0.0.0"
        if name == "sync-stream-api":
            assert len(settings.api.tokens) == 1
        else:
            assert settings.metrics_port == 9464


@pytest.fixture
def metrics_server() -> Iterator[tuple[Metrics, int]]:
    metrics = Metrics()
    server, thread = start_http_server(0, addr="127.0.0.1", registry=metrics.registry)
    try:
        yield metrics, server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.parametrize(
    ("heartbeat_age_s", "expected_exit"),
    [(1.0, 0), (300.0, 1), (None, 1)],
    ids=["fresh", "stale", "never-looped"],
)
def test_processor_probe_reads_heartbeat(
    metrics_server: tuple[Metrics, int], heartbeat_age_s: float | None, expected_exit: int
) -> None:
    metrics, port = metrics_server
    if heartbeat_age_s is not None:
        metrics.loop_heartbeat.set(time.time() - heartbeat_age_s)
    command = only_container(deployment("sync-stream-processor"))["livenessProbe"]["exec"][
        "command"
    ]
    assert command[:2] == ["python", "-c"]

    result = subprocess.run(
        [sys.executable, "-c", command[2]],
        env={**os.environ, "SYNC_METRICS_PORT": str(port)},
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )

    assert result.returncode == expected_exit, result.stderr


# ---------------------------------------------------------------------------------------
# Compose


def test_compose_matches_spec_schema() -> None:
    schema = json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema)
    errors = [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(compose_file())
    ]
    assert errors == []


def test_compose_schema_rejects_unknown_key() -> None:
    schema = json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8"))
    broken = compose_file()
    broken["services"]["api"]["enviroment"] = {"A": "1"}

    assert not jsonschema.Draft7Validator(schema).is_valid(broken)


def test_compose_services_and_roles() -> None:
    services = compose_file()["services"]

    assert set(services) == {"kafka", "topics", "processor", "api", "prometheus"}
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert "controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]
    assert services["topics"]["command"] == ["topics", "create"]
    assert services["processor"]["command"] == ["run", "--role", "processor"]
    assert services["processor"]["environment"]["SYNC_METRICS_PORT"] == "9464"
    assert services["api"]["command"] == ["run", "--role", "api"]
    assert services["api"]["ports"] == ["127.0.0.1:8080:8080"]
    assert services["processor"]["depends_on"]["topics"]["condition"] == (
        "service_completed_successfully"
    )
    assert "./deploy/prometheus:/etc/prometheus:ro" in services["prometheus"]["volumes"]


def test_compose_secrets_from_env_file_only() -> None:
    services = compose_file()["services"]
    for name, service in services.items():
        environment = service.get("environment", {})
        assert "SYNC_API__TOKENS" not in environment, name
        assert "SYNC_KAFKA__SASL_PASSWORD" not in environment, name
    assert services["api"]["env_file"] == "deploy/compose/secrets.env"
    assert (ROOT / "deploy" / "compose" / ".gitignore").read_text().split() == ["secrets.env"]


def test_compose_settings_load(monkeypatch: pytest.MonkeyPatch) -> None:
    services = compose_file()["services"]
    example = {}
    for line in COMPOSE_SECRETS_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            variable, _, value = line.partition("=")
            example[variable] = value.strip("'")

    for name in ("topics", "processor", "api"):
        environment = {k: str(v) for k, v in services[name]["environment"].items()}
        if name == "api":
            environment.update(example)
        for variable in environment:
            assert settings_field_exists(variable), f"{name}: {variable} is not a setting"
        for variable in list(os.environ):
            if variable.startswith("SYNC_"):
                monkeypatch.delenv(variable)
        for variable, value in environment.items():
            monkeypatch.setenv(variable, value)
        settings = load_settings()

        assert settings.kafka.bootstrap_servers == "kafka:19092"
        assert settings.create_topics_on_start is False
        if name == "api":
            assert len(settings.api.tokens) == 1


# ---------------------------------------------------------------------------------------
# Dockerfile


def test_dockerfile_stages() -> None:
    build, runtime = dockerfile_stages()
    runtime_instructions = [instruction for instruction, _ in runtime]
    runtime_text = "\n".join(f"{i} {a}" for i, a in runtime)

    assert build[0] == ("FROM", "python:3.11-slim AS build")
    assert any(i == "RUN" and "pip wheel" in a for i, a in build)
    assert runtime[0][0] == "FROM"
    assert runtime[0][1].startswith("python:3.11-slim")
    assert "from=build" in runtime_text
    for tool in ("apt-get", "gcc", "build-essential"):
        assert tool not in runtime_text, tool
    assert "pip uninstall --yes pip setuptools wheel" in runtime_text
    assert runtime_instructions[-2:] == ["ENTRYPOINT", "CMD"]
    assert json.loads(runtime[-2][1]) == ["sync-stream"]
    assert json.loads(runtime[-1][1]) == ["run"]


def test_dockerfile_non_root_with_schemas() -> None:
    _, runtime = dockerfile_stages()
    users = [arguments for instruction, arguments in runtime if instruction == "USER"]
    environment = " ".join(arguments for instruction, arguments in runtime if instruction == "ENV")
    copies = [arguments for instruction, arguments in runtime if instruction == "COPY"]

    assert users
    assert users[-1].split(":")[0] not in ("0", "root")
    assert "SYNC_SCHEMAS_DIR=/app/schemas" in environment.split()
    assert "schemas /app/schemas" in copies
    assert (ROOT / "schemas").is_dir()


def test_dockerfile_env_names_known() -> None:
    _, runtime = dockerfile_stages()
    assignments = " ".join(arguments for instruction, arguments in runtime if instruction == "ENV")
    variables = [word.split("=")[0] for word in assignments.split() if "=" in word]
    sync_variables = [name for name in variables if name.startswith("SYNC_")]

    assert "SYNC_SCHEMAS_DIR" in sync_variables
    for name in sync_variables:
        known = name in ENV_NAMES_OUTSIDE_SETTINGS or settings_field_exists(name)
        assert known, f"Dockerfile sets {name}, which is not a setting"


def test_dockerignore_keeps_build_inputs() -> None:
    patterns = {
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }

    assert {".git", ".venv", "tests", "*.env"} <= patterns
    for needed in ("sync_stream", "schemas", "pyproject.toml", "README.md"):
        assert needed not in patterns, needed


# ---------------------------------------------------------------------------------------
# PromQL metric names


def test_promql_metric_names_extracts_selectors() -> None:
    expr = (
        'sum by (topic, le) (rate(foo_total{stage!~"T080|by"}[5m])) > 0 '
        "unless on (topic) max(bar offset 10m) and time() - baz_seconds"
    )
    assert promql_metric_names(expr) == {"foo_total", "bar", "baz_seconds"}


def test_exported_series_names_have_suffixes() -> None:
    names = exported_series_names()

    assert "mxp_sync_transform_failures_total" in names
    assert "mxp_sync_stage_duration_seconds_bucket" in names
    assert "mxp_sync_consumer_lag_records" in names
    assert "mxp_sync_transform_failures" not in names


# ---------------------------------------------------------------------------------------
# Grafana


def test_dashboard_structure() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    panels = dashboard["panels"]
    ids = [panel["id"] for panel in panels]

    assert dashboard["uid"] == "sync-stream"
    assert len(ids) == len(set(ids))
    assert [v["name"] for v in dashboard["templating"]["list"]] == ["datasource"]
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]


def test_dashboard_names_only_exported_metrics() -> None:
    exported = exported_series_names()
    for expr in dashboard_exprs():
        names = promql_metric_names(expr)
        assert names, f"no metric in {expr!r}"
        assert names <= exported, f"unknown metrics {names - exported} in {expr!r}"


def test_dashboard_covers_key_metrics() -> None:
    used = set().union(*(promql_metric_names(expr) for expr in dashboard_exprs()))
    expected = {
        "mxp_sync_records_consumed_total",
        "mxp_sync_records_produced_total",
        "mxp_sync_consumer_lag_records",
        "mxp_sync_packages_rejected_total",
        "mxp_sync_transform_failures_total",
        "mxp_sync_retries_total",
        "mxp_sync_dead_letters_total",
        "mxp_sync_stale_records_dropped_total",
        "mxp_sync_stage_duration_seconds_bucket",
        "mxp_sync_end_to_end_latency_seconds_bucket",
        "mxp_sync_projection_users",
        "mxp_sync_projection_ready",
        "mxp_sync_http_requests_total",
        "mxp_sync_http_request_duration_seconds_bucket",
    }
    assert expected - used == set()


def test_dashboard_latency_quantiles() -> None:
    exprs = dashboard_exprs()
    for histogram in (
        "mxp_sync_stage_duration_seconds_bucket",
        "mxp_sync_end_to_end_latency_seconds_bucket",
        "mxp_sync_http_request_duration_seconds_bucket",
    ):
        for quantile in ("0.5", "0.95", "0.99"):
            assert any(
                f"histogram_quantile({quantile}," in expr and histogram in expr for expr in exprs
            ), (histogram, quantile)


@needs_promtool
def test_dashboard_exprs_parse(tmp_path: Path) -> None:
    """Load every dashboard query as a recording rule, so promtool parses the PromQL."""
    rules = [
        {
            "record": f"dashboard:query_{index}",
            "expr": re.sub(r"\$__\w+", "5m", expr),
        }
        for index, expr in enumerate(dashboard_exprs())
    ]
    rule_file = tmp_path / "dashboard_rules.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))

    result = run_promtool("check", "rules", str(rule_file), cwd=tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------------------------------
# Prometheus alert rules


def test_alerts_name_only_exported_metrics() -> None:
    exported = exported_series_names()
    for rule in alert_rules():
        names = promql_metric_names(rule["expr"])
        assert names, rule["alert"]
        assert names <= exported, f"{rule['alert']}: unknown metrics {names - exported}"


def test_alerts_labels_and_annotations() -> None:
    anchors = {path.name: markdown_anchors(path) for path in OPERATIONS_DOCS}
    rules = alert_rules()

    assert len({rule["alert"] for rule in rules}) == len(rules)
    for rule in rules:
        name = rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        assert set(rule["annotations"]) == {
            "summary",
            "description",
            "summary_es",
            "description_es",
            "runbook_url",
        }, name
        page, _, anchor = rule["annotations"]["runbook_url"].partition("#")
        assert page == "docs/operations.md", name
        for doc_name, doc_anchors in anchors.items():
            assert anchor in doc_anchors, f"{name}: no #{anchor} heading in {doc_name}"


def test_alert_tests_fire_and_stay_silent() -> None:
    with (PROMETHEUS / "alerts_test.yml").open(encoding="utf-8") as handle:
        tests = yaml.safe_load(handle)["tests"]
    firing: set[str] = set()
    silent: set[str] = set()
    for case in tests:
        for check in case["alert_rule_test"]:
            (firing if check["exp_alerts"] else silent).add(check["alertname"])

    names = {rule["alert"] for rule in alert_rules()}
    assert names - firing == set()
    assert names - silent == set()


@needs_promtool
def test_promtool_check_rules() -> None:
    result = run_promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_test_rules() -> None:
    result = run_promtool("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_check_config() -> None:
    result = run_promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
