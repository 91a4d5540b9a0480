"""POST /api/v1/facade: check an F008 package at once, split it into chunks, publish them.

The body is checked by the same F008 gate the processors run, with one difference: it may
carry more records per process than chunkLoad, because the facade splits it. The rows are
checked on the whole body, so error paths name the body's own record indexes. T080 and
T121 also run on it, so a package they would roll back is rejected with 422 at once
instead of reaching the DLQ.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import orjson
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from pydantic import TypeAdapter, ValidationError

from sync_stream.api.errors import ApiError, field_errors
from sync_stream.api.models import FieldError
from sync_stream.errors import PackageRejected, SyncStreamError
from sync_stream.gate import F008Gate
from sync_stream.gate.f008 import AcceptedPackage, Envelope
from sync_stream.gate.reasons import Reason
from sync_stream.publish import package_headers, split_package
from sync_stream.routing import Router
from sync_stream.settings import Settings
from sync_stream.transformers.rows import ROW_MODELS

log = structlog.get_logger(__name__)

HTTP_SOURCE = "http"
# Rejections of a body that is not JSON at all. Every other rejection is a schema error.
BAD_REQUEST_REASONS = frozenset({Reason.EMPTY_VALUE, Reason.INVALID_JSON})


_ROW_LISTS = {name: TypeAdapter(list[model]) for name, model in ROW_MODELS.items()}  # type: ignore[valid-type]


def rejected(exc: SyncStreamError, document: Any = None) -> ApiError:
    """Map a gate or transformer rejection to an ApiError: 400 for a body that is not JSON,
    else 422, with the invalid fields of a structure or record rejection."""
    status = 400 if exc.reason in BAD_REQUEST_REASONS else 422
    message = exc.message
    if exc.stage in ("T080", "T121"):
        message = f"{exc.stage} rejected the package: {message}"
    return ApiError(status, exc.reason, message, errors=invalid_fields(exc.reason, document))


def invalid_fields(reason: str, document: Any) -> list[FieldError]:
    """Validate again what the gate rejected, to list the failing fields one by one."""
    if not isinstance(document, dict):
        return []
    if reason == Reason.INVALID_STRUCTURE:
        try:
            Envelope.model_validate(document)
        except ValidationError as exc:
            return field_errors(exc.errors(include_input=False))
    if reason == Reason.INVALID_RECORD:
        found = []
        for name, block in document["processes"].items():
            adapter = _ROW_LISTS.get(name)
            if adapter is None:
                continue
            try:
                adapter.validate_python(block["records"])
            except ValidationError as exc:
                prefix = f"processes.{name}.records"
                found += field_errors(exc.errors(include_input=False), prefix=prefix)
        return found
    return []


class FacadePublisher:
    """Validate packages from HTTP bodies and publish their chunks to the HTTP source topic."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._topic = settings.topics.source_topic(HTTP_SOURCE)
        self._gate = F008Gate(settings)
        # The whole body may carry any number of records per process, but its chunks may not.
        unbounded = settings.limits.model_copy(update={"max_chunk_load": sys.maxsize})
        self._body_gate = F008Gate(settings.model_copy(update={"limits": unbounded}))
        self._router = Router(settings)
        self._max_package_bytes = settings.limits.max_package_bytes

    def prepare(self, body: bytes) -> list[dict[str, Any]]:
        """Return the chunks to publish, or raise ApiError with the rejection reason."""
        if not body:
            raise ApiError(400, Reason.EMPTY_VALUE, "the request body is empty")
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ApiError(
                400, Reason.INVALID_JSON, f"the body is not valid JSON: {exc.msg}"
            ) from None
        if not isinstance(document, dict):
            raise ApiError(422, Reason.INVALID_STRUCTURE, "the body must be a JSON object")
        document.setdefault("source", HTTP_SOURCE)

        try:
            if "chunk" in document:
                # Already one chunk of the caller's own split: checked and sent as it is.
                chunks = [document]
                self._dry_run(self._gate.check_document(document))
            else:
                chunks = self._split_checked(document)
        except SyncStreamError as exc:
            raise rejected(exc, document) from None

        for index, chunk in enumerate(chunks):
            size = len(orjson.dumps(chunk))
            if size > self._max_package_bytes:
                raise ApiError(
                    422,
                    Reason.TOO_LARGE,
                    f"chunk {index} would be {size} bytes, over the {self._max_package_bytes}-"
                    "byte package limit (SYNC_LIMITS__MAX_PACKAGE_BYTES); lower chunkLoad",
                )
        return chunks

    def _split_checked(self, document: dict[str, Any]) -> list[dict[str, Any]]:
        try:
            accepted = self._gate.check_document(document)
        except PackageRejected as exc:
            if exc.reason != Reason.TOO_MANY_RECORDS:
                raise
            # Every envelope rule before too_many_records passed, so check the rows and the
            # checksum of the whole body with a chunkLoad that fits every process.
            largest = max(len(block["records"]) for block in document["processes"].values())
            accepted = self._body_gate.check_document({**document, "chunkLoad": largest})
        self._dry_run(accepted)

        chunks = split_package(document)
        max_chunks = self._settings.limits.max_chunks
        if len(chunks) > max_chunks:
            raise PackageRejected(
                f"the body needs {len(chunks)} chunks of chunkLoad records, over the limit of "
                f"{max_chunks} (SYNC_LIMITS__MAX_CHUNKS); raise chunkLoad or send fewer records",
                reason=Reason.INVALID_CHUNK,
            )
        for chunk in chunks:
            self._gate.check_document(chunk)
        return chunks

    def _dry_run(self, accepted: AcceptedPackage) -> None:
        """Run the transformers: they are pure, and raise TransformFailed on a bad record."""
        self._router.route(accepted)

    async def publish(self, producer: AIOKafkaProducer, chunks: list[dict[str, Any]]) -> None:
        """Send every chunk keyed by syncId and wait for all acknowledgements.

        Raise ApiError 503 when Kafka does not acknowledge in time. Some chunks may have
        been written by then, so a client retries with the same body, and the processors
        handle the repeated chunks idempotently.
        """
        timeout_s = self._settings.api.publish_timeout_ms / 1000
        sync_id = str(chunks[0]["syncId"])
        try:
            async with asyncio.timeout(timeout_s):
                futures = [
                    await producer.send(
                        self._topic,
                        orjson.dumps(chunk),
                        key=sync_id.encode(),
                        headers=package_headers(chunk),
                    )
                    for chunk in chunks
                ]
                await asyncio.gather(*futures)
        except (KafkaError, TimeoutError) as exc:
            log.error(
                "package not published",
                sync_id=sync_id,
                topic=self._topic,
                chunks=len(chunks),
                error=type(exc).__name__,
            )
            raise ApiError(
                503,
                "publish_failed",
                "Kafka did not acknowledge the package; retry the same request",
                headers={"Retry-After": "5"},
            ) from None
        log.info("package accepted", sync_id=sync_id, topic=self._topic, chunks=len(chunks))
