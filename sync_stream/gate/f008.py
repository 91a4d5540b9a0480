"""The F008 gate: every rejection rule of a package, each with its own reason code."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

import rfc8785
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from sync_stream.codec.canonical import processes_checksum
from sync_stream.errors import PackageRejected
from sync_stream.gate.decode import decode_package
from sync_stream.gate.reasons import Reason
from sync_stream.settings import Settings
from sync_stream.transformers.rows import ROW_MODELS, RowModel

F008_CODE = "F008"


# Strict models: a JSON string where a number belongs ("10" for chunkLoad) is rejected, not
# coerced, so every source sends the same types.
class ChunkInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    index: int
    count: int


class ProcessBlock(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    mode: Literal["delta", "full"] = "delta"
    records: list[dict[str, Any]]


class Envelope(BaseModel):
    """The F008 package without its rows, which are checked per process."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    code: str
    syncId: str
    source: str
    chunkLoad: int
    chunk: ChunkInfo | None = None
    checksum: str | None = None
    processes: dict[str, ProcessBlock] = Field(default_factory=dict)

    @property
    def chunk_index(self) -> int:
        return self.chunk.index if self.chunk else 0

    @property
    def chunk_count(self) -> int:
        return self.chunk.count if self.chunk else 1


@dataclass(frozen=True, slots=True)
class AcceptedPackage:
    """A package that passed the gate, with its rows validated per process."""

    envelope: Envelope
    rows: dict[str, list[RowModel]]

    @property
    def sync_id(self) -> str:
        return self.envelope.syncId

    @property
    def source(self) -> str:
        return self.envelope.source


_ENVELOPE = TypeAdapter(Envelope)
_ROW_LISTS = {name: TypeAdapter(list[model]) for name, model in ROW_MODELS.items()}  # type: ignore[valid-type]


def _reject(reason: Reason, message: str) -> PackageRejected:
    return PackageRejected(message, reason=reason)


def _validation_summary(exc: ValidationError, prefix: str = "") -> str:
    """Name the failing field paths and what is wrong, never the values."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False)[:5]:
        path = ".".join(str(item) for item in error["loc"])
        parts.append(f"{prefix}{path}: {error['msg']}")
    more = exc.error_count() - len(parts)
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


class F008Gate:
    """Check packages against the settings' sources, routing table and limits."""

    def __init__(self, settings: Settings) -> None:
        self._sources = frozenset(settings.topics.sources)
        self._processes = frozenset(settings.routes)
        self._limits = settings.limits

    def check_bytes(self, value: bytes | None, content_type: str | None) -> AcceptedPackage:
        """Decode and check one record value; raise PackageRejected (or DecodeFailed)."""
        document = decode_package(value, content_type, self._limits.max_package_bytes)
        return self.check_document(document)

    def check_document(self, document: Any) -> AcceptedPackage:
        """Check an already decoded package (the HTTP facade validates this way too)."""
        if not isinstance(document, dict):
            raise _reject(Reason.INVALID_STRUCTURE, "package is not a JSON object")
        try:
            envelope = _ENVELOPE.validate_python(document)
        except ValidationError as exc:
            raise _reject(Reason.INVALID_STRUCTURE, _validation_summary(exc)) from None

        self._check_envelope(envelope)
        rows = self._check_rows(envelope)
        if envelope.checksum is not None:
            self._check_checksum(envelope.checksum, document["processes"])
        return AcceptedPackage(envelope=envelope, rows=rows)

    def _check_envelope(self, envelope: Envelope) -> None:
        limits = self._limits
        if envelope.code != F008_CODE:
            raise _reject(Reason.INVALID_CODE, f"code must be {F008_CODE}")
        try:
            uuid.UUID(envelope.syncId)
        except ValueError:
            raise _reject(Reason.INVALID_SYNC_ID, "syncId is not a UUID") from None
        if envelope.source not in self._sources:
            raise _reject(
                Reason.UNKNOWN_SOURCE,
                f"source is not one of {sorted(self._sources)}",
            )
        if not 1 <= envelope.chunkLoad <= limits.max_chunk_load:
            raise _reject(
                Reason.CHUNK_LOAD_OUT_OF_RANGE,
                f"chunkLoad {envelope.chunkLoad} is outside 1..{limits.max_chunk_load}",
            )
        if not envelope.processes:
            raise _reject(Reason.NO_PROCESSES, "processes is empty")
        unknown = sorted(set(envelope.processes) - self._processes)
        if unknown:
            names = ", ".join(name[:64] for name in unknown[:5])
            raise _reject(
                Reason.UNKNOWN_PROCESS,
                f"unknown process {names}; routed processes are {sorted(self._processes)}",
            )
        for name, block in envelope.processes.items():
            if len(block.records) > envelope.chunkLoad:
                raise _reject(
                    Reason.TOO_MANY_RECORDS,
                    f"process {name} has {len(block.records)} records, over chunkLoad "
                    f"{envelope.chunkLoad}",
                )
        chunk = envelope.chunk
        if chunk is not None and not (
            1 <= chunk.count <= limits.max_chunks and 0 <= chunk.index < chunk.count
        ):
            raise _reject(
                Reason.INVALID_CHUNK,
                f"chunk {chunk.index}/{chunk.count} needs 0 <= index < count <= "
                f"{limits.max_chunks}",
            )

    def _check_rows(self, envelope: Envelope) -> dict[str, list[RowModel]]:
        rows: dict[str, list[RowModel]] = {}
        for name, block in envelope.processes.items():
            adapter = _ROW_LISTS.get(name)
            if adapter is None:
                # Routed by settings but unknown to every transformer: Router rejects this
                # routing table at start, so it cannot happen in a running service.
                raise _reject(Reason.UNKNOWN_PROCESS, f"no row model for process {name}")
            try:
                rows[name] = adapter.validate_python(block.records)
            except ValidationError as exc:
                raise _reject(
                    Reason.INVALID_RECORD,
                    _validation_summary(exc, prefix=f"processes.{name}.records."),
                ) from None
        return rows

    @staticmethod
    def _check_checksum(declared: str, processes: Any) -> None:
        try:
            actual = processes_checksum(processes)
        except rfc8785.CanonicalizationError:
            # The library's message quotes the offending value, so it is not passed on.
            raise _reject(
                Reason.CHECKSUM_MISMATCH,
                "processes cannot be canonicalized (RFC 8785 allows integers within "
                "±(2**53 - 1) and finite floats only), so the checksum cannot match",
            ) from None
        if declared.lower() != actual:
            raise _reject(
                Reason.CHECKSUM_MISMATCH,
                "checksum does not match the SHA-256 of the canonical JSON of processes",
            )
