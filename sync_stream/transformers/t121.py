"""T121, transform: map source rows to facade records (users_pos, printers)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any

from sync_stream.codec.avro import codec_for
from sync_stream.errors import TransformFailed
from sync_stream.transformers.outputs import (
    OutputRecord,
    canonical_uuid,
    epoch_millis,
    format_utc_millis,
    parse_utc,
)
from sync_stream.transformers.rows import PrinterRow, UserRow

PRINTER_CONNECTIONS = frozenset({"network", "usb", "serial", "bluetooth"})
_NOT_NAME_CHARS = re.compile(r"[^a-z0-9]+")


def _fail(process: str, index: int, problem: str) -> TransformFailed:
    return TransformFailed(
        f"{process}.records[{index}]: {problem}", transformer="T121", reason=f"invalid_{process}"
    )


def _uuid(text: str, process: str, index: int, field: str) -> str:
    try:
        return canonical_uuid(text)
    except ValueError:
        raise _fail(process, index, f"{field} is not a UUID") from None


def _updated_at(text: str, process: str, index: int) -> tuple[str, int]:
    try:
        moment = parse_utc(text)
    except ValueError:
        raise _fail(process, index, "updatedAt is not an ISO-8601 time with an offset") from None
    return format_utc_millis(moment), epoch_millis(moment)


def _ascii_slug(text: str) -> str:
    if text.isascii():
        # NFKD and the ASCII round trip leave ASCII text as it is.
        return _NOT_NAME_CHARS.sub("", text.lower())
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return _NOT_NAME_CHARS.sub("", folded)


def default_user_name(first_name: str, last_name: str) -> str:
    """Derive a login name when Ares sends none: first initial and last name, ASCII lower case."""
    first = _ascii_slug(first_name)
    return (first[:1] + _ascii_slug(last_name.split(" ")[0])) or "user"


def transform_users(
    rows: Sequence[UserRow], facades: Sequence[str], process: str = "users_pos"
) -> list[OutputRecord]:
    """Map Ares user rows to UserPos records; a row marked deleted becomes a tombstone."""
    codec = codec_for("UserPos")
    outputs: list[OutputRecord] = []
    for index, row in enumerate(rows):
        cdn_id = _uuid(row.cdnId, process, index, "cdnId")
        restaurant_id = _uuid(row.restaurantId, process, index, "restaurantId")
        updated_at, version = _updated_at(row.updatedAt, process, index)
        key = f"{cdn_id}:{restaurant_id}:{row.employeeId}".encode()
        value: bytes | None = None
        if not row.deleted:
            # split() and regex \s agree on what whitespace is, so this collapses every
            # run of whitespace to one space and trims both ends.
            full_name = " ".join(f"{row.firstName} {row.lastName}".split())
            if not full_name:
                raise _fail(process, index, "firstName and lastName are both empty")
            value = codec.encode(
                {
                    "userId": row.employeeId,
                    "cdnId": cdn_id,
                    "restaurantId": restaurant_id,
                    "userName": row.userName or default_user_name(row.firstName, row.lastName),
                    "fullName": full_name,
                    "profile": "_".join(row.position.lower().split()),
                    "status": "active" if row.active else "inactive",
                    "updatedAt": updated_at,
                }
            )
        for facade in facades:
            outputs.append(OutputRecord(facade, process, key, value, version))
    return outputs


def transform_printers(
    rows: Sequence[PrinterRow], facades: Sequence[str], process: str = "printers"
) -> list[OutputRecord]:
    """Map MXP Printer rows to PrinterConfig records."""
    codec = codec_for("PrinterConfig")
    outputs: list[OutputRecord] = []
    for index, row in enumerate(rows):
        cdn_id = _uuid(row.cdnId, process, index, "cdnId")
        restaurant_id = _uuid(row.restaurantId, process, index, "restaurantId")
        updated_at, version = _updated_at(row.updatedAt, process, index)
        connection = row.connection.type.lower()
        if connection not in PRINTER_CONNECTIONS:
            raise _fail(
                process, index, f"connection.type is not one of {sorted(PRINTER_CONNECTIONS)}"
            )
        if connection == "network" and (
            not row.connection.address
            or row.connection.port is None
            or not 1 <= row.connection.port <= 65535
        ):
            raise _fail(
                process, index, "a network printer needs connection.address and a port 1..65535"
            )
        if not 40 <= row.paperWidthMm <= 120:
            raise _fail(process, index, "paperWidthMm must be within 40..120")
        key = f"{cdn_id}:{restaurant_id}:{row.printerId}".encode()
        value = codec.encode(
            {
                "printerId": row.printerId,
                "cdnId": cdn_id,
                "restaurantId": restaurant_id,
                "name": row.name,
                "model": row.model,
                "station": row.station.lower(),
                "connectionType": connection,
                "address": row.connection.address,
                "port": row.connection.port,
                "paperWidthMm": row.paperWidthMm,
                "active": row.active,
                "updatedAt": updated_at,
            }
        )
        for facade in facades:
            outputs.append(OutputRecord(facade, process, key, value, version))
    return outputs


Mapper = Callable[[Sequence[Any], Sequence[str], str], list[OutputRecord]]

T121_MAPPERS: dict[str, Mapper] = {"users_pos": transform_users, "printers": transform_printers}
