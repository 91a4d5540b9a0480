"""The routes: the facade, users_pos, sync status, and the probes and metrics."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from sync_stream.api.auth import require_token
from sync_stream.api.context import ApiContext, get_context
from sync_stream.api.errors import ApiError, envelope
from sync_stream.api.models import (
    ErrorResponse,
    FacadeResponse,
    ProbeResponse,
    SyncStatusResponse,
    UsersResponse,
)

Context = Annotated[ApiContext, Depends(get_context)]


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        400: "Missing or malformed parameters, or a body that is not JSON.",
        401: "Missing, malformed or unknown bearer token.",
        404: "Not found.",
        413: "Body over SYNC_API__MAX_BODY_BYTES.",
        422: "The package breaks an F008 rule, or T080/T121 would reject it.",
        503: "Still loading, or Kafka did not acknowledge.",
    }
    return {code: {"model": ErrorResponse, "description": descriptions[code]} for code in codes}


FACADE_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/FacadePackage"}}},
    }
}

api = APIRouter(prefix="/api", dependencies=[Depends(require_token)])
probes = APIRouter()


@api.post(
    "/v1/facade",
    status_code=202,
    response_model=FacadeResponse,
    responses=_errors(400, 401, 413, 422, 503),
    openapi_extra=FACADE_BODY,
    summary="Accept an F008 package",
    tags=["facade"],
)
async def post_facade(request: Request, context: Context) -> JSONResponse:
    """Validate the package, split it into chunks of chunkLoad records, publish the chunks
    to the HTTP source topic keyed by syncId, and respond with the syncId and chunk count.

    Sending the same body again is safe: the chunks are the same and processing them
    twice changes nothing.
    """
    chunks = context.publisher.prepare(await request.body())
    assert context.producer is not None, "the app's lifespan starts the producer"
    await context.publisher.publish(context.producer, chunks)
    details = {"syncId": chunks[0]["syncId"], "chunks": len(chunks)}
    return JSONResponse(envelope(202, "accepted", "Package accepted", details), status_code=202)


@api.get(
    "/users_pos",
    response_model=UsersResponse,
    responses=_errors(400, 401, 503),
    summary="POS users of one restaurant",
    tags=["users_pos"],
)
async def get_users_pos(
    context: Context,
    cdn_id: Annotated[uuid.UUID, Query(description="Chain (CDN) id.")],
    restaurant_id: Annotated[uuid.UUID, Query(description="Restaurant id.")],
) -> Response:
    """Return the users of one restaurant from the users_pos projection, ordered by userId."""
    projection = context.ready_projection()
    body = context.users_cache.body(projection, str(cdn_id), str(restaurant_id))
    return Response(body, media_type="application/json")


@api.get(
    "/v1/syncs/{sync_id}",
    response_model=SyncStatusResponse,
    responses=_errors(400, 401, 404, 503),
    summary="Status of one sync run",
    tags=["syncs"],
)
async def get_sync(
    context: Context,
    sync_id: Annotated[uuid.UUID, Path(description="The syncId of the package.")],
) -> JSONResponse:
    statuses = context.ready_statuses()
    progress = statuses.get(str(sync_id))
    if progress is None:
        raise ApiError(404, "sync_not_found", f"no status for syncId {sync_id}")
    return JSONResponse(envelope(200, "success", "Sync status", progress.to_datum()))


def _probe(checks: dict[str, bool], passed: str, failed: str) -> JSONResponse:
    ok = all(checks.values())
    code = 200 if ok else 503
    status = "success" if ok else "error"
    body = envelope(code, status, passed if ok else failed, {"checks": checks})
    return JSONResponse(body, status_code=code)


@probes.get(
    "/healthz",
    response_model=ProbeResponse,
    responses={503: {"model": ProbeResponse, "description": "A background loop died or hangs."}},
    summary="Liveness",
    tags=["probes"],
)
async def healthz(context: Context) -> JSONResponse:
    return _probe(context.liveness(), "alive", "a background loop died or is stuck")


@probes.get(
    "/readyz",
    response_model=ProbeResponse,
    responses={503: {"model": ProbeResponse, "description": "Not ready yet."}},
    summary="Readiness",
    tags=["probes"],
)
async def readyz(context: Context) -> JSONResponse:
    return _probe(context.readiness(), "ready", "not ready")


@probes.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}},
            "description": "Prometheus text exposition.",
        }
    },
    summary="Prometheus metrics",
    tags=["probes"],
)
async def metrics(context: Context) -> Response:
    return Response(generate_latest(context.metrics.registry), media_type=CONTENT_TYPE_LATEST)
