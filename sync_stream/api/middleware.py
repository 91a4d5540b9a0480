"""ASGI middleware: the request body limit and the HTTP metrics."""

from __future__ import annotations

import time
from typing import Any

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sync_stream.api.errors import ApiError, error_response
from sync_stream.observability.metrics import Metrics

STANDARD_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "unmatched"


class BodyTooLarge(ApiError):
    def __init__(self, max_bytes: int) -> None:
        super().__init__(
            413,
            "body_too_large",
            f"the request body is over the {max_bytes}-byte limit (SYNC_API__MAX_BODY_BYTES); "
            "send fewer records per request",
        )


class BodyLimitMiddleware:
    """Respond 413 when Content-Length or the streamed body exceeds max_bytes.

    The streamed size is checked as the body is received, so a chunked upload without
    Content-Length is cut off at the limit instead of being buffered whole.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await error_response(BodyTooLarge(self.max_bytes))(scope, receive, send)
            return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, limited_receive, send)


class HttpMetricsMiddleware:
    """Count requests and observe latency per route template, method and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics, routes: Any) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            method = scope["method"] if scope["method"] in STANDARD_METHODS else "OTHER"
            route = self._route_template(scope)
            self.metrics.http_requests.labels(route, method, str(status)).inc()
            self.metrics.http_seconds.labels(route, method).observe(time.perf_counter() - started)

    def _route_template(self, scope: Scope) -> str:
        """Return the matched route's path template: a bounded label, never the raw path."""
        route = scope.get("route")
        if route is None:
            # Rejected before routing (a 413 on Content-Length), so match the path here.
            for candidate in self.routes:
                match, _ = candidate.matches(scope)
                if match is not Match.NONE:
                    route = candidate
                    break
        path = getattr(route, "path", None)
        return path if isinstance(path, str) else UNMATCHED_ROUTE


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            decoded: str = value.decode("latin-1")
            return decoded
    return None
