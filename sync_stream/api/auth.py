"""Bearer token check of every /api route.

Tokens come from `SYNC_API__TOKENS`. The presented token is compared with every
configured one in constant time, and neither is ever logged or echoed.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

from sync_stream.api.errors import ApiError

# Declares the scheme in OpenAPI. The header is parsed below, so that missing and malformed
# headers get their own reason codes.
bearer_scheme = HTTPBearer(auto_error=False, description="A token from SYNC_API__TOKENS.")

CHALLENGE = {"WWW-Authenticate": "Bearer"}


class TokenChecker:
    """Validate `Authorization: Bearer <token>` against the configured tokens."""

    def __init__(self, tokens: Sequence[SecretStr]) -> None:
        self._tokens = [t.get_secret_value().encode() for t in tokens if t.get_secret_value()]

    def check(self, authorization: str | None) -> None:
        """Raise ApiError 401 unless the header carries a configured token."""
        if not authorization:
            raise ApiError(
                401, "missing_token", "Authorization: Bearer <token> is required", headers=CHALLENGE
            )
        scheme, _, credentials = authorization.partition(" ")
        presented = credentials.strip()
        if scheme.lower() != "bearer" or not presented:
            raise ApiError(
                401,
                "malformed_token",
                "the Authorization header must be 'Bearer <token>'",
                headers=CHALLENGE,
            )
        matched = False
        for token in self._tokens:
            # Compare with every token, so the time taken does not tell which one matched.
            matched |= hmac.compare_digest(presented.encode(), token)
        if not matched:
            raise ApiError(401, "invalid_token", "the bearer token is not valid", headers=CHALLENGE)


async def require_token(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> None:
    checker: TokenChecker = request.app.state.token_checker
    checker.check(request.headers.get("authorization"))
