"""Source rows each transformer needs, as the gate checks them.

The gate rejects a package whose rows lack a field or carry a wrong JSON type
(reason `invalid_record`). Value rules that need interpretation (UUIDs, semantic versions,
timestamps, digests) belong to the transformers, whose failures roll the package back.
Fields not named here, PINs and passwords among them, are dropped on validation.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

# Identifiers become parts of `a:b:c` record keys, so they cannot contain a colon.
IDENTIFIER = r"^[^:]+$"


class _Row(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=True, strict=True)


class ArtifactRow(_Row):
    name: str = Field(min_length=1)
    sha256: str
    sizeBytes: int


class BuildInfoRow(_Row):
    """Build metadata from MXP Init or MXP FE Build."""

    module: str = Field(min_length=1, pattern=IDENTIFIER)
    version: str
    buildNumber: int = Field(ge=0)
    commit: str
    builtAt: str
    cdnId: str
    restaurants: list[str] = Field(default_factory=list)
    artifacts: list[ArtifactRow]


class UserRow(_Row):
    """An Ares user directory row, as sent by the Sync-Users-Ares body."""

    employeeId: str = Field(min_length=1, pattern=IDENTIFIER)
    cdnId: str
    restaurantId: str
    firstName: str
    lastName: str
    userName: str | None = None
    position: str = Field(min_length=1)
    active: bool
    updatedAt: str
    deleted: bool = False


class PrinterConnectionRow(_Row):
    type: str
    address: str | None = None
    port: int | None = None


class PrinterRow(_Row):
    """A printer row from MXP Printer."""

    printerId: str = Field(min_length=1, pattern=IDENTIFIER)
    cdnId: str
    restaurantId: str
    name: str = Field(min_length=1)
    model: str
    station: str
    connection: PrinterConnectionRow
    paperWidthMm: int
    active: bool = True
    updatedAt: str


RowModel = BuildInfoRow | UserRow | PrinterRow

ROW_MODELS: dict[str, type[BuildInfoRow] | type[UserRow] | type[PrinterRow]] = {
    "build_info": BuildInfoRow,
    "users_pos": UserRow,
    "printers": PrinterRow,
}
