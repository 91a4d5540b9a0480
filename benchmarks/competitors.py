"""The processes under test: the service's processor and the two baseline loops.

Each member of a consumer group is a subprocess. The driver learns its progress from the
processor's Prometheus endpoint or from the JSON lines a baseline prints.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from prometheus_client.parser import text_string_to_metric_families

from benchmarks import procstats
from sync_stream.embedded.broker import LOOPBACK, free_port

Kind = Literal[
    "pipeline",
    "passthrough",
    "per-record",
    "pipeline-gc",
    "pipeline-fetch-10ms",
    "batched",
    "batched-fast-hash",
]
# The service's own processor: as shipped, with the garbage collector tuned at start, and
# with its consumer's fetch_max_wait_ms at 10 instead of aiokafka's 500.
PROCESSORS: tuple[Kind, ...] = ("pipeline", "pipeline-gc", "pipeline-fetch-10ms")
# What-if loops that run the service's Pipeline with another distribution (prototype.py).
PROTOTYPES: tuple[Kind, ...] = ("batched", "batched-fast-hash")

# Starts the unchanged CLI after moving every object alive at start out of the collector's
# reach (gc.freeze) and letting the youngest generation grow to 50,000 objects before a
# collection, instead of Python's 700. A full collection then also waits for 100 of the
# middle generation's collections instead of 10. `sync-stream run` now does the same
# itself, so this what-if measures no difference any more; it stays for comparison.
GC_TUNED_START = (
    "import gc, sys\n"
    "import sync_stream.cli, sync_stream.service, sync_stream.runtime.processor\n"
    "gc.freeze()\n"
    "gc.set_threshold(50_000, 20, 100)\n"
    "sync_stream.cli.main()\n"
)

START_CODE = {"pipeline-gc": GC_TUNED_START}
# Settings a what-if processor runs with on top of the run's own.
EXTRA_SETTINGS: dict[Kind, dict[str, str]] = {
    "pipeline-fetch-10ms": {"SYNC_KAFKA__FETCH_MAX_WAIT_MS": "10"},
}

STOP_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class Progress:
    """A member's report: partitions assigned, input records finished, records produced."""

    assigned: int = 0
    packages: int = 0
    records: int = 0
    failed: int = 0


class Member:
    """One subprocess of a competitor."""

    def __init__(self, process: asyncio.subprocess.Process, log_path: Path) -> None:
        self.process = process
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.process.pid

    async def progress(self) -> Progress:
        raise NotImplementedError

    def sample(self) -> procstats.ProcessSample | None:
        return procstats.sample(self.pid)

    def exited(self) -> bool:
        return self.process.returncode is not None

    async def stop(self) -> None:
        """Ask the member to drain and exit; kill it after STOP_TIMEOUT_S."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()


class PipelineMember(Member):
    """`sync-stream run --role processor`, watched through its metrics endpoint."""

    def __init__(self, process: asyncio.subprocess.Process, log_path: Path, port: int) -> None:
        super().__init__(process, log_path)
        self.url = f"http://{LOOPBACK}:{port}/metrics"

    def _scrape(self) -> Progress:
        try:
            with urllib.request.urlopen(self.url, timeout=2) as response:
                text = response.read().decode()
        except OSError:
            return Progress()
        totals: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for metric in family.samples:
                totals[metric.name] = totals.get(metric.name, 0.0) + metric.value
        return Progress(
            assigned=int(totals.get("mxp_sync_assigned_partitions", 0)),
            packages=int(
                totals.get("mxp_sync_packages_distributed_total", 0)
                + totals.get("mxp_sync_dead_letters_total", 0)
                + totals.get("mxp_sync_retries_total", 0)
            ),
            records=int(totals.get("mxp_sync_records_produced_total", 0)),
            failed=int(
                totals.get("mxp_sync_dead_letters_total", 0)
                + totals.get("mxp_sync_retries_total", 0)
            ),
        )

    async def progress(self) -> Progress:
        return await asyncio.to_thread(self._scrape)


class BaselineMember(Member):
    """A baseline loop; its last printed progress line is kept by a reader task."""

    def __init__(self, process: asyncio.subprocess.Process, log_path: Path) -> None:
        super().__init__(process, log_path)
        self._latest = Progress()
        self._reader = asyncio.create_task(self._read_lines())

    async def _read_lines(self) -> None:
        stream = self.process.stdout
        assert stream is not None
        async for line in stream:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                fields = json.loads(line)
                self._latest = Progress(
                    assigned=fields["assigned"],
                    packages=fields["packages"],
                    records=fields["records"],
                    failed=fields.get("failed", 0),
                )

    async def progress(self) -> Progress:
        return self._latest

    async def stop(self) -> None:
        await super().stop()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


async def start_pipeline_member(
    bootstrap: str,
    prefix: str,
    group: str,
    partitions: int,
    log_path: Path,
    *,
    kind: Kind = "pipeline",
) -> PipelineMember:
    """Start `sync-stream run --role processor` with SYNC_* settings for this run."""
    port = free_port()
    env = {
        **os.environ,
        "SYNC_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "SYNC_KAFKA__GROUP_ID": group,
        "SYNC_TOPICS__PREFIX": prefix,
        "SYNC_TOPICS__PARTITIONS": str(partitions),
        "SYNC_CREATE_TOPICS_ON_START": "false",
        "SYNC_METRICS_PORT": str(port),
        "SYNC_LOG_FORMAT": "json",
        "SYNC_LOG_LEVEL": "WARNING",
        **EXTRA_SETTINGS.get(kind, {}),
    }
    with log_path.open("wb") as log:
        start = ["-c", START_CODE[kind]] if kind in START_CODE else ["-m", "sync_stream"]
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *start,
            "run",
            "--role",
            "processor",
            env=env,
            stdout=log,
            stderr=log,
        )
    return PipelineMember(process, log_path, port)


async def start_baseline_member(
    kind: Kind,
    bootstrap: str,
    group: str,
    topics: list[str],
    output: str,
    prefix: str,
    log_path: Path,
) -> BaselineMember:
    """Start one baseline or what-if loop in `group`."""
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "benchmarks.baselines",
            kind,
            "--bootstrap",
            bootstrap,
            "--group",
            group,
            "--topics",
            ",".join(topics),
            "--output-topic",
            output,
            "--prefix",
            prefix,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
        )
    return BaselineMember(process, log_path)
