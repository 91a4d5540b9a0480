"""Response envelopes and request bodies of the HTTP API, as OpenAPI documents them.

Every response is `{"code": <HTTP status>, "status": "success"|"accepted"|"error",
"message": "...", "details": ...}`. Only `/metrics` responds in the Prometheus text format.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class FieldError(BaseModel):
    """One invalid field: its path and what is wrong, never its value."""

    field: str = Field(description="Dotted path, e.g. processes.users_pos.records.3.updatedAt.")
    message: str


class ErrorDetails(BaseModel):
    reason: str = Field(
        description="Stable reason code: an F008 rejection reason (invalid_code, "
        "chunk_load_out_of_range, ...) or an HTTP one (missing_token, invalid_parameter, "
        "body_too_large, not_found, ...)."
    )
    errors: list[FieldError] = Field(default_factory=list)


class ErrorResponse(BaseModel):
    code: int = Field(ge=400, le=599)
    status: Literal["error"] = "error"
    message: str
    details: ErrorDetails


class UserPos(BaseModel):
    """A POS user of one restaurant (the UserPos Avro record)."""

    userId: str
    cdnId: str
    restaurantId: str
    userName: str
    fullName: str
    profile: str
    status: Literal["active", "inactive"]
    updatedAt: str = Field(description="ISO-8601 UTC with milliseconds and a Z suffix.")


class UsersResponse(BaseModel):
    code: Literal[200] = 200
    status: Literal["success"] = "success"
    message: str = "Data retrieved successfully"
    details: list[UserPos]


class FacadeAccepted(BaseModel):
    syncId: str
    chunks: int = Field(ge=1, description="Chunks published to the HTTP source topic.")


class FacadeResponse(BaseModel):
    code: Literal[202] = 202
    status: Literal["accepted"] = "accepted"
    message: str
    details: FacadeAccepted


class SyncStatusDetails(BaseModel):
    """Progress of one sync run (the SyncStatus Avro record)."""

    syncId: str
    source: str
    chunksExpected: int
    chunksDone: int
    chunksFailed: int
    doneChunks: list[int]
    failedChunks: list[int]
    state: Literal["in_progress", "completed", "failed"]
    buildMetadataOk: bool
    firstUpdate: str
    lastUpdate: str


class SyncStatusResponse(BaseModel):
    code: Literal[200] = 200
    status: Literal["success"] = "success"
    message: str
    details: SyncStatusDetails


class ProbeDetails(BaseModel):
    checks: dict[str, bool] = Field(description="Each check by name; all must be true.")


class ProbeResponse(BaseModel):
    code: Literal[200, 503]
    status: Literal["success", "error"]
    message: str
    details: ProbeDetails


class ChunkDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")

    index: int = Field(ge=0)
    count: int = Field(ge=1)


class ProcessBlockDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["delta", "full"] = Field(
        default="delta",
        description="delta touches only the records sent; full is the complete list for the "
        "restaurants the records name, and removes their other users once every chunk is in.",
    )
    records: list[dict[str, Any]]


class FacadePackage(BaseModel):
    """An F008 package. The facade splits it into chunks of chunkLoad records per process."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "code": "F008",
                    "syncId": "a5c94b82-6086-5860-82ec-8c196de958c7",
                    "chunkLoad": 100,
                    "processes": {
                        "users_pos": {
                            "mode": "delta",
                            "records": [
                                {
                                    "employeeId": "EMP-10000",
                                    "cdnId": "bc2d8ada-e25e-1bb7-55fe-32d1205ac4af",
                                    "restaurantId": "e17d03da-b8b6-f424-febc-3a767b6401bb",
                                    "firstName": "Ana",
                                    "lastName": "Pérez",
                                    "position": "Cajero",
                                    "active": True,
                                    "updatedAt": "2026-11-25T10:06:00-05:00",
                                }
                            ],
                        }
                    },
                }
            ]
        },
    )

    code: Literal["F008"]
    syncId: str = Field(json_schema_extra={"format": "uuid"})
    source: str = Field(default="http", description="Source module; http when absent.")
    chunkLoad: int = Field(ge=1, description="Maximum records per process in one chunk.")
    chunk: ChunkDoc | None = Field(
        default=None, description="Only for a body that is already one chunk: sent as it is."
    )
    checksum: str | None = Field(
        default=None,
        description="sha256: of the RFC 8785 canonical JSON of processes; checked when present.",
    )
    processes: dict[str, ProcessBlockDoc]
