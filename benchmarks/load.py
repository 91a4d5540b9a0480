"""Benchmark load: F008 packages built from the row shapes of `examples/generate.py`.

Users arrive the way the HTTP facade writes them: syncs of several chunks of 100 users,
each chunk with `chunk` and `checksum`. Build and printer packages of 10 rows arrive whole
from their modules, without a checksum.
"""

from __future__ import annotations

import importlib.util
import random
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import orjson

from sync_stream.distribution import headers as h
from sync_stream.publish import split_package

EXAMPLES_GENERATOR = Path(__file__).resolve().parents[1] / "examples" / "generate.py"

USERS_PER_CHUNK = 100
CHUNKS_PER_USERS_SYNC = 10
ROWS_PER_SMALL_PACKAGE = 10

# Facades each process is routed to by the default routing table.
FACADES_PER_ROW = {"users_pos": 1, "build_info": 2, "printers": 1}

Mix = Literal["users", "mixed"]
MIXES: tuple[Mix, ...] = ("users", "mixed")

# In the mixed load, out of every 10 packages: 8 users chunks, 1 build and 1 printer package.
_MIXED_PATTERN = ("users",) * 8 + ("build_info", "printers")


@dataclass(frozen=True, slots=True)
class LoadPackage:
    """One input record, encoded once and sent unchanged by every run."""

    source: str
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    process: str
    rows: int
    # Output records the pipeline writes for this package: one per row and facade.
    outputs: int

    @property
    def correlation(self) -> tuple[bytes, bytes]:
        """The (syncId, chunk) header pair that every output of this package carries."""
        return header_pair(self.headers)


def header_pair(headers: Any) -> tuple[bytes, bytes]:
    """Return the syncId and chunk header values of a record, empty when missing."""
    found = {key: value for key, value in headers or ()}
    return found.get(h.SYNC_ID, b""), found.get(h.CHUNK, b"0/1")


def _examples_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("examples_generate", EXAMPLES_GENERATOR)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load the example generator at {EXAMPLES_GENERATOR}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _random_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _record(package: dict[str, Any], process: str) -> LoadPackage:
    sync_id = package["syncId"]
    chunk = package.get("chunk") or {"index": 0, "count": 1}
    rows = len(package["processes"][process]["records"])
    headers = (
        (h.CONTENT_TYPE, b"application/json"),
        (h.SYNC_ID, sync_id.encode()),
        (h.CHUNK, f"{chunk['index']}/{chunk['count']}".encode()),
    )
    return LoadPackage(
        source=package["source"],
        key=sync_id.encode(),
        value=orjson.dumps(package),
        headers=headers,
        process=process,
        rows=rows,
        outputs=rows * FACADES_PER_ROW[process],
    )


class LoadGenerator:
    """Build packages deterministically from a seed; every call returns fresh ids."""

    def __init__(self, seed: int = 20261204) -> None:
        self._examples = _examples_generator()
        self._rng = random.Random(seed)
        self._user_template: list[dict[str, Any]] = self._examples.users(
            USERS_PER_CHUNK * CHUNKS_PER_USERS_SYNC
        )
        self._next_id = 0

    def _serial(self) -> int:
        self._next_id += 1
        return self._next_id

    def users_sync(self) -> list[LoadPackage]:
        """Build one Sync-Users-Ares sync, split into chunks of 100 users as the facade does."""
        serial = self._serial()
        rows = [
            {**row, "employeeId": f"EMP-{serial:06d}-{index:04d}"}
            for index, row in enumerate(self._user_template)
        ]
        package = {
            "code": "F008",
            "syncId": _random_uuid(self._rng),
            "source": "http",
            "chunkLoad": USERS_PER_CHUNK,
            "processes": {"users_pos": {"mode": "delta", "records": rows}},
        }
        return [_record(chunk, "users_pos") for chunk in split_package(package)]

    def build_package(self) -> LoadPackage:
        """Build a package of 10 builds from MXP FE Build."""
        serial = self._serial()
        builds = [
            self._examples.build(f"module-{index}", f"2.{serial % 50}.{index}", serial * 10 + index)
            for index in range(ROWS_PER_SMALL_PACKAGE)
        ]
        package = {
            "code": "F008",
            "syncId": _random_uuid(self._rng),
            "source": "fe-build",
            "chunkLoad": ROWS_PER_SMALL_PACKAGE,
            "processes": {"build_info": {"records": builds}},
        }
        return _record(package, "build_info")

    def printer_package(self) -> LoadPackage:
        """Build a package of 10 printers from MXP Printer."""
        serial = self._serial()
        stations = ("cocina", "caja", "barra")
        restaurants = self._examples.RESTAURANTS
        printers = [
            self._examples.printer(
                serial * ROWS_PER_SMALL_PACKAGE + index,
                stations[index % len(stations)],
                restaurants[index % len(restaurants)],
            )
            for index in range(ROWS_PER_SMALL_PACKAGE)
        ]
        package = {
            "code": "F008",
            "syncId": _random_uuid(self._rng),
            "source": "printer",
            "chunkLoad": ROWS_PER_SMALL_PACKAGE,
            "processes": {"printers": {"records": printers}},
        }
        return _record(package, "printers")

    def packages(self, count: int, mix: Mix) -> list[LoadPackage]:
        """Return `count` packages; chunks of one users sync stay together and in order."""
        result: list[LoadPackage] = []
        pending_users: list[LoadPackage] = []
        position = 0
        while len(result) < count:
            kind = "users" if mix == "users" else _MIXED_PATTERN[position % len(_MIXED_PATTERN)]
            position += 1
            if kind == "users":
                if not pending_users:
                    pending_users = self.users_sync()
                result.append(pending_users.pop(0))
            elif kind == "build_info":
                result.append(self.build_package())
            else:
                result.append(self.printer_package())
        return result


def sources_of(packages: list[LoadPackage]) -> list[str]:
    """Return the source modules the packages come from, in first-seen order."""
    return list(dict.fromkeys(package.source for package in packages))
