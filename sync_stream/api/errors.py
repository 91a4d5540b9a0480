"""API errors and the handlers that render every error in the response envelope."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from sync_stream.api.models import ErrorDetails, ErrorResponse, FieldError

log = structlog.get_logger(__name__)

# Request parts whose validation errors are the client's malformed parameters (400);
# errors in the body are schema errors (422).
PARAMETER_LOCATIONS = frozenset({"query", "path", "header", "cookie"})


class ApiError(Exception):
    """An error returned to the client with its HTTP status and a stable reason code."""

    def __init__(
        self,
        status_code: int,
        reason: str,
        message: str,
        *,
        errors: Iterable[FieldError] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.reason = reason
        self.message = message
        self.errors = list(errors)
        self.headers = dict(headers or {})


def envelope(code: int, status: str, message: str, details: Any) -> dict[str, Any]:
    return {"code": code, "status": status, "message": message, "details": details}


def error_response(error: ApiError) -> JSONResponse:
    body = ErrorResponse(
        code=error.status_code,
        message=error.message,
        details=ErrorDetails(reason=error.reason, errors=error.errors),
    )
    return JSONResponse(body.model_dump(), status_code=error.status_code, headers=error.headers)


def field_errors(
    errors: Iterable[Mapping[str, Any]], *, skip_location: bool = False, prefix: str = ""
) -> list[FieldError]:
    """Turn pydantic errors into field paths and messages, leaving out the input values."""
    found = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ())]
        if skip_location and location:
            location = location[1:]
        if prefix:
            location.insert(0, prefix)
        # Some pydantic messages quote part of the input after a comma ("Input should be a
        # valid UUID, invalid character: ... found `x`"), but the first clause never does.
        message = str(error.get("msg", "invalid value")).split(",", 1)[0]
        found.append(FieldError(field=".".join(location) or "(root)", message=message))
    return found


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    in_parameters = all(
        error.get("loc") and error["loc"][0] in PARAMETER_LOCATIONS for error in errors
    )
    if in_parameters:
        return error_response(
            ApiError(
                400,
                "invalid_parameter",
                "missing or malformed parameters",
                errors=field_errors(errors, skip_location=True),
            )
        )
    return error_response(
        ApiError(
            422,
            "invalid_structure",
            "the request does not match the schema",
            errors=field_errors(errors, skip_location=True),
        )
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    reason = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_")
    message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    return error_response(
        ApiError(exc.status_code, reason, message, headers=dict(exc.headers or {}))
    )


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    route = getattr(request.scope.get("route"), "path", "unmatched")
    log.error("request failed", route=route, method=request.method, error=type(exc).__name__)
    return error_response(ApiError(500, "internal_error", "internal server error"))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
