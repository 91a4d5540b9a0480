"""T080, build info: normalize build metadata and check its structure and availability."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC

from sync_stream.codec.avro import codec_for
from sync_stream.errors import TransformFailed
from sync_stream.transformers.outputs import (
    OutputRecord,
    canonical_uuid,
    format_utc_seconds,
    parse_utc,
)
from sync_stream.transformers.rows import BuildInfoRow

SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)
COMMIT = re.compile(r"^[0-9a-f]{7,40}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _fail(index: int, problem: str) -> TransformFailed:
    return TransformFailed(
        f"build_info.records[{index}]: {problem}", transformer="T080", reason="invalid_build_info"
    )


def _canonical_uuid(text: str, index: int, field: str) -> str:
    try:
        return canonical_uuid(text)
    except ValueError:
        raise _fail(index, f"{field} is not a UUID") from None


def build_info_datum(row: BuildInfoRow, index: int) -> dict[str, object]:
    """Return the canonical BuildInfo datum of one row, or raise TransformFailed."""
    version = row.version.removeprefix("v")
    if not SEMVER.match(version):
        raise _fail(index, "version is not a semantic version")
    commit = row.commit.lower()
    if not COMMIT.match(commit):
        raise _fail(index, "commit is not 7 to 40 hexadecimal characters")
    try:
        built_at = parse_utc(row.builtAt).astimezone(UTC)
    except ValueError:
        raise _fail(index, "builtAt is not an ISO-8601 time with an offset") from None
    if not row.artifacts:
        raise _fail(index, "no artifacts: the build is not available")

    artifacts = []
    for position, artifact in enumerate(row.artifacts):
        digest = artifact.sha256.lower().removeprefix("sha256:")
        if not SHA256.match(digest):
            raise _fail(index, f"artifacts[{position}].sha256 is not 64 hexadecimal characters")
        if artifact.sizeBytes <= 0:
            raise _fail(index, f"artifacts[{position}].sizeBytes must be > 0")
        artifacts.append({"name": artifact.name, "sha256": digest, "sizeBytes": artifact.sizeBytes})

    restaurants = sorted({_canonical_uuid(r, index, "restaurants[]") for r in row.restaurants})
    return {
        "module": row.module,
        "version": version,
        "buildNumber": row.buildNumber,
        "commit": commit,
        "builtAt": format_utc_seconds(built_at),
        "cdnId": _canonical_uuid(row.cdnId, index, "cdnId"),
        "restaurants": restaurants,
        "artifacts": artifacts,
    }


def transform_build_info(
    rows: Sequence[BuildInfoRow], facades: Sequence[str], process: str = "build_info"
) -> list[OutputRecord]:
    """Map build rows to BuildInfo records, one per build and facade."""
    codec = codec_for("BuildInfo")
    outputs: list[OutputRecord] = []
    for index, row in enumerate(rows):
        datum = build_info_datum(row, index)
        key = f"{datum['module']}:{datum['version']}:{datum['buildNumber']}".encode()
        value = codec.encode(datum)
        for facade in facades:
            outputs.append(OutputRecord(facade, process, key, value, row.buildNumber))
    return outputs
