"""T080 and T121 through the router: keys, values, tombstones, determinism and failures."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from sync_stream.codec.avro import codec_for
from sync_stream.errors import TransformFailed
from sync_stream.gate import AcceptedPackage, F008Gate
from sync_stream.gate.decode import encode_avro_package
from sync_stream.publish import split_package
from sync_stream.routing import RoutedPackage, Router
from sync_stream.settings import Settings, load_settings
from tests.unit.packages import (
    CDN_ID,
    RESTAURANT_IDS,
    SECRET_PIN,
    artifact,
    build_row,
    load_example,
    mixed_package,
    package,
    printer_row,
    user_row,
)

VALUE_SCHEMAS = {"build_info": "BuildInfo", "users_pos": "UserPos", "printers": "PrinterConfig"}
UTC_MILLIS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
UTC_SECONDS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Snapshot = list[tuple[str, str, bytes, bytes | None, int]]


def accept(document: dict[str, Any], settings: Settings | None = None) -> AcceptedPackage:
    gate = F008Gate(settings or load_settings())
    return gate.check_bytes(orjson.dumps(document), "application/json")


def route(document: dict[str, Any], settings: Settings | None = None) -> RoutedPackage:
    settings = settings or load_settings()
    return Router(settings).route(accept(document, settings))


def snapshot(routed: RoutedPackage) -> Snapshot:
    return [(out.facade, out.process, out.key, out.value, out.version) for out in routed.outputs]


def decoded(routed: RoutedPackage, process: str) -> list[tuple[str, bytes, dict[str, Any] | None]]:
    """Return (facade, key, decoded value) of each output of one process."""
    codec = codec_for(VALUE_SCHEMAS[process])
    return [
        (out.facade, out.key, codec.decode(out.value) if out.value is not None else None)
        for out in routed.outputs
        if out.process == process
    ]


def parse_z(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def with_unique_pins(document: dict[str, Any]) -> dict[str, Any]:
    """Replace every user's PIN with a value that cannot occur by chance in output bytes."""
    for index, row in enumerate(document["processes"]["users_pos"]["records"]):
        row["pin"] = f"{SECRET_PIN}-{index}"
    return document


# Determinism


def test_router_repeats_identical_outputs(default_settings: Settings) -> None:
    document = load_example("sync-generic.json")
    builds = document["processes"]["build_info"]["records"]
    printers = document["processes"]["printers"]["records"]
    router = Router(default_settings)
    accepted = accept(document, default_settings)

    first = snapshot(router.route(accepted))
    second = snapshot(router.route(accepted))
    fresh = snapshot(Router(load_settings()).route(accept(document, load_settings())))

    assert len(first) == len(builds) * len(router.facades_of("build_info")) + len(printers)
    assert first == second
    assert first == fresh


def test_router_avro_ingress_same_outputs() -> None:
    document = mixed_package()
    settings = load_settings()
    gate = F008Gate(settings)

    from_json = gate.check_bytes(orjson.dumps(document), "application/json")
    from_avro = gate.check_bytes(encode_avro_package(document), "avro/binary")

    assert snapshot(Router(settings).route(from_json)) == snapshot(
        Router(settings).route(from_avro)
    )


def test_router_users_chunks_deterministic() -> None:
    chunks = split_package(load_example("sync-users-ares.json"))

    first = [snapshot(route(chunk)) for chunk in chunks]
    second = [snapshot(route(chunk)) for chunk in chunks]

    assert [len(outputs) for outputs in first] == [100, 100, 50]
    assert first == second


def test_router_reports_transformers_used() -> None:
    with_builds = route(mixed_package())
    users_only = route(package({"users_pos": {"records": [user_row()]}}))

    assert with_builds.build_metadata_ok is True
    assert set(with_builds.transformers) == {"T080", "T121"}
    assert users_only.build_metadata_ok is False
    assert users_only.transformers == ("T121",)


# T080


def test_t080_key_is_module_version_build(default_settings: Settings) -> None:
    document = load_example("sync-generic.json")
    rows = document["processes"]["build_info"]["records"]
    facades = default_settings.routes["build_info"].facades

    outputs = decoded(route(document), "build_info")

    expected_keys = [
        (facade, f"{row['module']}:{row['version']}:{row['buildNumber']}".encode())
        for row in rows
        for facade in facades
    ]
    assert [(facade, key) for facade, key, _ in outputs] == expected_keys
    for _, key, value in outputs:
        assert value is not None
        assert key == f"{value['module']}:{value['version']}:{value['buildNumber']}".encode()


def test_t080_output_version_is_build_number() -> None:
    routed = route(package({"build_info": {"records": [build_row(buildNumber=4711)]}}))

    assert [out.version for out in routed.outputs] == [4711, 4711]


def test_t080_strips_version_prefix() -> None:
    row = build_row(version="v3.0.0-rc.1+build.5")

    outputs = decoded(route(package({"build_info": {"records": [row]}})), "build_info")

    assert outputs[0][1] == b"pos-frontend:3.0.0-rc.1+build.5:1532"
    assert outputs[0][2] is not None
    assert outputs[0][2]["version"] == "3.0.0-rc.1+build.5"


def test_t080_normalizes_build_fields() -> None:
    row = build_row(
        commit="9A5C1D03A039567E9B3C7197DE85DA669A5C1D03",
        builtAt="2026-11-30T22:15:00.750-05:00",
        cdnId=CDN_ID.upper(),
        restaurants=[RESTAURANT_IDS[1], RESTAURANT_IDS[0].upper(), RESTAURANT_IDS[1]],
        artifacts=[artifact("pos.tar.gz", "sha256:" + "AB" * 32)],
    )

    outputs = decoded(route(package({"build_info": {"records": [row]}})), "build_info")
    value = outputs[0][2]

    assert value is not None
    assert value["commit"] == "9a5c1d03a039567e9b3c7197de85da669a5c1d03"
    assert value["builtAt"] == "2026-12-01T03:15:00Z"
    assert UTC_SECONDS.match(value["builtAt"])
    assert value["cdnId"] == CDN_ID
    assert value["restaurants"] == sorted(RESTAURANT_IDS)
    assert value["artifacts"] == [
        {"name": "pos.tar.gz", "sha256": "ab" * 32, "sizeBytes": 18_734_112}
    ]


def test_t080_built_at_in_utc() -> None:
    document = load_example("sync-generic.json")
    rows = document["processes"]["build_info"]["records"]

    outputs = decoded(route(document), "build_info")

    for (_, _, value), row in zip(outputs[::2], rows, strict=True):
        assert value is not None
        assert UTC_SECONDS.match(value["builtAt"])
        assert parse_z(value["builtAt"]) == datetime.fromisoformat(row["builtAt"])


# T121, users


def test_t121_user_key_and_fields(default_settings: Settings) -> None:
    rows = [
        user_row(0, cdnId=CDN_ID.upper()),
        user_row(1, userName="jvillacis", active=False, position="  Asistente   de cocina "),
    ]

    outputs = decoded(route(package({"users_pos": {"records": rows}})), "users_pos")

    assert [facade for facade, _, _ in outputs] == 2 * list(
        default_settings.routes["users_pos"].facades
    )
    first, second = (value for _, _, value in outputs)
    assert outputs[0][1] == f"{CDN_ID}:{RESTAURANT_IDS[0]}:EMP-20000".encode()
    assert outputs[1][1] == f"{CDN_ID}:{RESTAURANT_IDS[1]}:EMP-20001".encode()
    assert first is not None
    assert second is not None
    assert first["userId"] == "EMP-20000"
    assert first["cdnId"] == CDN_ID
    assert first["fullName"] == "Evangelina Villacís Moreira"
    assert first["userName"] == "evillacis"
    assert first["profile"] == "gerente_de_tienda"
    assert first["status"] == "active"
    assert second["userName"] == "jvillacis"
    assert second["profile"] == "asistente_de_cocina"
    assert second["status"] == "inactive"


def test_t121_users_example_keys_and_times() -> None:
    document = load_example("sync-users-ares.json")
    rows = document["processes"]["users_pos"]["records"]

    outputs = [
        output for chunk in split_package(document) for output in decoded(route(chunk), "users_pos")
    ]

    assert len(outputs) == len(rows)
    for (_, key, value), row in zip(outputs, rows, strict=True):
        assert key == f"{row['cdnId']}:{row['restaurantId']}:{row['employeeId']}".encode()
        assert value is not None
        assert value["status"] == ("active" if row["active"] else "inactive")
        assert UTC_MILLIS.match(value["updatedAt"])
        assert parse_z(value["updatedAt"]) == datetime.fromisoformat(row["updatedAt"])


@pytest.mark.parametrize(
    ("updated_at", "expected"),
    [
        ("2026-11-05T10:00:00-05:00", "2026-11-05T15:00:00.000Z"),
        ("2026-11-05T23:30:00.123456+02:00", "2026-11-05T21:30:00.123Z"),
        ("2026-12-31T22:00:00-05:00", "2027-01-01T03:00:00.000Z"),
        ("2026-11-05T15:00:00Z", "2026-11-05T15:00:00.000Z"),
    ],
)
def test_t121_updated_at_to_utc(updated_at: str, expected: str) -> None:
    row = user_row(updatedAt=updated_at)

    routed = route(package({"users_pos": {"records": [row]}}))
    value = decoded(routed, "users_pos")[0][2]

    assert value is not None
    assert value["updatedAt"] == expected
    assert routed.outputs[0].version == (parse_z(expected) - EPOCH) // timedelta(milliseconds=1)


OFFSETS = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


@hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    moment=st.datetimes(
        min_value=datetime(1000, 1, 2), max_value=datetime(9998, 12, 30), timezones=OFFSETS
    )
)
def test_t121_any_offset_to_utc(moment: datetime) -> None:
    routed = route(package({"users_pos": {"records": [user_row(updatedAt=moment.isoformat())]}}))
    value = decoded(routed, "users_pos")[0][2]

    assert value is not None
    assert UTC_MILLIS.match(value["updatedAt"])
    truncated = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    assert parse_z(value["updatedAt"]) == truncated


@hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    moment=st.datetimes(
        min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1), timezones=OFFSETS
    )
)
def test_t121_version_is_epoch_millis(moment: datetime) -> None:
    # NOTE: limited to 1970..2200 because outside it the version can be 1 ms off updatedAt,
    # as test_t121_version_edge_times shows.
    routed = route(package({"users_pos": {"records": [user_row(updatedAt=moment.isoformat())]}}))
    value = decoded(routed, "users_pos")[0][2]

    assert value is not None
    millis = (parse_z(value["updatedAt"]) - EPOCH) // timedelta(milliseconds=1)
    assert routed.outputs[0].version == millis


@pytest.mark.parametrize(
    ("updated_at", "expected_millis"),
    [
        ("1969-01-01T00:00:00.000001+00:00", -31_536_000_000),
        ("3059-01-01T00:00:00.099995+00:00", 34_365_513_600_099),
    ],
    ids=["before-1970", "year-3059"],
)
def test_t121_version_edge_times(updated_at: str, expected_millis: int) -> None:
    routed = route(package({"users_pos": {"records": [user_row(updatedAt=updated_at)]}}))

    assert routed.outputs[0].version == expected_millis


def test_t121_deleted_row_is_tombstone() -> None:
    rows = [user_row(0, deleted=True), user_row(1)]

    routed = route(package({"users_pos": {"records": rows}}))
    outputs = decoded(routed, "users_pos")

    assert outputs[0][1] == f"{CDN_ID}:{RESTAURANT_IDS[0]}:EMP-20000".encode()
    assert outputs[0][2] is None
    assert routed.outputs[0].value is None
    assert routed.outputs[0].version == (parse_z("2026-11-05T15:00:00Z") - EPOCH) // timedelta(
        milliseconds=1
    )
    assert outputs[1][2] is not None


def test_t121_pin_never_in_outputs() -> None:
    users = with_unique_pins(load_example("sync-users-ares.json"))
    pins = [row["pin"].encode() for row in users["processes"]["users_pos"]["records"]]
    mixed = with_unique_pins(mixed_package())
    pins += [row["pin"].encode() for row in mixed["processes"]["users_pos"]["records"]]

    user_outputs = [out for chunk in split_package(users) for out in route(chunk).outputs]
    outputs = user_outputs + route(mixed).outputs

    assert len(user_outputs) == len(users["processes"]["users_pos"]["records"])
    for out in outputs:
        data = out.key + (out.value or b"")
        for pin in pins:
            assert pin not in data


# T121, printers


def test_t121_printer_key_and_fields(default_settings: Settings) -> None:
    rows = [
        printer_row(1, cdnId=CDN_ID.upper(), updatedAt="2026-11-29T13:00:00-05:00"),
        printer_row(2, connection={"type": "USB"}, station="Caja", active=False),
    ]

    outputs = decoded(route(package({"printers": {"records": rows}})), "printers")

    assert [facade for facade, _, _ in outputs] == 2 * list(
        default_settings.routes["printers"].facades
    )
    assert outputs[0][1] == f"{CDN_ID}:{RESTAURANT_IDS[1]}:PRN-001".encode()
    assert outputs[1][1] == f"{CDN_ID}:{RESTAURANT_IDS[0]}:PRN-002".encode()
    network, usb = (value for _, _, value in outputs)
    assert network is not None
    assert usb is not None
    assert network["connectionType"] == "network"
    assert network["address"] == "prn-001.local"
    assert network["port"] == 9100
    assert network["station"] == "cocina"
    assert network["updatedAt"] == "2026-11-29T18:00:00.000Z"
    assert usb["connectionType"] == "usb"
    assert usb["address"] is None
    assert usb["port"] is None
    assert usb["station"] == "caja"
    assert usb["active"] is False


# Failures: each case edits one record of mixed_package(), whose users_pos block has 2 rows.

Edit = Callable[[dict[str, Any]], object]


def edit_build(**changes: Any) -> Edit:
    return lambda document: document["processes"]["build_info"]["records"][0].update(changes)


def edit_user(**changes: Any) -> Edit:
    return lambda document: document["processes"]["users_pos"]["records"][1].update(changes)


def edit_printer(**changes: Any) -> Edit:
    return lambda document: document["processes"]["printers"]["records"][0].update(changes)


def network(**changes: Any) -> dict[str, Any]:
    return {"type": "network", "address": "prn-001.local", "port": 9100, **changes}


FAILURES = [
    pytest.param("T080", "build_info.records[0]", edit_build(version="2.4"), id="semver-two-parts"),
    pytest.param("T080", "build_info.records[0]", edit_build(version="latest"), id="semver-word"),
    pytest.param("T080", "build_info.records[0]", edit_build(version="02.4.1"), id="semver-zero"),
    pytest.param("T080", "build_info.records[0]", edit_build(commit="9a5c1d"), id="commit-short"),
    pytest.param(
        "T080", "build_info.records[0]", edit_build(commit="9a5c1d03z039"), id="commit-not-hex"
    ),
    pytest.param(
        "T080",
        "build_info.records[0]",
        edit_build(artifacts=[artifact("pos.tar.gz", "xyz")]),
        id="sha256-not-hex",
    ),
    pytest.param(
        "T080",
        "build_info.records[0]",
        edit_build(artifacts=[artifact("pos.tar.gz", "ab" * 31)]),
        id="sha256-short",
    ),
    pytest.param(
        "T080",
        "build_info.records[0]",
        edit_build(artifacts=[artifact("pos.tar.gz", "ab" * 32, 0)]),
        id="artifact-size-zero",
    ),
    pytest.param("T080", "build_info.records[0]", edit_build(artifacts=[]), id="no-artifacts"),
    pytest.param(
        "T080",
        "build_info.records[0]",
        edit_build(builtAt="2026-11-30T09:15:00"),
        id="built-at-naive",
    ),
    pytest.param(
        "T080", "build_info.records[0]", edit_build(builtAt="last week"), id="built-at-text"
    ),
    pytest.param("T080", "build_info.records[0]", edit_build(cdnId="chain-7"), id="cdn-id-t080"),
    pytest.param(
        "T080",
        "build_info.records[0]",
        edit_build(restaurants=[RESTAURANT_IDS[0], "UIO-001"]),
        id="restaurant-not-uuid",
    ),
    pytest.param("T121", "users_pos.records[1]", edit_user(cdnId="chain-7"), id="user-cdn-id"),
    pytest.param(
        "T121", "users_pos.records[1]", edit_user(restaurantId="UIO-001"), id="user-restaurant-id"
    ),
    pytest.param(
        "T121",
        "users_pos.records[1]",
        edit_user(updatedAt="2026-11-05T10:00:00"),
        id="user-time-naive",
    ),
    pytest.param(
        "T121", "users_pos.records[1]", edit_user(updatedAt="yesterday"), id="user-time-text"
    ),
    pytest.param(
        "T121",
        "users_pos.records[1]",
        edit_user(firstName=" ", lastName=""),
        id="user-names-empty",
    ),
    pytest.param(
        "T121", "printers.records[0]", edit_printer(restaurantId="UIO-1"), id="printer-restaurant"
    ),
    pytest.param(
        "T121",
        "printers.records[0]",
        edit_printer(updatedAt="2026-11-29T18:00:00"),
        id="printer-time-naive",
    ),
    pytest.param(
        "T121",
        "printers.records[0]",
        edit_printer(connection=network(type="wifi")),
        id="connection-unknown",
    ),
    pytest.param(
        "T121",
        "printers.records[0]",
        edit_printer(connection=network(port=None)),
        id="network-without-port",
    ),
    pytest.param(
        "T121",
        "printers.records[0]",
        edit_printer(connection=network(port=70000)),
        id="network-port-too-high",
    ),
    pytest.param(
        "T121",
        "printers.records[0]",
        edit_printer(connection=network(address=None)),
        id="network-without-address",
    ),
    pytest.param(
        "T121", "printers.records[0]", edit_printer(paperWidthMm=30), id="paper-too-narrow"
    ),
]


@pytest.mark.parametrize(("stage", "location", "edit"), FAILURES)
def test_transformer_failure_stage(stage: str, location: str, edit: Edit) -> None:
    document = mixed_package()
    router = Router(load_settings())
    edit(document)
    accepted = accept(document)

    with pytest.raises(TransformFailed) as caught:
        router.route(accepted)

    process = location.split(".", 1)[0]
    assert caught.value.stage == stage
    assert caught.value.reason == f"invalid_{process}"
    assert caught.value.retriable is False
    assert str(caught.value).startswith(location + ":")


def test_transformer_failure_rolls_back() -> None:
    """A failing last record leaves no outputs and no state behind in the router."""
    document = mixed_package()
    baseline = snapshot(route(document))
    document["processes"]["printers"]["records"][0]["connection"] = network(port=None)
    router = Router(load_settings())

    with pytest.raises(TransformFailed):
        router.route(accept(document))

    assert snapshot(router.route(accept(mixed_package()))) == baseline


def test_transformer_failure_hides_values() -> None:
    document = mixed_package()
    document["processes"]["build_info"]["records"][0]["version"] = "release-Evangelina"
    document["processes"]["users_pos"]["records"][0]["updatedAt"] = f"at {SECRET_PIN}"

    with pytest.raises(TransformFailed) as build_failure:
        route(document)
    del document["processes"]["build_info"]
    with pytest.raises(TransformFailed) as user_failure:
        route(document)

    assert "Evangelina" not in str(build_failure.value)
    assert SECRET_PIN not in str(user_failure.value)


@pytest.mark.parametrize(("name", "stage"), [("t080_failure", "T080"), ("t121_failure", "T121")])
def test_transformer_failure_examples(name: str, stage: str) -> None:
    accepted = accept(load_example(f"invalid/{name}.json"))

    with pytest.raises(TransformFailed) as caught:
        Router(load_settings()).route(accepted)

    assert caught.value.stage == stage


# Known defects

TIMES_AT_DATETIME_LIMITS = [
    pytest.param(
        "T080", edit_build(builtAt="0001-01-01T00:00:00+01:00"), id="built-at-before-year-1"
    ),
    pytest.param(
        "T121", edit_user(updatedAt="0001-01-01T00:00:00+01:00"), id="updated-at-before-year-1"
    ),
    pytest.param(
        "T121", edit_printer(updatedAt="9999-12-31T23:59:59-01:00"), id="updated-at-after-9999"
    ),
]


@pytest.mark.parametrize(("stage", "edit"), TIMES_AT_DATETIME_LIMITS)
def test_transformer_time_out_of_range(stage: str, edit: Edit) -> None:
    document = mixed_package()
    edit(document)
    accepted = accept(document)

    with pytest.raises(TransformFailed) as caught:
        Router(load_settings()).route(accepted)

    assert caught.value.stage == stage


@pytest.mark.parametrize(
    ("process", "edit", "field", "expected"),
    [
        (
            "build_info",
            edit_build(builtAt="0999-06-01T12:00:00Z"),
            "builtAt",
            "0999-06-01T12:00:00Z",
        ),
        (
            "users_pos",
            lambda document: document["processes"]["users_pos"]["records"][0].update(
                updatedAt="0999-06-01T12:00:00Z"
            ),
            "updatedAt",
            "0999-06-01T12:00:00.000Z",
        ),
    ],
    ids=["t080-built-at", "t121-updated-at"],
)
def test_transformer_pads_early_years(process: str, edit: Edit, field: str, expected: str) -> None:
    document = mixed_package()
    edit(document)

    value = decoded(route(document), process)[0][2]

    assert value is not None
    assert value[field] == expected
