"""The FastAPI app factory and its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

import sync_stream
from sync_stream.api.auth import TokenChecker
from sync_stream.api.context import ApiContext
from sync_stream.api.errors import install_error_handlers
from sync_stream.api.facade import FacadePublisher
from sync_stream.api.middleware import BodyLimitMiddleware, HttpMetricsMiddleware
from sync_stream.api.models import ErrorResponse, FacadePackage
from sync_stream.api.routes import api, probes
from sync_stream.kafka.clients import create_producer
from sync_stream.observability.metrics import Metrics
from sync_stream.projection.users_pos import UsersPosProjection
from sync_stream.runtime.processor import Processor
from sync_stream.settings import Settings
from sync_stream.status.store import SyncStatusStore

log = structlog.get_logger(__name__)

TITLE = "MXP-Sync"
DESCRIPTION = (
    "The HTTP facade of MXP-Sync. Every /api route needs `Authorization: Bearer <token>`. "
    "Every response except /metrics is the envelope "
    '`{"code", "status", "message", "details"}`.'
)


def create_app(
    settings: Settings,
    metrics: Metrics | None = None,
    *,
    projection: UsersPosProjection | None = None,
    statuses: SyncStatusStore | None = None,
    processor: Processor | None = None,
    producer: AIOKafkaProducer | None = None,
) -> FastAPI:
    """Build the app. Components passed in are shared and left running at shutdown; the
    lifespan starts and stops the ones left out.

    A processor passed in adds its consume loop and partition assignment to /healthz and
    /readyz.
    """
    context = ApiContext(
        settings=settings,
        metrics=metrics or Metrics(),
        publisher=FacadePublisher(settings),
        projection=projection,
        statuses=statuses,
        processor=processor,
        producer=producer,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            await _start_missing(context, stack)
            if not settings.api.tokens:
                log.warning("no API tokens configured: every /api request gets 401")
            log.info("api started", topic=settings.topics.source_topic("http"))
            yield
        log.info("api stopped")

    app = FastAPI(
        title=TITLE,
        version=sync_stream.__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.context = context
    app.state.token_checker = TokenChecker(settings.api.tokens)
    app.include_router(api)
    app.include_router(probes)
    install_error_handlers(app)
    # Added last, so it runs first: a request over the limit gets 413 before routing.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.api.max_body_bytes)
    app.add_middleware(HttpMetricsMiddleware, metrics=context.metrics, routes=app.routes)
    app.openapi = lambda: _openapi(app, settings)  # type: ignore[method-assign]
    return app


async def _start_missing(context: ApiContext, stack: AsyncExitStack) -> None:
    settings = context.settings
    if context.projection is None:
        context.projection = UsersPosProjection(settings, context.metrics)
        await context.projection.start()
        stack.push_async_callback(context.projection.stop)
    if context.statuses is None:
        context.statuses = SyncStatusStore(settings)
        await context.statuses.start()
        stack.push_async_callback(context.statuses.stop)
    if context.producer is None:
        context.producer = create_producer(settings.kafka)
        await context.producer.start()
        stack.push_async_callback(context.producer.stop)


def _openapi(app: FastAPI, settings: Settings) -> dict[str, Any]:
    """Generate the schema once, adding the package body and the envelope of every error.

    The package body names the configured sources, processes and chunkLoad limit. FastAPI
    documents a 422 for routes with parameters, but these routes respond to malformed
    parameters with 400, so that default is removed.
    """
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (FacadePackage, ErrorResponse):
        model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(model_schema.pop("$defs", {}))
        components[model.__name__] = model_schema

    properties = components["FacadePackage"]["properties"]
    properties["source"]["enum"] = sorted(settings.topics.sources)
    properties["chunkLoad"]["maximum"] = settings.limits.max_chunk_load
    properties["processes"]["minProperties"] = 1
    properties["processes"]["propertyNames"] = {"enum": sorted(settings.routes)}

    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if "HTTPValidationError" in str(responses.get("422", {})):
                del responses["422"]
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    app.openapi_schema = schema
    return schema
