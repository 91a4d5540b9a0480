"""Figures of each run, their medians over repeats, ratios and the printed table."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

MIB = 1024 * 1024


def percentile(values: Sequence[float], share: float) -> float:
    """Return the nearest-rank percentile (share in 0..1) of the values; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def _mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else math.nan


class Run(Protocol):
    """Properties a table reads from every run besides its figures."""

    @property
    def complete(self) -> bool: ...

    @property
    def failures(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Figure:
    """A measured quantity: its label, how to read it from a run, and its number format.

    `read` takes the scenario's run type: a `RunResult` for the FIGURES below.
    """

    label: str
    read: Callable[[Any], float]
    digits: int = 0
    # Figures that only make sense when outputs were read in real time.
    latency: bool = False


FIGURES: tuple[Figure, ...] = (
    Figure("records in/s (rows)", lambda r: r.rate(r.rows_in)),
    Figure("records out/s", lambda r: r.rate(r.records_out)),
    Figure("packages/s", lambda r: r.rate(r.packages_done), 1),
    Figure("CPU s per process", lambda r: _mean(r.cpu_s), 2),
    Figure("CPU µs per row, all processes", lambda r: sum(r.cpu_s) / r.rows_in * 1e6, 1),
    Figure("peak RSS MiB per process", lambda r: max(r.peak_rss_bytes) / MIB, 1),
    Figure(
        "broker CPU s",
        lambda r: r.broker_cpu_s if r.broker_cpu_s is not None else math.nan,
        2,
    ),
    Figure("p50 latency ms", lambda r: percentile(r.latencies_ms, 0.50), 1, latency=True),
    Figure("p95 latency ms", lambda r: percentile(r.latencies_ms, 0.95), 1, latency=True),
    Figure("p99 latency ms", lambda r: percentile(r.latencies_ms, 0.99), 1, latency=True),
)


def median_figure(runs: Sequence[Run], figure: Figure) -> float:
    values = [figure.read(run) for run in runs]
    values = [value for value in values if not math.isnan(value)]
    return statistics.median(values) if values else math.nan


@dataclass(slots=True)
class Column:
    """One competitor in a table, with the runs its medians come from."""

    key: str
    label: str
    runs: Sequence[Run]

    def median(self, figure: Figure) -> float:
        return median_figure(self.runs, figure)

    @property
    def complete(self) -> bool:
        return all(run.complete for run in self.runs)


@dataclass(frozen=True, slots=True)
class Ratio:
    """A ratio column: the numerator column's median divided by the denominator's."""

    label: str
    numerator: str
    denominator: str


@dataclass(frozen=True, slots=True)
class Target:
    """A goal stated as a bound on one figure or ratio."""

    label: str
    value: float
    bound: float
    at_least: bool

    @property
    def met(self) -> bool:
        if math.isnan(self.value):
            return False
        return self.value >= self.bound if self.at_least else self.value < self.bound

    def render(self) -> str:
        sign = "≥" if self.at_least else "<"
        verdict = "met" if self.met else "MISSED"
        return f"{self.label}: {self.value:.2f} (target {sign} {self.bound:g}) {verdict}"


@dataclass(slots=True)
class Table:
    """Medians of every figure per column, then the ratio columns."""

    title: str
    columns: list[Column]
    ratios: list[Ratio]
    with_latency: bool
    notes: list[str] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    figure_set: Sequence[Figure] = FIGURES
    failure_text: str = "packages failed (DLQ or retry)"

    def column(self, key: str) -> Column:
        for column in self.columns:
            if column.key == key:
                return column
        raise KeyError(key)

    def ratio(self, numerator: str, denominator: str, figure: Figure) -> float:
        top = self.column(numerator).median(figure)
        bottom = self.column(denominator).median(figure)
        if math.isnan(top) or math.isnan(bottom) or bottom == 0:
            return math.nan
        return top / bottom

    def figures(self) -> list[Figure]:
        return [f for f in self.figure_set if self.with_latency or not f.latency]

    def render(self) -> str:
        header = ["figure", *(c.label for c in self.columns), *(r.label for r in self.ratios)]
        rows = [header]
        for figure in self.figures():
            row = [figure.label]
            for column in self.columns:
                row.append(_number(column.median(figure), figure.digits))
            for ratio in self.ratios:
                value = self.ratio(ratio.numerator, ratio.denominator, figure)
                row.append("—" if math.isnan(value) else f"{value:.2f}×")
            rows.append(row)
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        lines = [f"== {self.title}"]
        for index, row in enumerate(rows):
            cells = [row[0].ljust(widths[0])]
            cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
            lines.append("  ".join(cells))
            if index == 0:
                lines.append("  ".join("-" * width for width in widths))
        for column in self.columns:
            if not column.complete:
                lines.append(f"! {column.label}: a run hit the time limit; figures are partial")
            failed = sum(run.failures for run in column.runs)
            if failed:
                lines.append(f"! {column.label}: {failed} {self.failure_text}")
        lines += [f"  {note}" for note in self.notes]
        lines += [f"  target {target.render()}" for target in self.targets]
        return "\n".join(lines)

    def to_json(self) -> dict[str, object]:
        return {
            "title": self.title,
            "columns": {
                c.key: {f.label: _json_number(c.median(f)) for f in self.figures()}
                for c in self.columns
            },
            "ratios": {
                r.label: {
                    f.label: _json_number(self.ratio(r.numerator, r.denominator, f))
                    for f in self.figures()
                }
                for r in self.ratios
            },
            "targets": [
                {"label": t.label, "value": _json_number(t.value), "bound": t.bound, "met": t.met}
                for t in self.targets
            ],
            "notes": self.notes,
        }


def _number(value: float, digits: int) -> str:
    if math.isnan(value):
        return "—"
    return f"{value:,.{digits}f}"


def _json_number(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 4)
