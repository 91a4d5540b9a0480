"""Run the app with uvicorn inside an event loop the caller owns."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

from sync_stream.errors import SyncStreamError

STARTUP_TIMEOUT_S = 30.0


class ApiServer(uvicorn.Server):
    """uvicorn's server without signal handlers of its own: the caller stops it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    @property
    def port(self) -> int:
        """Return the bound port, also when the configured port was 0."""
        for server in getattr(self, "servers", ()):
            for sock in server.sockets:
                port: int = sock.getsockname()[1]
                return port
        raise SyncStreamError("the API server is not listening yet")


def build_server(app: FastAPI, host: str, port: int, *, shutdown_timeout_s: float) -> ApiServer:
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="on",
        log_config=None,  # keep the service's logging set-up
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=max(1, int(shutdown_timeout_s)),
    )
    return ApiServer(config)


async def start_server(server: ApiServer) -> asyncio.Task[None]:
    """Start serving in a task and return it once the port accepts connections."""
    task = asyncio.create_task(server.serve(), name="api-server")
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not server.started:
        if task.done():
            task.result()  # raises what stopped the start-up
            raise SyncStreamError("the API server stopped during start-up")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise SyncStreamError(f"the API server did not start within {STARTUP_TIMEOUT_S} s")
        await asyncio.sleep(0.05)
    return task
