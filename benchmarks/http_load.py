"""`GET /api/users_pos` under wrk: the API server, the wrk runs and their figures.

The server is the unchanged `sync-stream run --role api` with one route added for the
benchmark, `GET /bench/constant`, which returns a constant body behind the same bearer
token check. Both routes are served by one process, so the trivial route is a baseline
with the same uvicorn configuration, event loop, middleware and collector settings.

wrk (Debian package `wrk`, 4.x) runs a Lua script that cycles through a list of request
paths and prints its summary as one JSON line when it finishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import shutil
import signal
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.responses import Response

from benchmarks import procstats
from sync_stream.api.auth import require_token
from sync_stream.api.errors import envelope
from sync_stream.embedded.broker import LOOPBACK, free_port

TRIVIAL_PATH = "/bench/constant"
TRIVIAL_BODY = json.dumps(
    envelope(200, "success", "constant", None), separators=(",", ":")
).encode()
RESULT_PREFIX = "WRK_RESULT "
READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0

# `sync-stream run` with the trivial route added to the app the service builds.
API_START = (
    "import sync_stream.cli, sync_stream.service as service\n"
    "from benchmarks.http_load import add_trivial_route\n"
    "create_app = service.create_app\n"
    "def create_app_with_trivial_route(*args, **kwargs):\n"
    "    return add_trivial_route(create_app(*args, **kwargs))\n"
    "service.create_app = create_app_with_trivial_route\n"
    "sync_stream.cli.main()\n"
)

WRK_SCRIPT = """\
local paths = {%(paths)s}
local index = 0
wrk.headers["Authorization"] = "Bearer %(token)s"

request = function()
  index = index %% #paths + 1
  return wrk.format("GET", paths[index])
end

done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '%(prefix)s{"requests":%%d,"duration_us":%%d,"bytes":%%d,"non_2xx":%%d,' ..
    '"socket_errors":%%d,"timeouts":%%d,"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,' ..
    '"max_us":%%d}\\n',
    summary.requests, summary.duration, summary.bytes, errors.status,
    errors.connect + errors.read + errors.write, errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def add_trivial_route(app: FastAPI) -> FastAPI:
    """Add `GET /bench/constant` to an app built by `create_app`, for benchmarks only."""

    @app.get(TRIVIAL_PATH, dependencies=[Depends(require_token)], include_in_schema=False)
    async def constant() -> Response:
        return Response(TRIVIAL_BODY, media_type="application/json")

    return app


def wrk_binary() -> str | None:
    return shutil.which("wrk")


@dataclass(frozen=True, slots=True)
class WrkRun:
    """One wrk run against one route, with the server's CPU time during it."""

    route: str
    requests: int
    seconds: float
    response_bytes: int
    non_2xx: int
    socket_errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    server_cpu_s: float
    complete: bool = True

    @property
    def failures(self) -> int:
        return self.non_2xx + self.socket_errors

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else math.nan

    @property
    def server_cpu_us_per_request(self) -> float:
        return self.server_cpu_s / self.requests * 1e6 if self.requests else math.nan


class ApiServer:
    """`sync-stream run --role api` (plus the trivial route) in a subprocess."""

    def __init__(self, process: asyncio.subprocess.Process, port: int, log_path: Path) -> None:
        self.process = process
        self.port = port
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @classmethod
    async def start(
        cls, bootstrap: str, prefix: str, partitions: int, token: str, log_path: Path
    ) -> ApiServer:
        port = free_port()
        env = {
            **os.environ,
            "SYNC_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
            "SYNC_TOPICS__PREFIX": prefix,
            "SYNC_TOPICS__PARTITIONS": str(partitions),
            "SYNC_API__HOST": LOOPBACK,
            "SYNC_API__PORT": str(port),
            "SYNC_API__TOKENS": json.dumps([token]),
            "SYNC_LOG_FORMAT": "json",
            "SYNC_LOG_LEVEL": "WARNING",
        }
        with log_path.open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                API_START,
                "run",
                "--role",
                "api",
                env=env,
                stdout=log,
                stderr=log,
            )
        return cls(process, port, log_path)

    async def wait_ready(self) -> None:
        """Wait until /readyz returns 200: the projection and the status store are read."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.returncode is not None:
                raise RuntimeError(f"the API server exited; see {self.log_path}")
            if await asyncio.to_thread(self._ready_once):
                return
            await asyncio.sleep(0.25)
        raise RuntimeError(f"the API server was not ready within {READY_TIMEOUT_S:.0f} s")

    def _ready_once(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}/readyz", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def cpu_s(self) -> float:
        sample = procstats.sample(self.pid)
        return sample.cpu_s if sample is not None else math.nan

    async def stop(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()


def write_wrk_script(path: Path, paths: list[str], token: str) -> Path:
    """Write a wrk Lua script that cycles through `paths` with the bearer token."""
    quoted = ", ".join(json.dumps(p) for p in paths)
    path.write_text(WRK_SCRIPT % {"paths": quoted, "token": token, "prefix": RESULT_PREFIX})
    return path


async def run_wrk(
    server: ApiServer,
    script: Path,
    route: str,
    *,
    duration_s: float,
    connections: int,
    log_path: Path,
) -> WrkRun:
    """Run wrk with one thread for `duration_s` and return its figures.

    wrk stops by itself after the duration. The driver kills it if it has not exited
    30 s later.
    """
    binary = wrk_binary()
    if binary is None:
        raise RuntimeError("wrk is not installed")
    cpu_before = server.cpu_s()
    process = await asyncio.create_subprocess_exec(
        binary,
        "--threads",
        "1",
        "--connections",
        str(connections),
        "--duration",
        f"{max(1, round(duration_s))}s",
        "--timeout",
        "5s",
        "--script",
        str(script),
        server.base_url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), duration_s + 30)
    except TimeoutError:
        process.kill()
        output, _ = await process.communicate()
    server_cpu_s = server.cpu_s() - cpu_before
    text = output.decode("utf-8", "replace")
    with log_path.open("a") as log:
        log.write(f"--- {route}\n{text}\n")
    for line in text.splitlines():
        if line.startswith(RESULT_PREFIX):
            fields = json.loads(line[len(RESULT_PREFIX) :])
            return WrkRun(
                route=route,
                requests=fields["requests"],
                seconds=fields["duration_us"] / 1e6,
                response_bytes=fields["bytes"],
                non_2xx=fields["non_2xx"],
                socket_errors=fields["socket_errors"] + fields["timeouts"],
                p50_ms=fields["p50_us"] / 1000,
                p90_ms=fields["p90_us"] / 1000,
                p99_ms=fields["p99_us"] / 1000,
                max_ms=fields["max_us"] / 1000,
                server_cpu_s=server_cpu_s,
            )
    return WrkRun(route, 0, 0.0, 0, 0, 0, *([math.nan] * 4), server_cpu_s, complete=False)
