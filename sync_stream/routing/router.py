"""Route each process of an accepted package to its transformer and collect every output."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sync_stream.errors import RoutingFailed, SettingsError
from sync_stream.gate.f008 import AcceptedPackage
from sync_stream.settings import Settings
from sync_stream.transformers.outputs import OutputRecord
from sync_stream.transformers.t080 import transform_build_info
from sync_stream.transformers.t121 import T121_MAPPERS, Mapper

T080_MAPPERS: dict[str, Mapper] = {"build_info": transform_build_info}
MAPPERS: dict[str, dict[str, Mapper]] = {"T080": T080_MAPPERS, "T121": T121_MAPPERS}


@dataclass(frozen=True, slots=True)
class RoutedPackage:
    """Every output of one package, computed before any is produced (all-or-nothing)."""

    package: AcceptedPackage
    outputs: list[OutputRecord]
    build_metadata_ok: bool
    transformers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Route:
    transformer: str
    mapper: Mapper
    facades: tuple[str, ...]


class Router:
    """Apply the routing table; rejects at start a route no transformer can serve."""

    def __init__(self, settings: Settings) -> None:
        self._routes: dict[str, _Route] = {}
        for process, route in settings.routes.items():
            mapper = MAPPERS[route.transformer].get(process)
            if mapper is None:
                supported = sorted(MAPPERS[route.transformer])
                raise SettingsError(
                    f"SYNC_ROUTES: {route.transformer} cannot transform process {process!r}; "
                    f"it supports {supported}"
                )
            self._routes[process] = _Route(route.transformer, mapper, route.facades)

    def facades_of(self, process: str) -> Sequence[str]:
        return self._routes[process].facades

    def route(self, package: AcceptedPackage) -> RoutedPackage:
        """Run every process's transformer; raise TransformFailed with nothing produced."""
        outputs: list[OutputRecord] = []
        used: dict[str, None] = {}
        for process, rows in package.rows.items():
            route = self._routes.get(process)
            if route is None:
                raise RoutingFailed(f"process {process} has no route", reason="no_route")
            rows_any: Sequence[Any] = rows
            outputs.extend(route.mapper(rows_any, route.facades, process))
            used.setdefault(route.transformer)
        build_ok = any(self._routes[p].transformer == "T080" for p in package.rows)
        return RoutedPackage(package, outputs, build_ok, tuple(used))
